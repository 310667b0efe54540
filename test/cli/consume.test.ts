/** `spillway consume`: what the producer delivered, printed with its ids; groups resume; bad flags fail clearly. */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { createProducer } from '../../src/index.ts'
import { createTopic, randomName, testKafka } from '../helpers/kafka.ts'

const bin = fileURLToPath(new URL('../../bin/spillway.js', import.meta.url))

function consume(args: string[]): Promise<{ status: number | null; stdout: string; stderr: string }> {
  return new Promise((resolve) => {
    const child = spawn(process.execPath, [bin, 'consume', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d
    })
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d
    })
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
    child.once('exit', (status) => {
      clearTimeout(timer)
      resolve({ status, stdout, stderr })
    })
  })
}

test('spillway consume prints what a spillway producer delivered: keys, headers with spillway-id, values', async (t) => {
  const topic = await createTopic(t, 'cli-consume', { partitions: 2 })
  const producer = await createProducer({ brokers: testKafka().bootstrap, ack: 'kafka' })
  t.after(() => producer.close())
  const results = await producer.send(topic, [
    { key: 'user-1', value: { n: 1 } },
    { key: 'user-2', value: 'plain text', headers: { source: 'web' } },
    { key: 'user-3', value: Buffer.from([0xff, 0x00, 0xfe]) },
  ])
  const ids = results.map((r) => r.id)
  assert.ok(results.every((r) => r.status === 'accepted' && r.acked))

  const json = await consume([
    '--brokers',
    testKafka().bootstrap.join(','),
    '--topic',
    topic,
    '--json',
    '--max',
    '3',
  ])
  assert.equal(json.status, 0, json.stderr)
  const lines = json.stdout
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>)
  assert.deepEqual(new Set(lines.map((l) => l.id)), new Set(ids), 'the ids the producer gave')
  const byKey = new Map(lines.map((l) => [l.key, l]))
  assert.equal(byKey.get('user-1')?.value, '{"n":1}')
  assert.equal(byKey.get('user-2')?.value, 'plain text')
  assert.deepEqual(
    ((byKey.get('user-2')?.headers ?? []) as [string, string][]).find(([n]) => n === 'source'),
    ['source', 'web'],
  )
  assert.deepEqual([byKey.get('user-3')?.value, byKey.get('user-3')?.valueEncoding], ['/wD+', 'base64'])
  assert.match(json.stderr, /3 records/)

  const text = await consume(['--brokers', testKafka().bootstrap.join(','), '--topic', topic, '--max', '3'])
  assert.equal(text.status, 0, text.stderr)
  for (const id of ids) assert.ok(text.stdout.includes(`spillway-id=${id}`), `the text output shows ${id}`)
})

test('spillway consume --group resumes where the group left off; --timeout ends an idle read', async (t) => {
  const topic = await createTopic(t, 'cli-group')
  const producer = await createProducer({ brokers: testKafka().bootstrap, ack: 'kafka' })
  t.after(() => producer.close())
  await producer.send(
    topic,
    Array.from({ length: 6 }, (_, i) => ({ value: `v${i}` })),
  )
  const group = randomName('cli')
  const args = ['--brokers', testKafka().bootstrap.join(','), '--topic', topic, '--group', group, '--json']
  const first = await consume([...args, '--max', '4'])
  assert.equal(first.status, 0, first.stderr)
  const second = await consume([...args, '--timeout', '3000'])
  assert.equal(second.status, 0, second.stderr)
  const values = (out: string): string[] =>
    out
      .trim()
      .split('\n')
      .filter(Boolean)
      .map((l) => (JSON.parse(l) as { value: string }).value)
  assert.deepEqual(values(first.stdout), ['v0', 'v1', 'v2', 'v3'])
  assert.deepEqual(values(second.stdout), ['v4', 'v5'], 'the second run starts after what the first printed')
})

test('spillway consume: --help, and missing or bad flags fail with a clear message', async () => {
  const help = await consume(['--help'])
  assert.equal(help.status, 0)
  assert.match(help.stdout, /--group/)
  const missing = await consume(['--brokers', '127.0.0.1:1'])
  assert.equal(missing.status, 1)
  assert.match(missing.stderr, /SPW_ERR_INVALID_OPTION: --topic is required/)
  const badFrom = await consume(['--brokers', '127.0.0.1:1', '--topic', 't', '--from', 'yesterday'])
  assert.equal(badFrom.status, 1)
  assert.match(badFrom.stderr, /--from must be/)
})
