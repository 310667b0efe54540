/**
 * transactions: open transactions per partition (DescribeProducers' currentTxnStartOffset) and the ones
 * older than transaction.max.timeout.ms, which the coordinator should have aborted: hanging transactions
 * that hold read_committed consumers at their first offset.
 */
import { anyBrokerConfig } from '../facts.ts'
import { type CheckReport, checkReport, type Finding, unknownFinding } from '../types.ts'
import { type CheckContext, listed } from './context.ts'

export function transactionsCheck(ctx: CheckContext): CheckReport {
  const title = 'Open and hanging transactions'
  const { facts } = ctx
  if (!facts.first.producers.ok)
    return checkReport('transactions', title, [
      unknownFinding('transactions', 'cluster', facts.first.producers.reason),
    ])
  const maxTimeout = Number(
    anyBrokerConfig(facts.brokerConfigs, 'transaction.max.timeout.ms')?.value ?? 900_000,
  )
  const now = facts.first.at
  const open: { partition: string; producerId: string; startOffset: string; ageSeconds: number }[] = []
  for (const [key, d] of facts.first.producers.value) {
    for (const p of d.producers) {
      if (p.currentTxnStartOffset < 0n) continue
      open.push({
        partition: key,
        producerId: p.producerId.toString(),
        startOffset: p.currentTxnStartOffset.toString(),
        ageSeconds: Math.max(0, (now - Number(p.lastTimestamp)) / 1000),
      })
    }
  }
  const hanging = open.filter((o) => o.ageSeconds * 1000 > maxTimeout)
  const findings: Finding[] = []
  if (hanging.length > 0) {
    findings.push({
      id: 'transactions.hanging',
      severity: 'crit',
      subject: `${new Set(hanging.map((h) => h.partition)).size} partition(s)`,
      summary: `${hanging.length} transaction(s) have been open longer than transaction.max.timeout.ms (${maxTimeout} ms) on ${listed([...new Set(hanging.map((h) => h.partition))])}: read_committed consumers cannot read past them.`,
      confidence: 'medium',
      evidence: { transactionMaxTimeoutMs: maxTimeout, hanging: hanging.slice(0, 50) },
      remedy:
        'Confirm with kafka-transactions.sh find-hanging, then abort them with kafka-transactions.sh abort.',
    })
  } else if (open.length > 0) {
    findings.push({
      id: 'transactions.open',
      severity: 'info',
      subject: `${new Set(open.map((h) => h.partition)).size} partition(s)`,
      summary: `${open.length} transaction(s) are open right now (the oldest last wrote ${Math.round(Math.max(...open.map((o) => o.ageSeconds)))} s ago).`,
      confidence: 'high',
      evidence: { open: open.slice(0, 50) },
      remedy: 'Nothing to do while they are younger than transaction.max.timeout.ms.',
    })
  }
  const rows = open
    .sort((a, b) => b.ageSeconds - a.ageSeconds)
    .slice(0, 20)
    .map((o) => [o.partition, o.producerId, o.startOffset, Math.round(o.ageSeconds)])
  return checkReport('transactions', title, findings, [`transaction.max.timeout.ms is ${maxTimeout} ms.`], {
    columns: ['partition', 'producer id', 'open since offset', 'last write s ago'],
    rows,
  })
}
