/** Where failed records go, what their copies carry, and retry.blockKey's bookkeeping, without a broker. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { PartitionWork } from '../../../src/consumer/partition.ts'
import type { Copy, TransactionalForwarder } from '../../../src/consumer/retry/forwarder.ts'
import { retryState } from '../../../src/consumer/retry/headers.ts'
import { readRetry } from '../../../src/consumer/retry/options.ts'
import { RetryRouter } from '../../../src/consumer/retry/router.ts'
import type { ConsumedRecord } from '../../../src/consumer/types.ts'

function router(input: unknown): { router: RetryRouter; sent: Copy[][] } {
  const sent: Copy[][] = []
  const forwarder = {
    forward: async (_work: PartitionWork, _offsets: readonly bigint[], copies: readonly Copy[]) => {
      sent.push([...copies])
      return true
    },
  } as unknown as TransactionalForwarder
  const retry = readRetry(input, 'g')
  assert.ok(retry)
  return {
    router: new RetryRouter({
      retry,
      sources: ['orders'],
      deadLetterRoutes: {},
      groupId: 'g',
      forwarder,
      partitions: async () => 4,
      now: () => 1_000_000,
    }),
    sent,
  }
}

/** A record as a consumer reads it from `topic`, with `headers` as a copy would carry them. */
function record(topic: string, offset: number, headers: [string, string][] = [], key = 'k'): ConsumedRecord {
  return {
    topic,
    partition: 2,
    offset: BigInt(offset),
    timestamp: 5,
    key: Buffer.from(key),
    value: Buffer.from('{}'),
    headers: headers.map(([k, v]) => [k, Buffer.from(v)] as [string, Buffer]),
    id: 'ev-1',
  }
}

const asRecord = (copy: Copy, offset: number): ConsumedRecord =>
  record(copy.topic, offset, copy.headers as [string, string][], copy.key?.toString())

test('a failure moves a record tier by tier, then to the dead-letter topic, keeping its origin and first error', async () => {
  const { router: r, sent } = router({ tiers: [{ delayMs: 100 }, { delayMs: 2000 }] })
  const work = new PartitionWork('orders', 2, 0n, null, 1)
  assert.deepEqual(r.topics, ['orders', 'orders.retry-1', 'orders.retry-2'])
  await r.forward(work, [record('orders', 7)], {
    reason: 'first',
    code: 'SPW_ERR_HANDLER_FAILED',
    deadLetterNow: false,
  })
  const one = sent[0]?.[0] as Copy
  assert.equal(one.topic, 'orders.retry-1')
  assert.equal(one.partition, 2)
  const state1 = retryState(asRecord(one, 0), true)
  assert.equal(state1.attempts, 1)
  assert.equal(state1.due, 1_000_100)
  assert.equal(state1.sourceOffset, 7n)
  assert.equal(state1.firstError, 'first')

  await r.forward(work, [asRecord(one, 0)], {
    reason: 'second',
    code: 'SPW_ERR_HANDLER_FAILED',
    deadLetterNow: false,
  })
  const two = sent[1]?.[0] as Copy
  assert.equal(two.topic, 'orders.retry-2')
  assert.equal(retryState(asRecord(two, 0), true).due, 1_002_000)
  await r.forward(work, [asRecord(two, 0)], {
    reason: 'third',
    code: 'SPW_ERR_HANDLER_TIMEOUT',
    deadLetterNow: false,
  })
  const dead = asRecord(sent[2]?.[0] as Copy, 0)
  assert.equal(dead.topic, 'orders.dead-letters')
  const headers = Object.fromEntries(dead.headers.map(([k, v]) => [k, v.toString()]))
  assert.equal(headers['spillway-id'], 'ev-1')
  assert.equal(headers['spillway-retry-attempts'], '3')
  assert.equal(headers['spillway-retry-first-error'], 'first')
  assert.equal(headers['spillway-retry-last-error'], 'third')
  assert.equal(headers['spillway-error-code'], 'SPW_ERR_HANDLER_TIMEOUT')
  assert.equal(headers['spillway-source-topic'], 'orders')
  assert.equal(headers['spillway-source-offset'], '7')
})

test("maxAttempts ends the chain early, 'dead-letter' skips the tiers, and a replayed dead letter starts afresh", async () => {
  const { router: r } = router({ tiers: [{ delayMs: 1 }, { delayMs: 1 }, { delayMs: 1 }], maxAttempts: 2 })
  assert.deepEqual(r.destination(record('orders', 1), false), { kind: 'tier', stage: 1 })
  assert.deepEqual(r.destination(record('orders', 1), true), { kind: 'dead-letter' })
  const inTier = record('orders.retry-1', 1, [['spillway-retry-attempts', '1']])
  assert.deepEqual(r.destination(inTier, false), { kind: 'dead-letter' })
  // back in the source topic after a replay, old retry headers do not count
  const replayed = record('orders', 1, [['spillway-retry-attempts', '2']])
  assert.deepEqual(r.destination(replayed, false), { kind: 'tier', stage: 1 })
  assert.equal(r.dedupeKey(record('orders', 1)), 'ev-1')
  assert.notEqual(r.dedupeKey(inTier), 'ev-1')
})

test('blockKey: a key with a record in a tier sends its later records after it, and is free once they are done', async () => {
  const { router: r, sent } = router({ tiers: [{ delayMs: 1 }, { delayMs: 1 }], blockKey: true })
  const work = new PartitionWork('orders', 2, 0n, null, 1)
  assert.equal(r.follows(record('orders', 1)), undefined)
  await r.forward(work, [record('orders', 1)], {
    reason: 'x',
    code: 'SPW_ERR_HANDLER_FAILED',
    deadLetterNow: false,
  })
  assert.equal(r.follows(record('orders', 2)), 1)
  assert.equal(r.follows(record('orders', 2, [], 'other')), undefined, 'other keys are free')
  await r.forward(work, [record('orders', 2)], {
    reason: 'x',
    code: 'SPW_ERR_HANDLER_FAILED',
    deadLetterNow: false,
    behind: 1,
  })
  const follower = sent[1]?.[0] as Copy
  const followerHeaders = Object.fromEntries(follower.headers)
  assert.equal(followerHeaders['spillway-retry-blocked'], 'true')
  assert.equal(followerHeaders['spillway-retry-attempts'], '0', 'a follower was never attempted')
  // the head fails again in tier 1: the follower, still in tier 1, must follow it to tier 2
  const head = asRecord(sent[0]?.[0] as Copy, 0)
  await r.forward(work, [head], { reason: 'y', code: 'SPW_ERR_HANDLER_FAILED', deadLetterNow: false })
  assert.equal(r.follows(asRecord(follower, 1)), 2)
  assert.equal(r.follows(record('orders', 3)), 2)
  r.settled([asRecord(sent[2]?.[0] as Copy, 0)])
  assert.equal(r.blockedKeys, 1, 'the follower is still in a tier')
  r.settled([asRecord(follower, 1)])
  assert.equal(r.blockedKeys, 0)
  assert.equal(r.follows(record('orders', 3)), undefined)
})
