/** spillway's own idempotent produce requests, against the real broker and Toxiproxy. */
import assert from 'node:assert/strict'
import dc from 'node:diagnostics_channel'
import { test } from 'node:test'
import { Admin, Producer } from '@platformatic/kafka'
import { KafkaCluster } from '../../scripts/kafka/cluster.ts'
import { snapshotOf } from '../../src/transport/admin.ts'
import { IdempotentSender, type IdempotentSenderOptions } from '../../src/transport/idempotent.ts'
import { MetadataCache } from '../../src/transport/metadata-cache.ts'
import type { OutboundRecord } from '../../src/transport/transport.ts'
import { createTopic, randomName, readTopic, testKafka } from '../helpers/kafka.ts'
import { idRecord, outbound } from '../helpers/outbound.ts'

function sender(brokers: string[], clientId: string, options: Partial<IdempotentSenderOptions> = {}) {
  const client = new Producer<Buffer, Buffer, Buffer, Buffer>({
    clientId,
    bootstrapBrokers: brokers,
    idempotent: true,
    timeout: 1000,
    retries: 0,
  })
  const s = new IdempotentSender(
    client,
    {
      clientId,
      requestTimeoutMs: 1000,
      retries: 2,
      retryDelayMs: 100,
      connection: {},
      ...options,
    },
    new MetadataCache(
      async (topics) => snapshotOf(await client.metadata({ topics: [...topics], forceUpdate: true })),
      30_000,
    ),
  )
  return {
    sender: s,
    close: async () => {
      await s.close()
      await client.close(true)
    },
  }
}

const record = idRecord

test('a batch whose answer was lost is sent again as the same bytes, and Kafka keeps one copy', async (t) => {
  const kafka = testKafka()
  t.after(() => kafka.toxiproxy.reset())
  const topic = await createTopic(t, 'same-bytes', { partitions: 2 })
  const { sender: s, close } = sender(kafka.proxiedBootstrap, 'spillway-same-bytes', { retries: 50 })
  t.after(close)
  assert.deepEqual(await s.send([record(topic, 'warm', 0), record(topic, 'warm', 1)]), [
    { kind: 'ok' },
    { kind: 'ok' },
  ])

  const retries: { attempt: number; reasons: string[] }[] = []
  const onRetry = (m: unknown) => retries.push(m as { attempt: number; reasons: string[] })
  dc.subscribe('spillway:transport:retry', onRetry)
  t.after(() => dc.unsubscribe('spillway:transport:retry', onRetry))
  // Requests reach the broker at once; its answers arrive after the connection has given up (1 s + 1 s).
  await kafka.toxiproxy.addToxic(kafka.proxyName, {
    name: 'slow-answers',
    type: 'latency',
    stream: 'downstream',
    attributes: { latency: 2600, jitter: 0 },
  })
  const sending = s.send([
    record(topic, 'once-0', 0),
    record(topic, 'once-1', 1),
    record(topic, 'once-0b', 0),
  ])
  while (retries.length === 0) await new Promise((r) => setTimeout(r, 50))
  await kafka.toxiproxy.removeToxic(kafka.proxyName, 'slow-answers')
  assert.deepEqual(await sending, [{ kind: 'ok' }, { kind: 'ok' }, { kind: 'ok' }])
  assert.ok(
    retries[0]?.reasons.some((r) => /timed out|timeout/i.test(r)),
    `the first attempt's answer was lost: ${JSON.stringify(retries)}`,
  )

  const values = (await readTopic(topic, { expected: 5, idleMs: 1500 })).map((m) => m.value.toString())
  assert.deepEqual(
    values.filter((v) => v.startsWith('once')).sort(),
    ['once-0', 'once-0b', 'once-1'],
    'one copy each',
  )
  assert.equal(values.length, 5)
})

