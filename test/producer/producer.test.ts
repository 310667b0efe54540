import assert from 'node:assert/strict'
import dc from 'node:diagnostics_channel'
import { readdir } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { Admin } from '@platformatic/kafka'
import { KafkaCluster } from '../../scripts/kafka/cluster.ts'
import type { Envelope } from '../../src/producer/envelope.ts'
import { createProducer, type SpillwayProducer } from '../../src/producer/producer.ts'
import { tempDir } from '../helpers/fs.ts'
import { createTopic, kafkaTool, randomName, readTopic, testKafka } from '../helpers/kafka.ts'

function header(message: { headerEntries: [Buffer, Buffer][] }, name: string): string | undefined {
  return message.headerEntries.find(([k]) => k.toString() === name)?.[1].toString()
}

for (const thread of ['main', 'worker'] as const)
  test(`durable mode, Kafka client on the ${thread} thread: accepted after fsync, delivered with spillway-id, per-key order, Java partitioning`, async (t) => {
    const kafka = testKafka()
    const topic = await createTopic(t, 'durable', { partitions: 4 })
    const dir = await tempDir(t)
    const producer = await createProducer({
      brokers: kafka.bootstrap,
      clientId: `spillway-durable-${thread}`,
      log: { dir },
      transportLingerMs: 0,
      transportThread: thread,
    })
    t.after(() => producer.close())
    const results = []
    for (let i = 0; i < 50; i++) {
      const batch = Array.from({ length: 20 }, (_, j) => ({
        key: `user-${(i * 20 + j) % 7}`,
        value: { n: i * 20 + j },
      }))
      results.push(...(await producer.send(topic, batch)))
    }
    assert.ok(results.every((r) => r.status === 'accepted' && r.durable && !r.acked))
    assert.ok(await producer.flush(20_000), 'everything delivered')
    const messages = await readTopic(topic, { expected: 1000, idleMs: 1000 })
    assert.equal(messages.length, 1000)
    const ids = new Set(results.map((r) => r.id))
    const lastPerKey = new Map<string, number>()
    const { partitionForKey } = await import('../../src/producer/partitioner.ts')
    for (const m of messages) {
      const id = header(m, 'spillway-id')
      assert.ok(id && ids.has(id), 'every record carries its admission id')
      const n = (JSON.parse(m.value.toString()) as { n: number }).n
      const key = m.key.toString()
      assert.ok((lastPerKey.get(key) ?? -1) < n, 'per-key order')
      lastPerKey.set(key, n)
      assert.equal(m.partition, partitionForKey(m.key, 4), 'partition matches the Java default partitioner')
    }
    assert.equal(producer.stats().delivered, 1000)
    assert.equal(producer.stats().log?.pendingRecords, 0n)
  })

test('kafka mode acks after Kafka; memory mode answers at once and says it is not durable', async (t) => {
  const kafka = testKafka()
  const topic = await createTopic(t, 'modes')
  // the Kafka client in its worker thread here, whatever this machine's core count makes 'auto'
  const kafkaMode = await createProducer({
    brokers: kafka.bootstrap,
    ack: 'kafka',
    transportLingerMs: 0,
    transportThread: 'worker',
  })
  t.after(() => kafkaMode.close())
  const [acked] = await kafkaMode.send(topic, [{ value: 'k', id: 'caller-key-1' }])
  assert.deepEqual(acked, { status: 'accepted', id: 'caller-key-1', durable: false, acked: true })
  const memory = await createProducer({ brokers: kafka.bootstrap, ack: 'memory', transportLingerMs: 0 })
  t.after(() => memory.close())
  const [m] = await memory.send(topic, [{ value: 'm' }])
  assert.equal(m?.status, 'accepted')
  assert.ok(m?.status === 'accepted' && m.durable === false && m.acked === false)
  assert.ok(await memory.flush(10_000))
  const values = (await readTopic(topic, { expected: 2, idleMs: 800 })).map((r) => r.value.toString()).sort()
  assert.deepEqual(values, ['k', 'm'])
})

