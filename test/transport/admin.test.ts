/** The admin facet's translation of the client's answers (no broker; the facet itself is tested in cluster-contract.ts). */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { snapshotOf } from '../../src/transport/admin.ts'

test('metadata: internal topics the client leaves out as undefined are skipped, partitions keep their index', () => {
  const partition = { leader: 1, leaderEpoch: 0, replicas: [1], isr: [1], offlineReplicas: [] }
  const snapshot = snapshotOf({
    id: 'cluster',
    controllerId: 1,
    lastUpdate: 0,
    brokers: new Map([[1, { host: '127.0.0.1', port: 9092, rack: null }]]),
    topics: new Map([
      ['__consumer_offsets', undefined as never],
      ['orders', { id: 't', partitions: [partition, partition], partitionsCount: 2, lastUpdate: 0 }],
    ]),
  })
  assert.deepEqual(
    snapshot.topics.map((t) => [t.name, t.partitions.map((p) => p.partition)]),
    [['orders', [0, 1]]],
  )
  assert.deepEqual(snapshot.brokers, [{ nodeId: 1, host: '127.0.0.1', port: 9092, rack: null }])
})
