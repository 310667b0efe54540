/**
 * `spillway sink` as an operator runs it: --help documents the config, a bad config is one line naming the
 * key (and the sink), and a database that is down at start does not stop the service: it listens, says
 * why it is not ready, and stops cleanly on SIGTERM.
 */
import assert from 'node:assert/strict'
import { spawn, spawnSync } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { createTopic, randomName, testKafka } from '../helpers/kafka.ts'
import { until } from '../helpers/wait.ts'

const bin = fileURLToPath(new URL('../../bin/spillway.js', import.meta.url))
const run = (...args: string[]) =>
  spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 30_000 })

test('sink --help documents every config key; spillway --help lists the command', () => {
  const help = run('sink', '--help')
  assert.equal(help.status, 0)
  for (const key of [
    'kafka.brokers',
    'sinks[]',
    'postgres',
    'passwordFile',
    'columns',
    'createTable',
    'SPILLWAY_PG_PASSWORD',
    '/readyz',
  ])
    assert.ok(help.stdout.includes(key), `sink --help mentions ${key}`)
  assert.match(run('--help').stdout, /spillway sink --config FILE/)
})

test('a bad config is one line naming the key, and the sink it belongs to', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'spillway-sink-cli-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'sink.json')
  const cases: [unknown, RegExp][] = [
    [{ sinks: [] }, /kafka\.brokers/],
    [
      { kafka: { brokers: ['127.0.0.1:9092'] } },
      /option sinks is undefined; expected a non-empty list of sinks/,
    ],
    [
      {
        kafka: { brokers: ['127.0.0.1:9092'] },
        sinks: [{ type: 'postgres', groupId: 'g', topics: ['t'], table: 'Bad Name', postgres: {} }],
      },
      /sinks\[0\] \(g\): option table is "Bad Name"; expected a table name/,
    ],
    [
      { kafka: { brokers: ['127.0.0.1:9092'] }, sinks: [{ type: 'mysql', groupId: 'g' }] },
      /sinks\[0\]\.type/,
    ],
    [
      {
        kafka: { brokers: ['127.0.0.1:9092'] },
        sinks: [
          { groupId: 'g', topics: ['t'], table: 'x', postgres: { passwordFile: join(dir, 'missing') } },
        ],
      },
      /postgres\.passwordFile.*a readable file \(ENOENT\)/,
    ],
  ]
  for (const [config, message] of cases) {
    await writeFile(file, JSON.stringify(config))
    const result = run('sink', '--config', file)
    assert.equal(result.status, 1, result.stderr)
    const lines = result.stderr.trim().split('\n')
    assert.equal(lines.length, 1, result.stderr)
    assert.match(lines[0] ?? '', /^spillway: SPW_ERR_INVALID_OPTION: /)
    assert.match(lines[0] ?? '', message)
  }
  await writeFile(file, '{ not json')
  assert.match(run('sink', '--config', file).stderr, /is not valid JSON/)
})

test('a database that is down at start: the service listens, /readyz says why, SIGTERM stops it cleanly', async (t) => {
  const { bootstrap } = testKafka()
  const topic = await createTopic(t, 'sink-cli-down')
  const dir = await mkdtemp(join(tmpdir(), 'spillway-sink-cli-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const file = join(dir, 'sink.json')
  await writeFile(
    file,
    JSON.stringify({
      port: 0,
      kafka: { brokers: bootstrap },
      sinks: [
        {
          type: 'postgres',
          name: 'warehouse',
          groupId: randomName('cli-down'),
          topics: [topic],
          // nothing listens on port 1
          postgres: {
            host: '127.0.0.1',
            port: 1,
            user: 'spillway',
            password: 'not-printed-anywhere',
            connectTimeoutMs: 500,
          },
          table: 'events',
          createTable: true,
        },
      ],
    }),
  )
  const child = spawn(process.execPath, [bin, 'sink', '--config', file], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  t.after(() => child.kill('SIGKILL'))
  let output = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    output += d
  })
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    output += d
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', resolve))
  let address = ''
  await until(
    'it listens',
    () => {
      address = /"address":"(http:[^"]+)"/.exec(output)?.[1] ?? ''
      return address !== ''
    },
    30_000,
  )
  assert.equal((await fetch(`${address}/healthz`)).status, 200)
  const ready = await fetch(`${address}/readyz`)
  assert.equal(ready.status, 503)
  assert.match(
    JSON.stringify(await ready.json()),
    /warehouse: postgres unavailable \(PostgreSQL cannot be reached at 127\.0\.0\.1:1/,
  )
  await until(
    'the log says the database is down',
    () => /postgres is unavailable; partitions wait and retry/.test(output),
    10_000,
  )
  child.kill('SIGTERM')
  assert.equal(await exited, 0, output)
  assert.ok(!output.includes('not-printed-anywhere'), 'the password is never logged')
})