test('invalid events are refused with a coded error naming the field; atomic refuses the whole request', async (t) => {
  const dir = await tempDir(t)
  const producer = await createProducer({ log: { dir }, maxEventBytes: 1024 })
  t.after(() => producer.close())
  const results = await producer.send('t', [
    { value: 'ok' },
    { value: 'x'.repeat(2000) },
    { key: 5 as unknown as string, value: 'bad key' },
    { value: undefined as unknown as string },
  ])
  assert.equal(results[0]?.status, 'accepted')
  assert.ok(results[1]?.status === 'refused' && results[1].error.code === 'SPW_ERR_RECORD_TOO_LARGE')
  assert.ok(results[2]?.status === 'refused' && results[2].error.message.includes('events[2].key'))
  assert.ok(
    results[3]?.status === 'refused' && results[3].error.message.includes('events[3].value is required'),
  )
  const atomic = await producer.send('t', [{ value: 'fine' }, { value: 'x'.repeat(2000) }], { atomic: true })
  assert.ok(atomic.every((r) => r.status === 'refused'))
  assert.equal(producer.stats().log?.pendingRecords, 1n, 'only the single valid non-atomic event was written')
})

test('options are validated with the key, the value and what is allowed', async () => {
  await assert.rejects(createProducer({ ack: 'sometimes' as 'durable', log: { dir: '/tmp/x' } }), {
    code: 'SPW_ERR_INVALID_OPTION',
    message: 'option ack is "sometimes"; expected one of "durable", "kafka", "memory"',
  })
  await assert.rejects(createProducer({ ack: 'kafka' }), {
    message: /option brokers is undefined; expected a broker list/,
  })
  await assert.rejects(createProducer({ brokers: ['nohost'], log: { dir: '/tmp/x' } }), {
    message: /"host:port" entries/,
  })
  await assert.rejects(createProducer({ log: { dir: '/tmp/x' }, batch: { maxBytes: 1 } }), {
    message: /batch.maxBytes is 1/,
  })
  await assert.rejects(createProducer({ log: { dir: '/tmp/x' }, transportThread: 'both' as 'main' }), {
    message: 'option transportThread is "both"; expected one of "auto", "worker", "main"',
  })
  await assert.rejects(
    createProducer({
      ack: 'memory',
      brokers: ['localhost:9092'],
      deadLetterTopics: { orders: 'orders.dlq' },
    }),
    { code: 'SPW_ERR_INVALID_OPTION', message: /option deadLetterTopics is .*together with `log`/ },
  )
  await assert.rejects(createProducer({ log: { dir: '/tmp/x' }, deadLetterTopics: { orders: 'orders' } }), {
    message: /option deadLetterTopics.orders is "orders"; expected a topic other than/,
  })
  await assert.rejects(createProducer({ log: { dir: '/tmp/x' }, deadLetterTopics: { 'no spaces': 'dlq' } }), {
    message: /option deadLetterTopics.no spaces is "no spaces"; expected a Kafka topic name or '\*'/,
  })
  await assert.rejects(
    createProducer({ log: { dir: '/tmp/x' }, deadLetterTopics: { '*': 7 as unknown as string } }),
    { message: /option deadLetterTopics.\* is 7; expected a Kafka topic name/ },
  )
})

