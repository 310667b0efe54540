/** The cluster's one topic-metadata cache, driven by a scripted source and clock (no broker). */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { type ClusterSnapshot, MetadataCache } from '../../src/transport/metadata-cache.ts'

function snapshot(topics: Record<string, number>, leader = 1): ClusterSnapshot {
  return {
    clusterId: 'c',
    controllerId: 1,
    brokers: [{ nodeId: leader, host: '127.0.0.1', port: 9000 + leader, rack: null }],
    topics: Object.entries(topics).map(([name, count]) => ({
      name,
      id: `id-${name}`,
      partitions: Array.from({ length: count }, (_, partition) => ({
        partition,
        leader,
        leaderEpoch: 0,
        replicas: [leader],
        isr: [leader],
        offlineReplicas: [],
      })),
    })),
  }
}

test('one TTL: fresh answers come from the cache, stale ones and refreshes from the broker', async () => {
  let now = 0
  let partitions = 3
  const asked: string[][] = []
  const cache = new MetadataCache(
    async (topics) => {
      asked.push([...topics])
      return snapshot({ orders: partitions })
    },
    30_000,
    () => now,
  )
  assert.equal((await cache.topic('orders'))?.partitions.length, 3)
  partitions = 6
  now = 29_999
  assert.equal((await cache.topic('orders'))?.partitions.length, 3, 'still fresh')
  now = 30_000
  assert.equal((await cache.topic('orders'))?.partitions.length, 6, 'stale: asked again')
  partitions = 12
  assert.equal((await cache.topic('orders', { refresh: true }))?.partitions.length, 12)
  cache.invalidate('orders')
  await cache.topic('orders')
  assert.equal(asked.length, 4)
  assert.equal(cache.broker(1)?.port, 9001)
})

test('concurrent misses share one request; a missing topic is remembered as missing', async () => {
  let calls = 0
  const cache = new MetadataCache(async () => {
    calls++
    await new Promise((r) => setTimeout(r, 10))
    return snapshot({})
  }, 30_000)
  const answers = await Promise.all([cache.topic('gone'), cache.topic('gone'), cache.topic('gone')])
  assert.deepEqual(answers, [undefined, undefined, undefined])
  assert.equal(calls, 1)
  assert.equal(await cache.topic('gone'), undefined)
  assert.equal(calls, 1, 'no request per event for a topic that does not exist')
})

test('a failed request is not cached: the next lookup asks again', async () => {
  let fail = true
  const cache = new MetadataCache(async () => {
    if (fail) throw new Error('broker down')
    return snapshot({ t: 1 })
  }, 30_000)
  await assert.rejects(cache.topic('t'), /broker down/)
  fail = false
  assert.equal((await cache.topic('t'))?.partitions.length, 1)
})