test('after a batch finally fails, the next send starts over with a new producer id', async (t) => {
  const kafka = testKafka()
  t.after(() => kafka.toxiproxy.reset())
  const topic = await createTopic(t, 'new-identity')
  const { sender: s, close } = sender(kafka.proxiedBootstrap, 'spillway-new-identity', { retries: 0 })
  t.after(close)
  assert.deepEqual(await s.send([record(topic, 'a')]), [{ kind: 'ok' }])
  const before = await s.identity()

  // Answers stop coming back while the connection stays up: the request goes out and its answer is lost,
  // so whether Kafka wrote it is unknown. (A cut before the request went out would be a definite failure,
  // whose sequence is simply given back: see "a batch Kafka definitely refused".)
  await kafka.toxiproxy.addToxic(kafka.proxyName, {
    name: 'no-answers',
    type: 'timeout',
    stream: 'downstream',
    attributes: { timeout: 0 },
  })
  const [failed] = await s.send([record(topic, 'lost')])
  await kafka.toxiproxy.removeToxic(kafka.proxyName, 'no-answers')
  assert.ok(
    failed?.kind === 'error' && failed.errorClass === 'retriable' && failed.ambiguous,
    `an ambiguous final failure: ${JSON.stringify(failed)}`,
  )

  assert.deepEqual(await s.send([record(topic, 'b'), record(topic, 'c')]), [{ kind: 'ok' }, { kind: 'ok' }])
  const after = await s.identity()
  assert.ok(
    after.producerId !== before.producerId || after.producerEpoch !== before.producerEpoch,
    'a new producer id (a reused one would leave a sequence gap the broker refuses)',
  )
  const values = (await readTopic(topic, { expected: 3, idleMs: 1500 })).map((m) => m.value.toString())
  assert.deepEqual(
    values.filter((v) => v !== 'lost'),
    ['a', 'b', 'c'],
  )
  assert.ok(values.filter((v) => v === 'lost').length <= 1, 'the lost answer’s record at most once')
})

test('one partition’s sequence carries on across sends (restarting it would make Kafka drop later sends as duplicates)', async (t) => {
  const kafka = testKafka()
  const topic = await createTopic(t, 'sequence')
  const { sender: s, close } = sender(kafka.bootstrap, 'spillway-sequence')
  t.after(close)
  for (let i = 0; i < 5; i++) {
    const outcomes = await s.send(Array.from({ length: 10 }, (_, j) => record(topic, `${i}:${j}`)))
    assert.ok(
      outcomes.every((o) => o.kind === 'ok'),
      JSON.stringify(outcomes[0]),
    )
  }
  const values = (await readTopic(topic, { expected: 50, idleMs: 1500 })).map((m) => m.value.toString())
  assert.equal(values.length, 50)
  assert.deepEqual(
    values,
    Array.from({ length: 50 }, (_, n) => `${Math.floor(n / 10)}:${n % 10}`),
  )
})

test('a batch Kafka definitely refused gives its sequence back: the same producer id carries on', async (t) => {
  const kafka = testKafka()
  const topic = await createTopic(t, 'sequence-back', { config: { 'max.message.bytes': '1024' } })
  const { sender: s, close } = sender(kafka.bootstrap, 'spillway-sequence-back')
  t.after(close)
  assert.deepEqual(await s.send([record(topic, 'a')]), [{ kind: 'ok' }])
  const before = await s.identity()

  const big: OutboundRecord = outbound({ topic, partition: 0, value: Buffer.alloc(5000) })
  const [refused] = await s.send([big])
  assert.ok(
    refused?.kind === 'error' && refused.errorClass === 'poison' && !refused.ambiguous,
    `a definite refusal: ${JSON.stringify(refused)}`,
  )

  // Kafka did not advance the partition's sequence; a gap here would be refused as out of order
  assert.deepEqual(await s.send([record(topic, 'b'), record(topic, 'c')]), [{ kind: 'ok' }, { kind: 'ok' }])
  assert.equal(await s.identity(), before, 'no new producer id was needed')
  const values = (await readTopic(topic, { expected: 3, idleMs: 1500 })).map((m) => m.value.toString())
  assert.deepEqual(values, ['a', 'b', 'c'])
})