test('poison records go to the dead-letter log with the reason and never block the records behind them', async (t) => {
  const kafka = testKafka()
  const topic = await createTopic(t, 'poison', { config: { 'max.message.bytes': '2048' } })
  const dir = await tempDir(t)
  const producer: SpillwayProducer = await createProducer({
    brokers: kafka.bootstrap,
    log: { dir },
    transportLingerMs: 0,
    // a missing topic's events wait for it (test/gateway/missing-topic.test.ts); here, not at all
    unknownTopicTimeoutMs: 0,
  })
  t.after(() => producer.close())
  const dead: string[] = []
  producer.on('status', (s) => {
    if (s.type === 'dead-letter') dead.push(s.reason)
  })
  await producer.send(topic, [
    { value: 'before' },
    { value: 'y'.repeat(10_000), headers: { origin: 'test' } },
    { value: 'after' },
  ])
  await producer.send('no-such-topic-here', [{ value: 'lost?' }])
  await producer.send(topic, [{ value: 'last' }])
  assert.ok(
    await producer.flush(20_000),
    `the line keeps moving past poison: ${JSON.stringify(producer.stats(), (_, v) => (typeof v === 'bigint' ? String(v) : v))}`,
  )
  const values = (await readTopic(topic, { expected: 3, idleMs: 800 })).map((r) => r.value.toString())
  assert.deepEqual(values, ['before', 'after', 'last'])
  assert.equal(producer.stats().deadLettered, 2)
  assert.ok(
    dead.some((r) => r.includes('MESSAGE_TOO_LARGE') || r.includes('RECORD_LIST_TOO_LARGE')),
    dead.join('; '),
  )
  assert.ok(
    dead.some((r) => r.includes('did not appear within 0 ms')),
    dead.join('; '),
  )
  await producer.close()
  const { dumpLog } = await import('../../src/log/inspect.ts')
  const { decodeEnvelope } = await import('../../src/producer/envelope.ts')
  const letters = []
  for await (const r of dumpLog(join(dir, 'dead-letter'))) letters.push(decodeEnvelope(r.payload))
  assert.equal(letters.length, 2)
  const big = letters.find((l) => l.topic === topic)
  assert.ok(big)
  assert.equal(big.headers.find(([k]) => k === 'origin')?.[1].toString(), 'test', 'original headers kept')
  assert.ok(big.headers.some(([k]) => k === 'spillway-dead-letter-reason'))
})

test('dead-letter topics: poison events go on to their routed topic with the reason; what that topic refuses too stays in the dead-letter log', async (t) => {
  const kafka = testKafka()
  const small = { config: { 'max.message.bytes': '2048' } }
  const orders = await createTopic(t, 'orders', small)
  const clicks = await createTopic(t, 'clicks', small)
  const ordersDlq = await createTopic(t, 'orders-dlq')
  const smallDlq = await createTopic(t, 'small-dlq', small)
  const dir = await tempDir(t)
  const producer = await createProducer({
    brokers: kafka.bootstrap,
    log: { dir },
    transportLingerMs: 0,
    deadLetterTopics: { [orders]: ordersDlq, '*': smallDlq },
  })
  t.after(() => producer.close())
  const routed: (string | undefined)[] = []
  producer.on('status', (s) => {
    if (s.type === 'dead-letter') routed.push(s.deadLetterTopic)
  })
  const [, big] = await producer.send(orders, [
    { value: 'o1' },
    { key: 'k', value: 'y'.repeat(10_000), headers: { origin: 'test' } },
    { value: 'o2' },
  ])
  const [, bigClick] = await producer.send(clicks, [{ value: 'c1' }, { value: 'z'.repeat(10_000) }])
  assert.ok(await producer.flush(20_000), 'events and dead letters delivered')
  const values = async (topic: string, expected: number) =>
    (await readTopic(topic, { expected, idleMs: 800 })).map((m) => m.value.toString())
  assert.deepEqual(await values(orders, 2), ['o1', 'o2'])
  assert.deepEqual(await values(clicks, 1), ['c1'])

  const [letter, ...more] = await readTopic(ordersDlq, { expected: 1, idleMs: 800, timeoutMs: 30_000 })
  assert.ok(letter && more.length === 0, 'one dead letter in the orders dead-letter topic')
  assert.equal(letter.value.length, 10_000)
  assert.equal(letter.key?.toString(), 'k')
  assert.equal(header(letter, 'spillway-id'), big?.id, 'the dead letter keeps the event’s id')
  assert.equal(header(letter, 'origin'), 'test', 'and its own headers')
  assert.equal(header(letter, 'spillway-original-topic'), orders)
  assert.match(header(letter, 'spillway-dead-letter-reason') ?? '', /MESSAGE_TOO_LARGE|RECORD_LIST_TOO_LARGE/)
  assert.deepEqual(
    routed,
    [ordersDlq, smallDlq, undefined],
    'the second answer is the dead-letter topic’s own refusal',
  )
  assert.equal(producer.stats().deadLettersDelivered, 1)
  assert.match(await producer.metrics.metrics(), /spillway_dead_letters_delivered_total 1/)
  assert.deepEqual(
    await readTopic(smallDlq, { idleMs: 2000 }),
    [],
    'the catch-all dead-letter topic refused the large click',
  )

  await producer.close()
  const { dumpLog } = await import('../../src/log/inspect.ts')
  const { decodeEnvelope } = await import('../../src/producer/envelope.ts')
  const kept = []
  for await (const r of dumpLog(join(dir, 'dead-letter'))) kept.push(decodeEnvelope(r.payload))
  assert.equal(kept.length, 1, 'what the dead-letter topic refused stays in the dead-letter log')
  const [click] = kept
  assert.equal(click?.id, bigClick?.id)
  assert.equal(click?.topic, clicks, 'under its own topic')
  const error = click?.headers.find(([k]) => k === 'spillway-dead-letter-topic-error')?.[1].toString()
  assert.match(error ?? '', new RegExp(`^${smallDlq}: .*(MESSAGE_TOO_LARGE|RECORD_LIST_TOO_LARGE)`))
})

