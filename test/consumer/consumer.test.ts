/** The consumer against the real broker: groups, ordering, commits, errors, dedupe, close. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Admin } from '@platformatic/kafka'
import {
  type ConsumedRecord,
  type ConsumerStatus,
  createConsumer,
  type SpillwayConsumer,
} from '../../src/index.ts'
import {
  createTopic,
  produceRaw,
  type RawMessage,
  randomName,
  readTopic,
  testKafka,
} from '../helpers/kafka.ts'
import { until } from '../helpers/wait.ts'

function collect<T>(consumer: SpillwayConsumer<T>): ConsumerStatus[] {
  const out: ConsumerStatus[] = []
  consumer.on('status', (s) => out.push(s))
  return out
}

function header(message: RawMessage | undefined, name: string): string | undefined {
  for (const [k, v] of message?.headers ?? []) if (k.toString() === name) return v.toString()
  return undefined
}

async function committed(
  groupId: string,
  topic: string,
): Promise<Map<number, { offset: bigint; metadata: string | null }>> {
  const admin = new Admin({ clientId: 'spillway-test-admin', bootstrapBrokers: testKafka().bootstrap })
  try {
    const [group] = await admin.listConsumerGroupOffsets({ groups: [groupId] })
    const out = new Map<number, { offset: bigint; metadata: string | null }>()
    for (const t of group?.topics ?? [])
      if (t.name === topic)
        for (const p of t.partitions)
          out.set(p.partitionIndex, { offset: p.committedOffset, metadata: p.metadata ?? null })
    return out
  } finally {
    await admin.close()
  }
}

test('a group member reads every record once, keys in order, and commits the end on close', async (t) => {
  const topic = await createTopic(t, 'consume', { partitions: 3 })
  const records = Array.from({ length: 600 }, (_, i) => ({ key: `k${i % 20}`, value: `${i}` }))
  await produceRaw(topic, records)
  const groupId = randomName('group')
  const seen: ConsumedRecord[] = []
  const consumer = createConsumer({
    brokers: testKafka().bootstrap,
    groupId,
    topics: [topic],
    concurrency: 8,
    handler: async (record) => {
      const r = record as ConsumedRecord
      // out-of-order completion across keys: later keys may finish first
      await new Promise((res) => setTimeout(res, Number(r.value?.toString()) % 3))
      seen.push(r)
    },
  })
  t.after(() => consumer.close())
  const statuses = collect(consumer)
  await consumer.run()
  await until('600 records handled', () => seen.length >= 600)
  const places = new Set(seen.map((r) => `${r.partition}:${r.offset}`))
  assert.equal(places.size, 600, 'every offset handled')
  // a member fenced on a loaded machine (the test broker's session is 6 s) hands its uncommitted records
  // out again: at least once. Otherwise each record is handled exactly once.
  if (statuses.some((s) => s.type === 'revoked' && s.lost)) assert.ok(seen.length >= 600)
  else
    assert.equal(
      seen.length,
      600,
      `each record once; statuses ${JSON.stringify(statuses.map((s) => s.type))}`,
    )
  assert.equal(new Set(seen.map((r) => r.value?.toString())).size, 600, 'every record')
  const lastByKey = new Map<string, number>()
  for (const r of statuses.some((s) => s.type === 'revoked') ? [] : seen) {
    const key = r.key?.toString() as string
    const value = Number(r.value?.toString())
    assert.ok((lastByKey.get(key) ?? -1) < value, `key ${key} in order`)
    lastByKey.set(key, value)
  }
  assert.ok(
    seen.every((r) => r.id === `kafka:${topic}:${r.partition}:${r.offset}`),
    'records without a spillway-id get one from their place',
  )
  assert.ok(statuses.some((s) => s.type === 'assigned'))
  const stats = consumer.stats()
  assert.equal(stats.assigned, 3)
  assert.equal(stats.handled, seen.length)
  await consumer.close()
  assert.equal(consumer.stats().state, 'closed')
  const offsets = await committed(groupId, topic)
  const total = [...offsets.values()].reduce((sum, o) => sum + o.offset, 0n)
  assert.equal(total, 600n, 'every partition committed at its end')
})

test('without a group: every partition from the beginning, nothing committed', async (t) => {
  const topic = await createTopic(t, 'nogroup', { partitions: 2 })
  await produceRaw(
    topic,
    Array.from({ length: 50 }, (_, i) => ({
      value: `${i}`,
      partition: i % 2,
      headers: { 'spillway-id': `id-${i}` },
    })),
  )
  const seen: ConsumedRecord[] = []
  const consumer = createConsumer({
    brokers: testKafka().bootstrap,
    topics: [topic],
    handler: (r) => void seen.push(r as ConsumedRecord),
  })
  t.after(() => consumer.close())
  await consumer.run()
  await until('50 records', () => seen.length >= 50)
  assert.deepEqual(
    new Set(seen.map((r) => r.id)),
    new Set(Array.from({ length: 50 }, (_, i) => `id-${i}`)),
    'the producer’s event ids',
  )
})

test('a handler that throws is retried in place, then dead-lettered with where it came from; other keys go on', async (t) => {
  const topic = await createTopic(t, 'failing', { partitions: 1 })
  const dead = await createTopic(t, 'failing-dlq', { partitions: 1 })
  await produceRaw(topic, [
    { key: 'bad', value: 'poison' },
    ...Array.from({ length: 20 }, (_, i) => ({ key: `good${i}`, value: `ok${i}` })),
  ])
  const attempts: number[] = []
  const handled: string[] = []
  const consumer = createConsumer({
    brokers: testKafka().bootstrap,
    groupId: randomName('group'),
    topics: [topic],
    retries: 2,
    retryBackoffMs: 20,
    deadLetterTopics: { [topic]: dead },
    handler: async (record, context) => {
      const r = record as ConsumedRecord
      if (r.value?.toString() === 'poison') {
        attempts.push(context.attempt)
        throw new Error('cannot take this one')
      }
      handled.push(r.value?.toString() as string)
    },
  })
  t.after(() => consumer.close())
  const statuses = collect(consumer)
  await consumer.run()
  await until('the dead letter', () => consumer.stats().deadLettered === 1)
  await until('the good records', () => handled.length === 20)
  assert.deepEqual(attempts, [1, 2, 3], 'the first try and two retries')
  const errors = statuses.filter((s) => s.type === 'record-error')
  assert.deepEqual(
    errors.map((s) => (s.type === 'record-error' ? [s.code, s.action] : [])),
    [
      ['SPW_ERR_HANDLER_FAILED', 'retry'],
      ['SPW_ERR_HANDLER_FAILED', 'retry'],
      ['SPW_ERR_HANDLER_FAILED', 'dead-letter'],
    ],
  )
  const [letter] = await readTopic(dead, { expected: 1, idleMs: 500 })
  assert.equal(letter?.value.toString(), 'poison')
  assert.equal(letter?.key?.toString(), 'bad')
  assert.equal(header(letter, 'spillway-source-topic'), topic)
  assert.equal(header(letter, 'spillway-source-offset'), '0')
  assert.equal(header(letter, 'spillway-error'), 'cannot take this one')
  assert.equal(header(letter, 'spillway-id'), `kafka:${topic}:0:0`, 'the event keeps its id')
})

test('a decoder that throws goes through onError with the record; skip moves on and says so', async (t) => {
  const topic = await createTopic(t, 'decode', { partitions: 1 })
  await produceRaw(topic, [{ value: '{"n":1}' }, { value: 'not json' }, { value: '{"n":3}' }])
  const values: unknown[] = []
  const contexts: { id: string; code: string }[] = []
  const consumer = createConsumer<{ n: number }>({
    brokers: testKafka().bootstrap,
    topics: [topic],
    decode: (value) => JSON.parse(value?.toString() ?? 'null'),
    onError: (context) => {
      contexts.push({ id: context.records[0]?.id as string, code: context.code })
      return 'skip'
    },
    handler: (record) => void values.push((record as ConsumedRecord<{ n: number }>).value.n),
  })
  t.after(() => consumer.close())
  await consumer.run()
  await until('two records and a skip', () => values.length === 2 && consumer.stats().skipped === 1)
  assert.deepEqual(values.sort(), [1, 3])
  assert.deepEqual(contexts, [{ id: `kafka:${topic}:0:1`, code: 'SPW_ERR_HANDLER_FAILED' }])
})

test('duplicates at the input: every event written 10 times, the handler sees each id once', async (t) => {
  const topic = await createTopic(t, 'dupes', { partitions: 2 })
  const events = Array.from({ length: 100 }, (_, i) => ({
    key: `k${i % 7}`,
    value: `${i}`,
    headers: { 'spillway-id': `evt-${i}` },
  }))
  await produceRaw(topic, Array.from({ length: 10 }, () => events).flat())
  const seen = new Map<string, number>()
  const consumer = createConsumer({
    brokers: testKafka().bootstrap,
    groupId: randomName('group'),
    topics: [topic],
    handler: (record) => {
      const id = (record as ConsumedRecord).id
      seen.set(id, (seen.get(id) ?? 0) + 1)
    },
  })
  t.after(() => consumer.close())
  await consumer.run()
  await until('all 1000 records done', () => consumer.stats().handled + consumer.stats().duplicates >= 1000)
  assert.equal(seen.size, 100)
  assert.ok(
    [...seen.values()].every((n) => n === 1),
    'each id handled once',
  )
  assert.equal(consumer.stats().duplicates, 900)
})

test('batch: the handler gets one key’s buffered records together, in order', async (t) => {
  const topic = await createTopic(t, 'batch', { partitions: 1 })
  await produceRaw(
    topic,
    Array.from({ length: 200 }, (_, i) => ({ key: `k${i % 4}`, value: `${i}` })),
  )
  const batches: ConsumedRecord[][] = []
  const consumer = createConsumer({
    brokers: testKafka().bootstrap,
    topics: [topic],
    batch: true,
    concurrency: 2,
    handler: async (records) => {
      batches.push([...(records as readonly ConsumedRecord[])])
      await new Promise((r) => setTimeout(r, 20))
    },
  })
  t.after(() => consumer.close())
  await consumer.run()
  await until('200 records', () => batches.flat().length >= 200)
  assert.equal(batches.flat().length, 200)
  for (const b of batches) {
    assert.equal(new Set(b.map((r) => r.key?.toString())).size, 1, 'one key per batch')
    const offsets = b.map((r) => r.offset)
    assert.deepEqual(
      offsets,
      [...offsets].sort((x, y) => (x < y ? -1 : 1)),
      'in offset order',
    )
  }
  assert.ok(batches.length < 200, `records arrive batched (${batches.length} calls for 200 records)`)
})

test('options are checked with readable errors', () => {
  assert.throws(() => createConsumer({ topics: ['t'], handler: () => {} } as never), {
    code: 'SPW_ERR_INVALID_OPTION',
    message: /brokers/,
  })
  assert.throws(() => createConsumer({ brokers: ['127.0.0.1:1'], topics: [], handler: () => {} }), {
    code: 'SPW_ERR_INVALID_OPTION',
    message: /topics/,
  })
  assert.throws(() => createConsumer({ brokers: ['127.0.0.1:1'], topics: ['t'], handler: 'no' as never }), {
    message: /handler/,
  })
  assert.throws(
    () =>
      createConsumer({
        brokers: ['127.0.0.1:1'],
        topics: ['t'],
        handler: () => {},
        ordering: 'random' as never,
      }),
    { message: /ordering/ },
  )
  assert.throws(
    () => createConsumer({ brokers: ['127.0.0.1:1'], topics: ['t'], handler: () => {}, concurrency: 0 }),
    { message: /concurrency/ },
  )
  assert.throws(
    () => createConsumer({ brokers: ['127.0.0.1:1'], topics: ['t'], handler: () => {}, bogus: 1 } as never),
    { message: /bogus/ },
  )
})