test('the partition leader shuts down mid-stream: batches follow the new leader, every record once, in order', async (t) => {
  const cluster = await KafkaCluster.start({
    nodes: 3,
    heapMb: 384,
    // three brokers and this process share two cores: the brokers yield to the process under test
    nice: 19,
  })
  t.after(() => cluster.stop())
  const topic = randomName('failover')
  const admin = new Admin({ clientId: 'spillway-test', bootstrapBrokers: cluster.bootstrap })
  t.after(() => admin.close())
  await admin.createTopics({
    topics: [topic],
    partitions: 1,
    replicas: 3,
    configs: [{ name: 'min.insync.replicas', value: '2' }],
  })
  const { sender: s, close } = sender(cluster.bootstrap, 'spillway-failover', {
    requestTimeoutMs: 2000,
    retries: 60,
    retryDelayMs: 250,
  })
  t.after(close)
  const reasons = new Set<string>()
  const onRetry = (m: unknown) => {
    for (const r of (m as { reasons: string[] }).reasons) reasons.add(r)
  }
  dc.subscribe('spillway:transport:retry', onRetry)
  t.after(() => dc.unsubscribe('spillway:transport:retry', onRetry))

  const leaderOf = async () =>
    (await admin.metadata({ topics: [topic], forceUpdate: true })).topics.get(topic)?.partitions[0]?.leader
  const SENDS = 40
  let stopping: Promise<void> | undefined
  const first = await leaderOf()
  for (let n = 0; n < SENDS; n++) {
    const outcomes = await s.send(Array.from({ length: 20 }, (_, i) => record(topic, `${n}:${i}`)))
    assert.ok(
      outcomes.every((o) => o.kind === 'ok'),
      `send ${n}: ${JSON.stringify(outcomes[0])}`,
    )
    // a controlled shutdown (a rolling restart's) of the leader, while the sends go on
    if (n === 10 && first !== undefined) stopping = cluster.stopNode(first, 'SIGTERM')
  }
  await stopping
  const now = await leaderOf()
  assert.notEqual(now, first, 'leadership moved')
  t.diagnostic(`leader ${first} → ${now}; retry reasons: ${[...reasons].join(', ') || 'none'}`)

  const values = (
    await readTopic(topic, { expected: SENDS * 20, idleMs: 2000, bootstrap: cluster.bootstrap })
  ).map((m) => m.value.toString())
  assert.equal(values.length, SENDS * 20, 'every record once')
  assert.deepEqual(
    values,
    Array.from({ length: SENDS * 20 }, (_, k) => `${Math.floor(k / 20)}:${k % 20}`),
    'in the order sent',
  )
})

test('a batch refused as out of order behind a failed one is numbered again and goes through', async (t) => {
  const kafka = testKafka()
  const topic = await createTopic(t, 'renumber', { config: { 'max.message.bytes': '1024' } })
  const { sender: s, close } = sender(kafka.bootstrap, 'spillway-renumber')
  t.after(close)
  assert.deepEqual(await s.send([record(topic, 'a')]), [{ kind: 'ok' }])
  const retries: string[] = []
  const onRetry = (m: unknown) => retries.push(...(m as { reasons: string[] }).reasons)
  dc.subscribe('spillway:transport:retry', onRetry)
  t.after(() => dc.unsubscribe('spillway:transport:retry', onRetry))

  // Two sends share the partition (as two spillway producers sharing this sender do): the first is
  // refused, so Kafka refuses the second, numbered after it, as out of order.
  const big: OutboundRecord = outbound({ topic, partition: 0, value: Buffer.alloc(5000) })
  const [[refused], [second]] = await Promise.all([s.send([big]), s.send([record(topic, 'b')])])
  assert.ok(refused?.kind === 'error' && refused.errorClass === 'poison', JSON.stringify(refused))
  assert.ok(
    retries.includes('OUT_OF_ORDER_SEQUENCE_NUMBER'),
    `refused as out of order first: ${retries.join(', ')}`,
  )
  assert.deepEqual(second, { kind: 'ok' }, 'numbered again under a new producer id, it went through')
  const values = (await readTopic(topic, { expected: 2, idleMs: 1500 })).map((m) => m.value.toString())
  assert.deepEqual(values, ['a', 'b'])
})