test('topics the producer may not write to: their events are dead-lettered as not authorised, the other topic flows', async (t) => {
  // A broker with Kafka's authorizer. Where no ACL names a resource, everyone may do anything (every
  // client here is User:ANONYMOUS on the plaintext listener). `hidden` has only a deny of Write, so it
  // cannot even be described: metadata refuses it. `readonly` may be described but not written: the
  // produce request itself is refused.
  const cluster = await KafkaCluster.start({
    config: {
      'authorizer.class.name': 'org.apache.kafka.metadata.authorizer.StandardAuthorizer',
      'allow.everyone.if.no.acl.found': 'true',
    },
  })
  t.after(() => cluster.stop())
  const [open, hidden, readonly] = [randomName('open'), randomName('hidden'), randomName('readonly')]
  const admin = new Admin({ clientId: 'spillway-test', bootstrapBrokers: cluster.bootstrap })
  t.after(() => admin.close())
  await admin.createTopics({ topics: [open, hidden, readonly], partitions: 1, replicas: 1 })
  const acl = (...args: string[]) =>
    kafkaTool('org.apache.kafka.tools.AclCommand', [
      '--bootstrap-server',
      cluster.bootstrap[0] as string,
      '--add',
      ...args,
    ])
  await acl(
    '--deny-principal',
    'User:ANONYMOUS',
    '--operation',
    'Write',
    '--topic',
    hidden,
    '--topic',
    readonly,
  )
  await acl('--allow-principal', 'User:ANONYMOUS', '--operation', 'Describe', '--topic', readonly)
  const dir = await tempDir(t)
  const producer = await createProducer({ brokers: cluster.bootstrap, log: { dir }, transportLingerMs: 0 })
  t.after(() => producer.close())
  const reasons = new Map<string | undefined, string>()
  producer.on('status', (s) => {
    if (s.type === 'dead-letter') reasons.set(s.topic, s.reason)
  })
  const [denied] = await producer.sendTo([
    { topic: hidden, event: { value: 'not allowed here', headers: { origin: 'test' } } },
    { topic: open, event: { value: 'allowed' } },
    { topic: readonly, event: { value: 'nor here' } },
  ])
  await producer.send(open, [{ value: 'after' }])
  assert.ok(await producer.flush(20_000), 'the line keeps moving past the denied topics')
  const values = (await readTopic(open, { expected: 2, idleMs: 800, bootstrap: cluster.bootstrap })).map(
    (m) => m.value.toString(),
  )
  assert.deepEqual(values, ['allowed', 'after'])
  assert.equal(producer.stats().deadLettered, 2)
  t.diagnostic(`reasons: ${[...reasons.values()].join('; ')}`)
  assert.match(reasons.get(hidden) ?? '', /^metadata for .*TOPIC_AUTHORIZATION_FAILED/)
  assert.match(reasons.get(readonly) ?? '', /TOPIC_AUTHORIZATION_FAILED/)
  assert.doesNotMatch(reasons.get(readonly) ?? '', /^metadata/, 'refused by the produce request itself')
  await producer.close()
  const { dumpLog } = await import('../../src/log/inspect.ts')
  const { decodeEnvelope } = await import('../../src/producer/envelope.ts')
  const letters: Envelope[] = []
  for await (const r of dumpLog(join(dir, 'dead-letter'))) letters.push(decodeEnvelope(r.payload))
  assert.deepEqual(
    letters.map((l) => l.topic),
    [hidden, readonly],
  )
  assert.equal(letters[0]?.id, denied?.id)
  const header = (name: string) => letters[0]?.headers.find(([k]) => k === name)?.[1].toString()
  assert.equal(header('origin'), 'test', 'original headers kept')
  assert.match(header('spillway-dead-letter-reason') ?? '', /TOPIC_AUTHORIZATION_FAILED/)
})

