/** The fetch plan: credit, rotation and fetch sizes that follow the records (no broker). */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { FetchPlan } from '../../src/consumer/fetch-plan.ts'

const MiB = 1024 * 1024
const all = () => true

test('only partitions with buffer credit are fetched; a full one waits until its handlers drain it', () => {
  const plan = new FetchPlan({ maxBufferedBytes: 12 * MiB })
  const partitions = Array.from({ length: 12 }, (_, partition) => ({ topic: 't', partition }))
  plan.assign(partitions)
  assert.equal(plan.budget(), 12 * MiB, 'before any data, a first partition may use the whole budget')
  plan.received(partitions.map((p) => ({ ...p, bytes: 100_000, largestBatch: 100_000 })))
  assert.equal(plan.budget(), MiB, 'shared evenly among the partitions that have data')
  assert.equal(plan.next(all).length, 12)
  plan.received([{ topic: 't', partition: 3, bytes: MiB, largestBatch: 800_000 }])
  assert.ok(!plan.next(all).some((p) => p.partition === 3), 'the full partition is left out')
  assert.equal(plan.next(all).length, 11, 'the others are still asked for')
  plan.drained('t', 3, 600_000)
  assert.ok(
    plan.next(all).some((p) => p.partition === 3),
    'back in once drained below its budget',
  )
})

test('a backlogged partition beside idle ones takes the whole budget; idle ones take no share', () => {
  const plan = new FetchPlan({ maxBufferedBytes: 64 * MiB })
  const partitions = Array.from({ length: 12 }, (_, partition) => ({ topic: 't', partition }))
  plan.assign(partitions)
  plan.received(
    partitions.map((p) => ({
      ...p,
      bytes: p.partition === 0 ? 1_600_000 : 0,
      largestBatch: p.partition === 0 ? 1_600_000 : 0,
    })),
  )
  assert.equal(plan.budget(), 64 * MiB)
  assert.equal(plan.fetchBytes('t', 0), 32 * MiB, 'half the whole budget, as if it were alone')
  plan.received([{ topic: 't', partition: 5, bytes: 10, largestBatch: 10 }])
  assert.equal(plan.budget(), 32 * MiB, 'a partition that wakes takes its share')
})

test('partitions that returned data go to the back: an empty one is never stuck behind a busy one', () => {
  const plan = new FetchPlan({ maxBufferedBytes: 64 * MiB })
  plan.assign([0, 1, 2].map((partition) => ({ topic: 't', partition })))
  assert.deepEqual(
    plan.next(all).map((p) => p.partition),
    [0, 1, 2],
  )
  plan.received([{ topic: 't', partition: 0, bytes: 1000, largestBatch: 1000 }])
  assert.deepEqual(
    plan.next(all).map((p) => p.partition),
    [1, 2, 0],
  )
  plan.received([
    { topic: 't', partition: 1, bytes: 0, largestBatch: 0 },
    { topic: 't', partition: 2, bytes: 10, largestBatch: 10 },
  ])
  assert.deepEqual(
    plan.next(all).map((p) => p.partition),
    [1, 0, 2],
  )
})

test('the fetch size grows to several of the largest batches seen, within the limits', () => {
  const plan = new FetchPlan({ maxBufferedBytes: 256 * MiB, maxPartitionFetchBytes: 8 * MiB })
  plan.assign([{ topic: 'deals', partition: 0 }])
  assert.equal(plan.fetchBytes('deals', 0), MiB, 'one MiB before anything was seen')
  plan.received([{ topic: 'deals', partition: 0, bytes: 300_000, largestBatch: 300_000 }])
  assert.equal(plan.fetchBytes('deals', 0), 1_200_000, 'four of its batches')
  plan.received([{ topic: 'deals', partition: 0, bytes: 800_000, largestBatch: 800_000 }])
  assert.equal(plan.fetchBytes('deals', 0), 8 * MiB, 'large records: as many as fit, not one')
  plan.received([{ topic: 'deals', partition: 0, bytes: 5 * MiB, largestBatch: 5 * MiB }])
  assert.equal(plan.fetchBytes('deals', 0), 8 * MiB, 'capped')
})

test('a fetch brings at most half a partition’s budget (one batch at least), so the next can go out meanwhile', () => {
  const plan = new FetchPlan({ maxBufferedBytes: 64 * MiB })
  const partitions = Array.from({ length: 12 }, (_, partition) => ({ topic: 'deals', partition }))
  plan.assign(partitions)
  plan.received(partitions.map((p) => ({ ...p, bytes: 1_600_000, largestBatch: 1_600_000 })))
  const budget = plan.budget()
  assert.equal(budget, Math.floor((64 * MiB) / 12))
  assert.equal(
    plan.fetchBytes('deals', 0),
    Math.floor(budget / 2),
    'four batches would not fit twice in the budget',
  )
  plan.received([{ topic: 'deals', partition: 0, bytes: 0, largestBatch: 4 * budget }])
  assert.equal(plan.fetchBytes('deals', 0), 4 * budget, 'a batch larger than the budget still comes whole')
})

test('starved: the partitions left out for lack of credit, not the paused ones', () => {
  const plan = new FetchPlan({ maxBufferedBytes: 4 * MiB, minPartitionFetchBytes: MiB })
  plan.assign([0, 1, 2].map((partition) => ({ topic: 't', partition })))
  plan.received([
    { topic: 't', partition: 0, bytes: 2 * MiB, largestBatch: MiB },
    { topic: 't', partition: 1, bytes: 2 * MiB, largestBatch: MiB },
  ])
  plan.pause('t', 1, true)
  assert.deepEqual(
    plan.starved(all).map((p) => p.partition),
    [0],
  )
  plan.drained('t', 0, 2 * MiB)
  assert.deepEqual(plan.starved(all), [])
})

test('pause leaves a partition out; a new assignment forgets revoked partitions and puts new ones first', () => {
  const plan = new FetchPlan({ maxBufferedBytes: 64 * MiB })
  plan.assign([0, 1].map((partition) => ({ topic: 't', partition })))
  plan.pause('t', 0, true)
  assert.deepEqual(
    plan.next(all).map((p) => p.partition),
    [1],
  )
  plan.pause('t', 0, false)
  plan.received([{ topic: 't', partition: 1, bytes: 5, largestBatch: 5 }])
  plan.assign([1, 2].map((partition) => ({ topic: 't', partition })))
  assert.deepEqual(
    plan.next(all).map((p) => p.partition),
    [2, 1],
  )
  assert.equal(plan.buffered('t', 1), 5, 'what a kept partition buffered is kept')
  assert.equal(plan.buffered('t', 0), 0, 'a revoked partition is forgotten')
  assert.deepEqual(
    plan.next((p) => p.partition === 2).map((p) => p.partition),
    [2],
    'per broker',
  )
})
