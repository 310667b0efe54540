/** The `spillway` command line: help, version, log inspect/dump, and readable config errors. */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { DurableLog } from '../../src/log/log.ts'
import { encodeEnvelope } from '../../src/producer/envelope.ts'

const bin = fileURLToPath(new URL('../../bin/spillway.js', import.meta.url))
const run = (...args: string[]) =>
  spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 30_000 })

test('--help, --version and serve --help describe the commands and every option', () => {
  const help = run('--help')
  assert.equal(help.status, 0)
  assert.match(help.stdout, /spillway serve/)
  assert.match(help.stdout, /spillway log inspect/)
  assert.match(run('--version').stdout, /^\d+\.\d+\.\d+\n$/)
  const serve = run('serve', '--help')
  assert.equal(serve.status, 0)
  for (const key of [
    'kafka.brokers',
    'log.dir',
    'limits.maxBodyBytes',
    'keys[]',
    'readiness.high',
    'SPILLWAY_BROKERS',
  ]) {
    assert.ok(serve.stdout.includes(key), `serve --help documents ${key}`)
  }
  const unknown = run('frobnicate')
  assert.equal(unknown.status, 2)
  assert.match(unknown.stderr, /unknown command "frobnicate"/)
})

test('a bad config fails at start with the key and the reason', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'spillway-cli-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'bad.json')
  await writeFile(file, JSON.stringify({ port: 'eighty', log: { dir: join(dir, 'log') } }))
  const bad = run('serve', '--config', file)
  assert.equal(bad.status, 1)
  assert.match(
    bad.stderr,
    /SPW_ERR_INVALID_OPTION: option port is "eighty"; expected an integer from 0 to 65535/,
  )
  await writeFile(file, JSON.stringify({ ack: 'kafka' }))
  assert.match(
    run('serve', '--config', file).stderr,
    /option ack is "kafka"; expected "durable" when kafka.brokers is not set/,
  )
  await writeFile(file, '{ not json')
  assert.match(run('serve', '--config', file).stderr, /is not valid JSON/)
  assert.match(run('serve', '--colour').stderr, /unknown flag --colour/)
})

test('log inspect and log dump show segments, pending records and decoded payloads', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'spillway-cli-log-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const log = await DurableLog.open({ dir })
  await log.append([Buffer.from('hello'), Buffer.from([0xff, 0x00])])
  await log.append([
    encodeEnvelope({
      id: 'evt-1',
      topic: 'orders',
      key: Buffer.from('k'),
      value: Buffer.from('{"a":1}'),
      headers: [
        ['spillway-dead-letter-reason', Buffer.from('MESSAGE_TOO_LARGE')],
        ['raw', Buffer.from([0xff])],
      ],
      timestamp: 0,
    }),
  ])
  await log.close()
  const inspect = run('log', 'inspect', dir)
  assert.equal(inspect.status, 0, inspect.stderr)
  assert.match(inspect.stdout, /records +3 on disk, 3 pending/)
  assert.match(inspect.stdout, /corruption +none/)
  const json = JSON.parse(run('log', 'inspect', dir, '--json').stdout) as { pendingRecords: number }
  assert.equal(json.pendingRecords, 3)
  const lines = run('log', 'dump', dir)
    .stdout.trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>)
  assert.equal(lines.length, 3)
  assert.equal(lines[0]?.payload, 'hello')
  assert.equal(lines[1]?.payloadBase64, '/wA=')
  assert.equal(lines[0]?.seq, '0')
  assert.deepEqual(lines[2]?.event, {
    id: 'evt-1',
    topic: 'orders',
    timestamp: '1970-01-01T00:00:00.000Z',
    key: 'k',
    headers: { 'spillway-dead-letter-reason': 'MESSAGE_TOO_LARGE', raw: { base64: '/w==' } },
    value: '{"a":1}',
  })
  assert.equal(run('log', 'dump', dir, '--limit', '1').stdout.trim().split('\n').length, 1)
  const missing = run('log', 'inspect')
  assert.equal(missing.status, 2)
  assert.match(missing.stderr, /missing <dir>/)
})