test('restart: undelivered records in the log are delivered after start, in order, with the same ids', async (t) => {
  const kafka = testKafka()
  const topic = await createTopic(t, 'restart')
  const dir = await tempDir(t)
  const offline = await createProducer({ log: { dir } })
  const accepted = await offline.send(
    topic,
    Array.from({ length: 100 }, (_, i) => ({ value: String(i) })),
  )
  await offline.close()
  const online = await createProducer({ brokers: kafka.bootstrap, log: { dir }, transportLingerMs: 0 })
  t.after(() => online.close())
  assert.ok(await online.flush(20_000))
  const messages = await readTopic(topic, { expected: 100, idleMs: 800 })
  assert.deepEqual(
    messages.map((m) => m.value.toString()),
    Array.from({ length: 100 }, (_, i) => String(i)),
  )
  assert.deepEqual(
    messages.map((m) => header(m, 'spillway-id')),
    accepted.map((a) => a.id),
  )
})

test('a backlog larger than one partition takes in one request goes in several batches, none refused', async (t) => {
  const kafka = testKafka()
  const topic = await createTopic(t, 'one-partition', { partitions: 1 })
  const dir = await tempDir(t)
  const offline = await createProducer({ log: { dir } })
  const value = Buffer.alloc(1024, 'p')
  for (let i = 0; i < 20; i++) {
    await offline.send(
      topic,
      Array.from({ length: 200 }, (_, j) => ({
        value: Buffer.concat([Buffer.from(`${i * 200 + j}:`), value]),
      })),
    )
  }
  await offline.close()
  const batches: { records: number; bytes: number }[] = []
  const onBatch = (message: unknown): void => void batches.push(message as { records: number; bytes: number })
  dc.subscribe('spillway:dispatcher:batch', onBatch)
  t.after(() => dc.unsubscribe('spillway:dispatcher:batch', onBatch))
  // 4 MiB batches, but Kafka takes at most max.message.bytes (1 MiB) for one partition in one request
  const online = await createProducer({ brokers: kafka.bootstrap, log: { dir }, transportLingerMs: 0 })
  t.after(() => online.close())
  assert.ok(await online.flush(30_000))
  const stats = online.stats()
  assert.equal(stats.delivered, 4000)
  assert.equal(stats.deadLettered, 0)
  assert.ok(batches.length >= 4, `4 MiB for one partition needs at least 4 requests (${batches.length})`)
  assert.ok(
    batches.every((b) => b.bytes <= 1_000_000),
    `every request within the partition limit: ${batches.map((b) => b.bytes).join(', ')}`,
  )
  const messages = await readTopic(topic, { expected: 4000, idleMs: 1000 })
  assert.deepEqual(
    messages.map((m) => Number(m.value.toString().split(':')[0])),
    Array.from({ length: 4000 }, (_, n) => n),
    'every record once, in order',
  )
})

