/**
 * The classic group protocol (JoinGroup/SyncGroup with cooperative-sticky rebalancing), on the suite's
 * broker with `groupProtocol: 'classic'`, and chosen by itself ('auto', the default) on a broker whose
 * group coordinator offers only the classic protocol.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Admin } from '@platformatic/kafka'
import { KafkaCluster } from '../../scripts/kafka/cluster.ts'
import { createConsumer, type SpillwayConsumer } from '../../src/consumer/consumer.ts'
import type { ConsumerStatus } from '../../src/consumer/types.ts'
import { createTopic, produceRaw, randomName, testKafka } from '../helpers/kafka.ts'
import { until } from '../helpers/wait.ts'

const records = (from: number, n: number) =>
  Array.from({ length: n }, (_, i) => ({ key: `k${from + i}`, value: `{"n":${from + i}}` }))

test('classic protocol: a second member takes half the partitions cooperatively while the first keeps the rest; no partition has two owners; each record once', async (t) => {
  const { bootstrap } = testKafka()
  const topic = await createTopic(t, 'classic', { partitions: 6 })
  const groupId = randomName('classic')
  const handled = new Map<string, number>()
  /** Ownership changes of both members, in the order they happened. */
  const log: { member: string; change: 'assigned' | 'revoked'; lost: boolean; partitions: number[] }[] = []
  const member = (name: string): SpillwayConsumer => {
    const consumer = createConsumer({
      brokers: bootstrap,
      groupId,
      topics: [topic],
      groupProtocol: 'classic',
      sessionTimeoutMs: 6000,
      commitIntervalMs: 100,
      closeTimeoutMs: 2000,
      handler: async (r) => {
        const k = `${r.partition}:${r.offset}`
        handled.set(k, (handled.get(k) ?? 0) + 1)
        await new Promise((resolve) => setTimeout(resolve, 2))
      },
    })
    consumer.on('status', (s: ConsumerStatus) => {
      if (s.type === 'assigned' || s.type === 'revoked')
        log.push({
          member: name,
          change: s.type,
          lost: s.type === 'revoked' && s.lost,
          partitions: s.partitions.map((p) => p.partition),
        })
    })
    t.after(() => consumer.close())
    return consumer
  }
  const owned = (c: SpillwayConsumer): number[] =>
    c
      .stats()
      .partitions.map((p) => p.partition)
      .sort((a, b) => a - b)

  const a = member('A')
  await a.run()
  await produceRaw(topic, records(0, 300))
  await until('A handles the first 300', () => handled.size >= 300, 30_000)
  assert.equal(a.stats().groupProtocol, 'classic')
  assert.deepEqual(owned(a), [0, 1, 2, 3, 4, 5])

  const b = member('B')
  await b.run()
  await produceRaw(topic, records(300, 300))
  await until(
    'the two members share the partitions',
    () => owned(a).length === 3 && owned(b).length === 3 && handled.size >= 600,
    40_000,
  )
  assert.deepEqual([...owned(a), ...owned(b)].sort(), [0, 1, 2, 3, 4, 5])
  // cooperative: A gave up only what B took, once, and never the partitions it kept
  const fromA = log.filter((e) => e.member === 'A' && e.change === 'revoked').flatMap((e) => e.partitions)
  assert.deepEqual(fromA.sort(), owned(b), 'A was revoked exactly the partitions B owns now')
  assert.ok(a.stats().memberEpoch >= 2, 'commits go under the generation the rebalance made')

  await a.close()
  await produceRaw(topic, records(600, 100))
  await until(
    'B owns every partition and handles the rest',
    () => owned(b).length === 6 && handled.size >= 700,
    40_000,
  )

  // no partition is assigned to a member while the other still owns it
  const owner = new Map<number, string>()
  for (const e of log) {
    for (const p of e.partitions) {
      if (e.change === 'revoked') owner.delete(p)
      else {
        assert.equal(
          owner.get(p),
          undefined,
          `partition ${p} given to ${e.member} while ${owner.get(p)} owned it`,
        )
        owner.set(p, e.member)
      }
    }
  }
  const lost = log.some((e) => e.lost)
  assert.equal(handled.size, 700, 'every record handled')
  if (!lost)
    assert.ok(
      [...handled.values()].every((n) => n === 1),
      'and each once, as no member was fenced',
    )
})

test('auto: on a broker that offers only the classic protocol the consumer joins with it, handles everything and commits', async (t) => {
  const cluster = await KafkaCluster.start({
    nodes: 1,
    config: { 'group.coordinator.rebalance.protocols': 'classic' },
  })
  t.after(() => cluster.stop())
  const brokers = cluster.bootstrap
  const admin = new Admin({ clientId: 'spillway-test-admin', bootstrapBrokers: brokers })
  t.after(() => admin.close())
  const topic = randomName('classic-only')
  await admin.createTopics({ topics: [topic], partitions: 3, replicas: 1 })
  await produceRaw(topic, records(0, 60), { bootstrap: brokers })
  const groupId = randomName('auto')
  let seen = 0
  const troubles: string[] = []
  const consumer = createConsumer({
    brokers,
    groupId,
    topics: [topic],
    from: 'beginning',
    commitIntervalMs: 100,
    handler: () => {
      seen++
    },
  })
  consumer.on('status', (s: ConsumerStatus) => {
    if (s.type === 'connection' && s.code) troubles.push(s.code)
  })
  t.after(() => consumer.close())
  await consumer.run()
  await until('every record is handled', () => seen === 60, 40_000)
  assert.equal(consumer.stats().groupProtocol, 'classic')
  assert.ok(!troubles.includes('SPW_ERR_KAFKA_UNSUPPORTED'), 'the fallback is not reported as a fault')
  await consumer.close()
  const [offsets] = await admin.listConsumerGroupOffsets({ groups: [groupId] })
  const committed =
    offsets?.topics.find((x) => x.name === topic)?.partitions.map((p) => p.committedOffset) ?? []
  assert.equal(
    committed.reduce((sum, o) => sum + o, 0n),
    60n,
    'the committed offsets cover every record',
  )
})
