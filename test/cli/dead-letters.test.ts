/**
 * `spillway dead-letters replay`: dead letters go back to their topics with their original ids once the
 * cause is fixed, the others stay, and --dry-run only counts; from the gateway's local dead-letter log
 * (--log) or from a consumer's dead-letter topic (--from-topic). Against the real broker.
 */
import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { Admin } from '@platformatic/kafka'
import { createConsumer } from '../../src/consumer/consumer.ts'
import { dumpLog } from '../../src/log/inspect.ts'
import { decodeEnvelope } from '../../src/producer/envelope.ts'
import { createProducer } from '../../src/producer/producer.ts'
import { closeAllTransports } from '../../src/transport/registry.ts'
import { tempDir } from '../helpers/fs.ts'
import { createTopic, produceRaw, randomName, readTopic, testKafka } from '../helpers/kafka.ts'
import { until } from '../helpers/wait.ts'

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

test('replay --from-topic sends a consumer dead-letter topic back to the source topics with the original ids', async (t) => {
  const kafka = testKafka()
  const source = await createTopic(t, 'replay-source')
  const deadLetters = await createTopic(t, 'replay-dlt')
  const elsewhere = await createTopic(t, 'replay-elsewhere')
  await produceRaw(source, [
    { key: 'a', value: 'fine', headers: { 'spillway-id': 'ok-1', origin: 'web' } },
    { key: 'b', value: 'bad', headers: { 'spillway-id': 'bad-1', origin: 'web' } },
    { key: 'c', value: 'bad', headers: { 'spillway-id': 'bad-2', origin: 'batch' } },
  ])
  const consumer = createConsumer({
    brokers: kafka.bootstrap,
    groupId: randomName('replay-group'),
    topics: [source],
    deadLetterTopics: { '*': deadLetters },
    onError: 'dead-letter',
    handler: (record) => {
      if (String(record.value) === 'bad') throw new Error('the billing service said no')
    },
  })
  await consumer.run()
  await until('both bad records are dead-lettered', () => consumer.stats().deadLettered === 2, 30_000)
  await consumer.close()

  const brokers = kafka.bootstrap.join(',')
  const dry = spillway(
    'dead-letters',
    'replay',
    '--from-topic',
    deadLetters,
    '--brokers',
    brokers,
    '--dry-run',
  )
  assert.equal(dry.status, 0, dry.stderr)
  assert.equal(
    dry.stdout,
    `would replay 2 dead letters from ${deadLetters} (${source} (SPW_ERR_HANDLER_FAILED): 2)\n`,
  )
  const replay = spillway('dead-letters', 'replay', '--from-topic', deadLetters, '--brokers', brokers)
  assert.equal(replay.status, 0, replay.stderr)
  assert.match(replay.stdout, /^replayed 2 dead letters .* with their original ids; they stay in/)
  const back = await readTopic(source, { expected: 5, timeoutMs: 20_000 })
  const ids = back.map((m) => m.headerEntries.find(([k]) => k.toString() === 'spillway-id')?.[1].toString())
  assert.deepEqual(ids, ['ok-1', 'bad-1', 'bad-2', 'bad-1', 'bad-2'])
  const replayed = back.slice(3)
  const names = (m: (typeof back)[number]): string[] => m.headerEntries.map(([k]) => k.toString())
  assert.deepEqual(
    names(replayed[0] as (typeof back)[number]),
    ['spillway-id', 'origin'],
    'dead-letter headers are gone',
  )
  assert.equal(replayed[1]?.headerEntries.find(([k]) => k.toString() === 'origin')?.[1].toString(), 'batch')
  assert.deepEqual(
    replayed.map((m) => [m.key.toString(), m.value.toString()]),
    [
      ['b', 'bad'],
      ['c', 'bad'],
    ],
  )

  const redirected = spillway(
    'dead-letters',
    'replay',
    '--from-topic',
    deadLetters,
    '--brokers',
    brokers,
    '--to',
    elsewhere,
  )
  assert.equal(redirected.status, 0, redirected.stderr)
  assert.equal((await readTopic(elsewhere, { expected: 2, timeoutMs: 20_000 })).length, 2)
  const later = spillway(
    'dead-letters',
    'replay',
    '--from-topic',
    deadLetters,
    '--brokers',
    brokers,
    '--since',
    new Date(Date.now() + 60_000).toISOString(),
  )
  assert.equal(later.stdout, `nothing to replay from ${deadLetters}\n`)
  const both = spillway(
    'dead-letters',
    'replay',
    '--from-topic',
    deadLetters,
    '--log',
    '/tmp',
    '--brokers',
    brokers,
  )
  assert.equal(both.status, 1)
  assert.match(both.stderr, /give one source: --log DIR .* or --from-topic T/)
  const badSince = spillway(
    'dead-letters',
    'replay',
    '--from-topic',
    deadLetters,
    '--brokers',
    brokers,
    '--since',
    'yesterday-ish',
  )
  assert.match(badSince.stderr, /--since must be a date .* or an age/)
})

test('replay --from-topic of a dead letter that went through retry tiers: back with its id and headers, none of the retry ones', async (t) => {
  const kafka = testKafka()
  const source = await createTopic(t, 'replay-tiers')
  await produceRaw(source, [
    { key: 'a', value: 'bad', headers: { 'spillway-id': 'tiered-1', origin: 'web' } },
  ])
  const consumer = createConsumer({
    brokers: kafka.bootstrap,
    groupId: randomName('replay-tiers'),
    topics: [source],
    retry: { tiers: [{ delayMs: 0 }] },
    handler: () => {
      throw new Error('still failing')
    },
  })
  await consumer.run()
  await until('dead-lettered after the tier', () => consumer.stats().deadLettered === 1, 30_000)
  await consumer.close()
  const replay = spillway(
    'dead-letters',
    'replay',
    '--from-topic',
    `${source}.dead-letters`,
    '--brokers',
    kafka.bootstrap.join(','),
  )
  assert.equal(replay.status, 0, replay.stderr)
  const back = await readTopic(source, { expected: 2, timeoutMs: 20_000 })
  const replayed = back[1]
  assert.ok(replayed)
  assert.deepEqual(
    replayed.headerEntries.map(([k, v]) => `${k}=${v}`),
    ['spillway-id=tiered-1', 'origin=web'],
  )
})