test('while Kafka is unreachable only small probes are sent; after healing everything arrives in order', async (t) => {
  const kafka = testKafka()
  t.after(() => kafka.toxiproxy.reset())
  const topic = await createTopic(t, 'probe', { partitions: 3 })
  const dir = await tempDir(t)
  const producer = await createProducer({
    brokers: kafka.proxiedBootstrap,
    clientId: 'spillway-probe-test',
    log: { dir },
    deliveryTimeoutMs: 1500,
    breaker: { cooldownMs: 100, maxCooldownMs: 300 },
    transportLingerMs: 0,
  })
  t.after(() => producer.close(1000))
  // one delivery first, so the partition count is known and the first failed attempt is a full batch
  await producer.send(topic, [{ key: 'k', value: 'first' }])
  assert.ok(await producer.flush(20_000))
  const attempts: number[] = []
  const onFailure = (message: unknown): void => {
    attempts.push((message as { records: number }).records)
  }
  dc.subscribe('spillway:dispatcher:failure', onFailure)
  t.after(() => dc.unsubscribe('spillway:dispatcher:failure', onFailure))

  await kafka.toxiproxy.cut(kafka.proxyName)
  // one append, so the first attempt after the cut is one large batch
  const value = Buffer.alloc(1024, 'v')
  const results = await producer.send(
    topic,
    Array.from({ length: 2000 }, (_, n) => ({
      key: `k${n % 13}`,
      value: Buffer.concat([Buffer.from(`${n}:`), value]),
    })),
  )
  assert.ok(results.every((r) => r.status === 'accepted'))
  const until = performance.now() + 30_000
  while (attempts.length < 4 && performance.now() < until) await new Promise((r) => setTimeout(r, 100))
  assert.ok(attempts.length >= 4, `the dispatcher kept trying (${attempts.length} failed attempts)`)
  t.diagnostic(`records per failed attempt: ${attempts.join(', ')}`)
  assert.ok((attempts[0] ?? 0) > 100, 'the first attempt carried the whole batch')
  assert.ok(
    attempts.slice(1).every((n) => n <= 100),
    `after the first failure every attempt is a probe of at most 100 records: ${attempts.join(', ')}`,
  )

  await kafka.toxiproxy.heal(kafka.proxyName)
  assert.ok(await producer.flush(60_000), 'the backlog drains once Kafka is reachable')
  const messages = await readTopic(topic, { expected: 2001, idleMs: 1500 })
  const seen = new Set<string>()
  const lastPerKey = new Map<string, number>()
  for (const m of messages) {
    const text = m.value.toString()
    if (text === 'first') continue
    const n = Number(text.slice(0, text.indexOf(':')))
    seen.add(String(n))
    const key = m.key.toString()
    assert.ok((lastPerKey.get(key) ?? -1) < n, `per-key order for ${key}`)
    lastPerKey.set(key, n)
  }
  assert.equal(seen.size, 2000, 'every accepted event arrived')
})

