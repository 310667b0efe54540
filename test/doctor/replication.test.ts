/**
 * The doctor on a three-broker cluster: healthy with sane settings (exit 0, nothing flagged), then topics
 * with one replica, min.insync.replicas equal to the replication factor, min ISR 1 with three replicas and
 * unclean leader election, and a broker stopped (under-replicated partitions).
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Admin } from '@platformatic/kafka'
import { KafkaCluster } from '../../scripts/kafka/cluster.ts'
import { createConsumer } from '../../src/consumer/consumer.ts'
import { runDoctor } from '../../src/doctor/doctor.ts'
import type { DoctorReport } from '../../src/doctor/types.ts'
import { createProducer } from '../../src/producer/producer.ts'
import { until } from '../helpers/wait.ts'

function flagged(report: DoctorReport): string[] {
  return report.checks.flatMap((c) =>
    c.findings.filter((f) => f.severity !== 'ok' && f.severity !== 'info').map((f) => `${f.id} ${f.subject}`),
  )
}

test('replication: a healthy three-broker cluster exits 0 with nothing flagged; risky topics and a stopped broker are flagged', async (t) => {
  const cluster = await KafkaCluster.start({
    nodes: 3,
    heapMb: 384,
    config: {
      'min.insync.replicas': '2',
      'transaction.state.log.min.isr': '2',
      'share.coordinator.state.topic.min.isr': '2',
    },
  })
  t.after(() => cluster.stop())
  const brokers = cluster.bootstrap
  const admin = new Admin({ clientId: 'spillway-test-admin', bootstrapBrokers: brokers })
  t.after(() => admin.close())
  await admin.createTopics({ topics: ['orders'], partitions: 3, replicas: 3 })
  const producer = await createProducer({ brokers, ack: 'kafka', transportLingerMs: 0 })
  const sent = await producer.send(
    'orders',
    Array.from({ length: 50 }, (_, i) => ({ key: `k${i}`, value: { n: i } })),
  )
  assert.ok(sent.every((r) => r.status === 'accepted'))
  await producer.close()
  let handled = 0
  const consumer = createConsumer({
    brokers,
    groupId: 'billing',
    topics: ['orders'],
    commitIntervalMs: 100,
    handler: () => {
      handled++
    },
  })
  await consumer.run()
  await until('the group read every order', () => handled >= 50, 60_000)
  await consumer.close()

  const healthy = await runDoctor({ brokers, budgetMs: 5000 })
  assert.deepEqual(flagged(healthy), [], JSON.stringify(healthy.checks, null, 2))
  assert.equal(healthy.exitCode, 0)
  assert.equal(healthy.counts.brokers, 3)
  assert.ok(healthy.counts.topics >= 2, 'orders and the offsets topic')

  await admin.createTopics({ topics: ['single'], partitions: 1, replicas: 1 })
  await admin.createTopics({
    topics: ['strict'],
    partitions: 1,
    replicas: 3,
    configs: [{ name: 'min.insync.replicas', value: '3' }],
  })
  await admin.createTopics({
    topics: ['loose'],
    partitions: 1,
    replicas: 3,
    configs: [{ name: 'min.insync.replicas', value: '1' }],
  })
  await admin.createTopics({
    topics: ['unclean'],
    partitions: 1,
    replicas: 3,
    configs: [{ name: 'unclean.leader.election.enable', value: 'true' }],
  })
  // every broker knows the new topics, with leaders, before the doctor reads them
  await until(
    'the new topics have leaders',
    async () => {
      const metadata = await admin.metadata({
        topics: ['single', 'strict', 'loose', 'unclean'],
        forceUpdate: true,
      })
      return (
        [...metadata.topics.values()].length === 4 &&
        [...metadata.topics.values()].every((t) => t.partitions.every((p) => p.leader >= 0))
      )
    },
    30_000,
  )
  const risky = await runDoctor({ brokers, checks: ['replication'], budgetMs: 4000 })
  const ids = (report: DoctorReport): Map<string, string> =>
    new Map(report.checks.flatMap((c) => c.findings.map((f) => [f.id, f.subject] as const)))
  const found = ids(risky)
  assert.ok(found.has('replication.unclean-election'), JSON.stringify(risky.checks, null, 2))
  assert.equal(found.get('replication.rf1'), 'topic single')
  assert.equal(found.get('replication.min-isr-equals-rf'), 'topic strict')
  assert.equal(found.get('replication.min-isr-one'), 'topic loose')
  assert.equal(found.get('replication.unclean-election'), 'topic unclean')
  assert.equal(risky.exitCode, 2)

  await cluster.stopNode(3)
  const degraded = await runDoctor({
    brokers,
    checks: ['replication'],
    topics: ['orders', 'strict'],
    budgetMs: 4000,
  })
  const now = ids(degraded)
  assert.equal(
    now.get('replication.under-replicated'),
    'topic orders',
    JSON.stringify(degraded.checks, null, 2),
  )
  assert.equal(now.get('replication.under-min-isr'), 'topic strict')
})
