/**
 * Transactions, built for real on a broker of their own: a transaction a live producer holds open is
 * reported as open (info) under its transactional id; a transaction written to a partition its coordinator
 * never heard of (the pre-KIP-890 race, made here by skipping AddPartitionsToTxn on a broker with partition
 * verification off) is reported as hanging (critical) on that partition.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Admin, Producer, stringSerializers } from '@platformatic/kafka'
import { KafkaCluster } from '../../scripts/kafka/cluster.ts'
import { runDoctor } from '../../src/doctor/doctor.ts'
import type { DoctorReport, Finding } from '../../src/doctor/types.ts'

const finding = (report: DoctorReport, id: string): Finding | undefined =>
  report.checks.flatMap((c) => c.findings).find((f) => f.id === id)

test('transactions: a live open transaction is info under its transactional id; one its coordinator does not know is hanging', async (t) => {
  const cluster = await KafkaCluster.start({
    nodes: 1,
    heapMb: 384,
    config: { 'transaction.partition.verification.enable': 'false' },
  })
  t.after(() => cluster.stop())
  const brokers = cluster.bootstrap
  const admin = new Admin({ clientId: 'spillway-test-admin', bootstrapBrokers: brokers })
  t.after(() => admin.close())
  await admin.createTopics({ topics: ['ledger'], partitions: 2, replicas: 1 })

  const billing = new Producer({
    clientId: 'billing',
    bootstrapBrokers: brokers,
    transactionalId: 'billing-tx',
    idempotent: true,
    serializers: stringSerializers,
  })
  t.after(() => billing.close(true))
  const open = await billing.beginTransaction()
  await open.send({ messages: [{ topic: 'ledger', partition: 0, key: 'a', value: 'debit' }] })

  const live = await runDoctor({ brokers, checks: ['transactions'], budgetMs: 4000 })
  const info = finding(live, 'transactions.open')
  assert.ok(info, JSON.stringify(live.checks, null, 2))
  assert.equal(info.severity, 'info')
  assert.match(info.summary, /billing-tx/)
  assert.equal(finding(live, 'transactions.hanging'), undefined)
  assert.equal(live.exitCode, 0)
  await open.abort()

  const outbox = new Producer({
    clientId: 'outbox',
    bootstrapBrokers: brokers,
    transactionalId: 'outbox-tx',
    idempotent: true,
    serializers: stringSerializers,
  })
  t.after(() => outbox.close(true))
  const stray = await outbox.beginTransaction()
  // the client believes the partition was added; the coordinator never hears of it
  Object.defineProperty(stray, 'addPartitions', {
    value: (_m: unknown, _r: unknown, callback: (error: Error | null) => void) => callback(null),
  })
  await stray.send({ messages: [{ topic: 'ledger', partition: 1, key: 'b', value: 'credit' }] })

  const report = await runDoctor({ brokers, checks: ['transactions'], budgetMs: 4000 })
  const hanging = finding(report, 'transactions.hanging')
  assert.ok(hanging, JSON.stringify(report.checks, null, 2))
  assert.equal(hanging.severity, 'crit')
  assert.equal(hanging.confidence, 'high')
  const rows = hanging.evidence.hanging as { partition: string; reason: string }[]
  assert.deepEqual(
    rows.map((r) => r.partition),
    ['ledger[1]'],
  )
  assert.match(rows[0]?.reason ?? '', /outbox-tx in state \w+, without this partition/)
  assert.equal(report.exitCode, 2)
})