test('a batch Kafka refused keeps the partitions it was routed with, even if partitions are added meanwhile', async (t) => {
  const kafka = testKafka()
  t.after(() => kafka.toxiproxy.reset())
  const topic = await createTopic(t, 'kept-routing', { partitions: 2 })
  const dir = await tempDir(t)
  const maxAgeMs = 3000
  const producer = await createProducer({
    brokers: kafka.proxiedBootstrap,
    clientId: 'spillway-kept-routing',
    log: { dir },
    deliveryTimeoutMs: 1500,
    // the partition count is looked up again after 3 s: only keeping the batch keeps its routing
    metadataMaxAgeMs: maxAgeMs,
    breaker: { cooldownMs: 100, maxCooldownMs: 300 },
    transportLingerMs: 0,
  })
  t.after(() => producer.close(1000))
  // one delivery first: the partition count (2) is looked up now and trusted for the next 3 s
  await producer.send(topic, [{ key: 'k', value: 'first' }])
  assert.ok(await producer.flush(20_000))
  const countedAt = performance.now()
  let failures = 0
  const onFailure = (): void => {
    failures++
  }
  dc.subscribe('spillway:dispatcher:failure', onFailure)
  t.after(() => dc.unsubscribe('spillway:dispatcher:failure', onFailure))

  await kafka.toxiproxy.cut(kafka.proxyName)
  // fewer than a probe's 100 records, so every attempt carries the whole kept batch
  const keys = Array.from({ length: 40 }, (_, n) => `key-${n}`)
  const results = await producer.send(
    topic,
    keys.map((key, n) => ({ key, value: String(n) })),
  )
  assert.ok(results.every((r) => r.status === 'accepted'))
  while (failures < 2 && performance.now() - countedAt < 2500) await new Promise((r) => setTimeout(r, 20))
  assert.ok(failures >= 2, `the batch was routed, refused and kept (${failures} failed attempts)`)

  const admin = new Admin({ clientId: 'spillway-test-admin', bootstrapBrokers: kafka.bootstrap })
  try {
    await admin.createPartitions({ topics: [{ name: topic, count: 4 }] })
  } finally {
    await admin.close()
  }
  // past the count's age: a batch read again now would be routed over 4 partitions
  await new Promise((r) => setTimeout(r, Math.max(0, countedAt + maxAgeMs + 500 - performance.now())))
  await kafka.toxiproxy.heal(kafka.proxyName)
  assert.ok(await producer.flush(60_000), 'the kept batch goes through once Kafka is reachable')
  await producer.send(
    topic,
    keys.map((key, n) => ({ key, value: `after-${n}` })),
  )
  assert.ok(await producer.flush(20_000))

  const { partitionForKey } = await import('../../src/producer/partitioner.ts')
  const moved = keys.filter(
    (key) => partitionForKey(Buffer.from(key), 2) !== partitionForKey(Buffer.from(key), 4),
  )
  assert.ok(moved.length > 0, 'some keys map elsewhere with 4 partitions, so the checks below can fail')
  const messages = (await readTopic(topic, { expected: 81, idleMs: 1500 })).filter(
    (m) => m.key.toString() !== 'k',
  )
  assert.equal(messages.length, 80)
  for (const m of messages) {
    const after = m.value.toString().startsWith('after-')
    assert.equal(
      m.partition,
      partitionForKey(m.key, after ? 4 : 2),
      after
        ? `${m.key.toString()}, sent after the change, uses all 4 partitions`
        : `${m.key.toString()}, kept from before the change, went where it was routed then`,
    )
  }
})

for (const ack of ['kafka', 'memory'] as const)
  test(`'${ack}' mode with a log: the main log directory is neither opened nor locked, and a restart counts no replays`, async (t) => {
    const kafka = testKafka()
    const topic = await createTopic(t, `no-main-log-${ack}`)
    const dir = await tempDir(t)
    const open = () =>
      createProducer({
        ack,
        brokers: kafka.bootstrap,
        clientId: `spillway-${ack}-log`,
        log: { dir },
        transportLingerMs: 0,
      })
    for (let run = 0; run < 2; run++) {
      const producer = await open()
      const results = await producer.send(
        topic,
        Array.from({ length: 20 }, (_, i) => ({ value: `run ${run} event ${i}` })),
      )
      assert.ok(results.every((r) => r.status === 'accepted'))
      assert.ok(await producer.flush(20_000))
      const files = await readdir(dir)
      assert.ok(!files.includes('LOCK'), `the main log is not locked: ${files.join(', ')}`)
      assert.ok(!files.some((f) => f.startsWith('seg-')), 'the main log holds no segments')
      assert.ok(files.includes('dead-letter'), 'the dead-letter log is there')
      assert.equal(producer.stats().replayed, 0, `run ${run}: nothing counted as replayed`)
      assert.equal(producer.stats().log, undefined, 'no main log in the stats')
      await producer.close()
    }
    assert.equal((await readTopic(topic, { expected: 40, idleMs: 1000 })).length, 40)
  })
