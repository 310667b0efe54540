/**
 * Retry tiers against the real broker: a failed record moves to the next tier with its id and its retry
 * headers, waits there until due, is handled again by the same handler, and after the last tier lands in
 * the dead-letter topic; every move commits with its source offset in one transaction.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Admin } from '@platformatic/kafka'
import { type ConsumedRecord, createConsumer } from '../../../src/index.ts'
import {
  createTopic,
  produceRaw,
  type RawMessage,
  randomName,
  readTopic,
  testKafka,
} from '../../helpers/kafka.ts'
import { until } from '../../helpers/wait.ts'

function header(message: RawMessage | ConsumedRecord<unknown>, name: string): string | undefined {
  const entries = 'headerEntries' in message ? message.headerEntries : message.headers
  for (const [k, v] of entries) if (k.toString() === name) return v.toString()
  return undefined
}

test('a record that keeps failing goes through every tier, each after its delay, then to the dead-letter topic; one that recovers is handled once', async (t) => {
  const topic = await createTopic(t, 'tiers', { partitions: 2 })
  const records = Array.from({ length: 40 }, (_, i) => ({
    key: `k${i % 7}`,
    value: `{"n":${i}}`,
    headers: { 'spillway-id': `e-${i}` },
  }))
  await produceRaw(topic, records)
  // e-0…e-9 recover in the first tier, e-10…e-14 in the second, e-15…e-19 never; the rest never fail
  const recoversAt = (id: string): number => {
    const n = Number(id.slice(2))
    return n < 10 ? 1 : n < 15 ? 2 : n < 20 ? Number.POSITIVE_INFINITY : 0
  }
  const calls: { id: string; topic: string; at: number; due: number }[] = []
  const handled = new Map<string, number>()
  const consumer = createConsumer({
    brokers: testKafka().bootstrap,
    groupId: randomName('tiers'),
    topics: [topic],
    retry: { tiers: [{ delayMs: 700 }, { delayMs: 1500 }] },
    handler: (record) => {
      const r = record as ConsumedRecord
      const stage = r.topic === topic ? 0 : Number(r.topic.slice(-1))
      calls.push({
        id: r.id,
        topic: r.topic,
        at: Date.now(),
        due: Number(header(r, 'spillway-retry-due') ?? 0),
      })
      if (stage < recoversAt(r.id)) throw new Error(`down at stage ${stage}`)
      handled.set(r.id, (handled.get(r.id) ?? 0) + 1)
    },
  })
  t.after(() => consumer.close())
  await consumer.run()
  await until(
    'every record handled or dead-lettered',
    () => {
      const s = consumer.stats()
      return handled.size === 35 && s.deadLettered === 5
    },
    60_000,
  )

  for (const [id, n] of handled) assert.equal(n, 1, `${id} handled once`)
  // never before due: each tier attempt came at or after the time its copy said
  for (const c of calls) if (c.topic !== topic) assert.ok(c.at >= c.due, `${c.id} on ${c.topic} came early`)
  const tier1 = await readTopic(`${topic}.retry-1`, { expected: 20 })
  const tier2 = await readTopic(`${topic}.retry-2`, { expected: 10 })
  const dead = await readTopic(`${topic}.dead-letters`, { expected: 5 })
  const ids = (ms: RawMessage[]): string[] => ms.map((m) => header(m, 'spillway-id') as string).sort()
  assert.deepEqual(ids(tier1), Array.from({ length: 20 }, (_, i) => `e-${i}`).sort())
  assert.deepEqual(ids(tier2), Array.from({ length: 10 }, (_, i) => `e-${i + 10}`).sort())
  assert.deepEqual(ids(dead), Array.from({ length: 5 }, (_, i) => `e-${i + 15}`).sort())
  const last = dead[0] as RawMessage
  assert.equal(header(last, 'spillway-retry-attempts'), '3')
  assert.equal(header(last, 'spillway-source-topic'), topic)
  assert.equal(header(last, 'spillway-retry-first-error'), 'down at stage 0')
  assert.equal(header(last, 'spillway-retry-last-error'), 'down at stage 2')
  assert.equal(header(last, 'spillway-error-code'), 'SPW_ERR_HANDLER_FAILED')
  assert.ok(Number(header(last, 'spillway-retry-first-at')) <= Number(header(last, 'spillway-retry-last-at')))
  // keys and partitions stay: a tier copy is on its source record's partition number, with its key
  for (const m of [...tier1, ...tier2]) {
    const original = records.find((r) => r.headers['spillway-id'] === header(m, 'spillway-id'))
    assert.equal(m.key.toString(), original?.key)
    assert.equal(String(m.partition), header(m, 'spillway-source-partition'))
  }
  const stats = consumer.stats()
  assert.equal(stats.tiered, 30)
  assert.equal(stats.deadLettered, 5)
})

test('retry options are checked: tiers need a group, at least one tier, and maxAttempts within the tiers', () => {
  const base = { brokers: ['127.0.0.1:9092'], topics: ['t'], handler: () => undefined }
  assert.throws(
    () => createConsumer({ ...base, retry: { tiers: [{ delayMs: 10 }] } }),
    /groupId.*retry tiers/,
  )
  assert.throws(() => createConsumer({ ...base, groupId: 'g', retry: { tiers: [] } }), /retry\.tiers/)
  assert.throws(
    () => createConsumer({ ...base, groupId: 'g', retry: { tiers: [{ delayMs: 10 }], maxAttempts: 3 } }),
    /retry\.maxAttempts/,
  )
  assert.throws(
    () =>
      createConsumer({
        ...base,
        groupId: 'g',
        retry: {
          tiers: [
            { topic: 'a', delayMs: 1 },
            { topic: 'a', delayMs: 2 },
          ],
        },
      }),
    /different topic/,
  )
  assert.throws(
    () => createConsumer({ ...base, groupId: 'g', retry: { tiers: [{ delayMs: -1 }] } }),
    /retry\.tiers\[0\]\.delayMs/,
  )
})

test('retry.blockKey: later records of a key follow its failed record into the tier and are handled after it, in order; other keys go on', async (t) => {
  const records = Array.from({ length: 30 }, (_, i) => ({
    key: i % 3 === 0 ? 'blocked' : `free-${i % 4}`,
    value: String(i),
    headers: { 'spillway-id': `b-${i}` },
  }))
  const run = async (blockKey: boolean): Promise<{ order: string[]; freeBeforeFirst: number }> => {
    // a topic (and so tiers) of its own for each run
    const topic = await createTopic(t, 'block', { partitions: 2 })
    await produceRaw(topic, records)
    const order: string[] = []
    let firstDone = false
    let freeBeforeFirst = 0
    const consumer = createConsumer({
      brokers: testKafka().bootstrap,
      groupId: randomName('block'),
      topics: [topic],
      retry: { tiers: [{ delayMs: 800 }], blockKey },
      handler: (record) => {
        const r = record as ConsumedRecord
        // the first record of the blocked key fails once; everything else succeeds at the first try
        if (r.id === 'b-0' && r.topic === topic) throw new Error('not yet')
        if (r.key?.toString() === 'blocked') {
          order.push(r.value?.toString() as string)
          if (r.id === 'b-0') firstDone = true
        } else if (!firstDone) freeBeforeFirst++
      },
    })
    await consumer.run()
    try {
      await until('the blocked key handled', () => order.length === 10, 30_000)
      if (blockKey) assert.equal(consumer.stats().blockedBehind, 9)
    } finally {
      await consumer.close()
    }
    return { order, freeBeforeFirst }
  }
  const blocked = await run(true)
  assert.deepEqual(
    blocked.order,
    Array.from({ length: 10 }, (_, i) => String(i * 3)),
    'the key keeps its order',
  )
  assert.equal(blocked.freeBeforeFirst, 20, 'the other keys did not wait for the tier')
  // without blockKey a retry takes the record out of its key's order: the later ones go first
  const free = await run(false)
  assert.equal(free.order.at(-1), '0')
})

test('a copy the tier refuses (over its size limit) fails alone and is reported; the other records move on', async (t) => {
  const topic = await createTopic(t, 'tier-limit', { partitions: 1 })
  // the tier exists already, with a small record size limit
  const tier = `${topic}.retry-1`
  const admin = new Admin({
    clientId: 'spillway-test-admin',
    bootstrapBrokers: testKafka().bootstrap,
  })
  await admin.createTopics({
    topics: [tier],
    partitions: 1,
    replicas: 1,
    configs: [{ name: 'max.message.bytes', value: '3000' }],
  })
  t.after(async () => {
    await admin.deleteTopics({ topics: [tier] }).catch(() => undefined)
    await admin.close()
  })
  const records = Array.from({ length: 30 }, (_, i) => ({
    key: `k${i}`,
    // one value fits the source topic but, with the retry headers, not the tier
    value: i === 7 ? 'x'.repeat(2900) : `small-${i}`,
    headers: { 'spillway-id': `s-${i}` },
  }))
  await produceRaw(topic, records)
  const handled = new Set<string>()
  const errors: string[] = []
  const consumer = createConsumer({
    brokers: testKafka().bootstrap,
    groupId: randomName('tier-limit'),
    topics: [topic],
    retry: { tiers: [{ delayMs: 0 }] },
    handler: (record) => {
      const r = record as ConsumedRecord
      if (r.topic === topic) throw new Error('to the tier')
      handled.add(r.id)
    },
  })
  consumer.on('status', (s) => {
    if (s.type === 'record-error' && s.id === 's-7' && /forwarding failed/.test(s.message))
      errors.push(s.code)
  })
  t.after(() => consumer.close())
  await consumer.run()
  await until('the other records handled from the tier', () => handled.size === 29, 60_000)
  await until('the refused move is reported', () => errors.length > 0, 30_000)
  assert.ok(!handled.has('s-7'))
  assert.equal(errors[0], 'SPW_ERR_RETRY_TRANSACTION')
})
