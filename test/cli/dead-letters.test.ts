/**
 * `spillway dead-letters replay`: dead letters go back to their topics with their original ids once the
 * cause is fixed, the others stay, and --dry-run only counts. Against the real broker.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { Admin } from '@platformatic/kafka'
import { dumpLog } from '../../src/log/inspect.ts'
import { decodeEnvelope } from '../../src/producer/envelope.ts'
import { createProducer } from '../../src/producer/producer.ts'
import { closeAllTransports } from '../../src/transport/registry.ts'
import { tempDir } from '../helpers/fs.ts'
import { createTopic, randomName, readTopic, testKafka } from '../helpers/kafka.ts'

const bin = fileURLToPath(new URL('../../bin/spillway.js', import.meta.url))
const spillway = (...args: string[]) =>
  spawnSync(process.execPath, [bin, ...args], { encoding: 'utf8', timeout: 120_000 })

test('replay sends dead letters back with their original ids once the cause is fixed; the others stay', async (t) => {
  const kafka = testKafka()
  const missing = randomName('replay-target')
  const small = await createTopic(t, 'replay-small', { config: { 'max.message.bytes': '2048' } })
  const dir = await tempDir(t)
  t.after(() => closeAllTransports())
  const producer = await createProducer({
    brokers: kafka.bootstrap,
    log: { dir },
    transportLingerMs: 0,
    unknownTopicTimeoutMs: 0,
  })
  const ids = Array.from({ length: 20 }, (_, i) => `order-${i}`)
  await producer.send(
    missing,
    ids.map((id, i) => ({ id, key: `k${i % 3}`, value: { i }, headers: { source: 'test' } })),
  )
  await producer.send(small, [{ id: 'too-big', value: 'x'.repeat(10_000) }])
  const deadline = performance.now() + 30_000
  while (producer.stats().deadLettered < 21 && performance.now() < deadline)
    await new Promise((r) => setTimeout(r, 100))
  assert.equal(producer.stats().deadLettered, 21)
  await producer.close()

  const dry = spillway('dead-letters', 'replay', '--log', dir, '--topic', missing, '--dry-run')
  assert.equal(dry.status, 0, dry.stderr)
  assert.match(dry.stdout, new RegExp(`would replay 20 dead letters \\(${missing}: 20\\); 1 would stay`))

  const admin = new Admin({ clientId: 'spillway-test-admin', bootstrapBrokers: kafka.bootstrap })
  t.after(() => admin.close())
  await admin.createTopics({ topics: [missing], partitions: 1, replicas: 1 })
  t.after(() => admin.deleteTopics({ topics: [missing] }).catch(() => undefined))

  const replayTopic = () =>
    spillway(
      'dead-letters',
      'replay',
      '--log',
      dir,
      '--brokers',
      kafka.bootstrap.join(','),
      '--topic',
      missing,
    )
  const replay = replayTopic()
  assert.equal(replay.status, 0, replay.stderr)
  assert.match(replay.stdout, /replayed 20 dead letters .* all delivered to Kafka; 1 stay/)

  const messages = await readTopic(missing, { expected: 20, idleMs: 1000 })
  const got = messages.map((m) => ({
    id: m.headerEntries.find(([k]) => k.toString() === 'spillway-id')?.[1].toString(),
    source: m.headerEntries.find(([k]) => k.toString() === 'source')?.[1].toString(),
    reason: m.headerEntries.some(([k]) => k.toString() === 'spillway-dead-letter-reason'),
    key: m.key?.toString(),
  }))
  assert.deepEqual(
    got.map((g) => g.id),
    ids,
    'original ids, in order',
  )
  assert.ok(
    got.every((g) => g.source === 'test' && !g.reason),
    'original headers, none of the dead-letter ones',
  )
  assert.equal(got[4]?.key, 'k1')

  const left = []
  for await (const r of dumpLog(join(dir, 'dead-letter'))) left.push(decodeEnvelope(r.payload).id)
  assert.deepEqual(left, ['too-big'], 'the dead letter of another topic stays')
  const again = replayTopic()
  assert.match(again.stdout, /nothing to replay; 1 dead letters stay/, 'replayed letters are gone')
})

test('replay needs the log to itself: a running producer holds it', async (t) => {
  const dir = await tempDir(t)
  const producer = await createProducer({ log: { dir } })
  t.after(() => producer.close())
  const locked = spillway('dead-letters', 'replay', '--log', dir, '--dry-run')
  assert.equal(locked.status, 1)
  assert.match(locked.stderr, /SPW_ERR_LOG_LOCKED/)
})
