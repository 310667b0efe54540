/**
 * transactions: open transactions per partition (DescribeProducers' currentTxnStartOffset), checked against
 * what the transaction coordinators know (ListTransactions on every broker, DescribeTransactions). A
 * partition's transaction is hanging when it stays open across the run's window and its coordinator has no
 * ongoing transaction of that producer holding that partition, or when it is older than
 * transaction.max.timeout.ms: read_committed consumers cannot read past it and the log cannot be compacted
 * or cleaned beyond it.
 */
import type { TransactionDescription } from '../../transport/cluster.ts'
import { anyBrokerConfig, type Snapshot, tp } from '../facts.ts'
import { type CheckReport, checkReport, type Finding, unknownFinding } from '../types.ts'
import { type CheckContext, listed } from './context.ts'

interface OpenTransaction {
  readonly partition: string
  readonly producerId: string
  readonly startOffset: string
  readonly ageSeconds: number
  readonly transactionalId: string | null
  readonly coordinatorState: string | null
  readonly reason: string | null
}

const ONGOING = new Set(['Ongoing', 'PrepareCommit', 'PrepareAbort', 'PrepareEpochFence'])

function openIn(snapshot: Snapshot | undefined): Set<string> | undefined {
  if (!snapshot?.producers.ok) return undefined
  const out = new Set<string>()
  for (const [key, d] of snapshot.producers.value)
    for (const p of d.producers)
      if (p.currentTxnStartOffset >= 0n) out.add(`${key}/${p.producerId}/${p.currentTxnStartOffset}`)
  return out
}

export function transactionsCheck(ctx: CheckContext): CheckReport {
  const title = 'Open and hanging transactions'
  const { facts, second } = ctx
  if (!facts.first.producers.ok)
    return checkReport('transactions', title, [
      unknownFinding('transactions', 'cluster', facts.first.producers.reason),
    ])
  const maxTimeout = Number(
    anyBrokerConfig(facts.brokerConfigs, 'transaction.max.timeout.ms')?.value ?? 900_000,
  )
  const byProducer = new Map<bigint, TransactionDescription>()
  if (facts.transactions.ok) for (const t of facts.transactions.value) byProducer.set(t.producerId, t)
  const stillOpen = openIn(second)
  const now = facts.first.at
  const open: OpenTransaction[] = []
  for (const [key, d] of facts.first.producers.value) {
    for (const p of d.producers) {
      if (p.currentTxnStartOffset < 0n) continue
      const coordinator = byProducer.get(p.producerId)
      const holds =
        coordinator !== undefined &&
        ONGOING.has(coordinator.state) &&
        coordinator.partitions.some((x) => tp(x.topic, x.partition) === key)
      const started = holds && coordinator.startTimeMs > 0 ? coordinator.startTimeMs : Number(p.lastTimestamp)
      const ageSeconds = Math.max(0, (now - started) / 1000)
      const persisted = stillOpen?.has(`${key}/${p.producerId}/${p.currentTxnStartOffset}`) ?? false
      let reason: string | null = null
      if (facts.transactions.ok && !holds && persisted)
        reason = coordinator
          ? `its coordinator has transactional id ${coordinator.transactionalId} in state ${coordinator.state}, without this partition`
          : 'no transaction coordinator knows its producer id'
      else if (ageSeconds * 1000 > maxTimeout)
        reason = `open ${Math.round(ageSeconds)} s, longer than transaction.max.timeout.ms`
      open.push({
        partition: key,
        producerId: p.producerId.toString(),
        startOffset: p.currentTxnStartOffset.toString(),
        ageSeconds,
        transactionalId: coordinator?.transactionalId ?? null,
        coordinatorState: coordinator?.state ?? null,
        reason,
      })
    }
  }
  const findings: Finding[] = []
  if (!facts.transactions.ok)
    findings.push(
      unknownFinding(
        'transactions',
        'coordinators',
        `the coordinators' transactions (ListTransactions, DescribeTransactions): ${facts.transactions.reason}; only the age rule was applied`,
      ),
    )
  const hanging = open.filter((o) => o.reason !== null)
  const partitionsOf = (list: readonly OpenTransaction[]): string[] => [
    ...new Set(list.map((h) => h.partition)),
  ]
  if (hanging.length > 0) {
    findings.push({
      id: 'transactions.hanging',
      severity: 'crit',
      subject: `${partitionsOf(hanging).length} partition(s)`,
      summary: `${hanging.length} transaction(s) are hanging on ${listed(partitionsOf(hanging))}: open on the partition while their coordinator will never end them, so read_committed consumers cannot read past them.`,
      confidence: hanging.every((h) => h.reason?.startsWith('open ')) ? 'medium' : 'high',
      evidence: { transactionMaxTimeoutMs: maxTimeout, hanging: hanging.slice(0, 50) },
      remedy:
        'Abort them: kafka-transactions.sh --bootstrap-server … abort --topic T --partition P --start-offset O (find-hanging lists them too). Upgrade clients and brokers to transaction verification (KIP-890) so new ones cannot form.',
    })
  }
  const live = open.filter((o) => o.reason === null)
  if (live.length > 0) {
    findings.push({
      id: 'transactions.open',
      severity: 'info',
      subject: `${partitionsOf(live).length} partition(s)`,
      summary: `${live.length} transaction(s) are open right now, held by ${listed([...new Set(live.map((o) => o.transactionalId ?? `producer ${o.producerId}`))])} (the oldest started ${Math.round(Math.max(...live.map((o) => o.ageSeconds)))} s ago).`,
      confidence: facts.transactions.ok ? 'high' : 'medium',
      evidence: { open: live.slice(0, 50) },
      remedy: 'Nothing to do: their coordinators end them within their timeout.',
    })
  }
  const rows = open
    .sort((a, b) => Number(b.reason !== null) - Number(a.reason !== null) || b.ageSeconds - a.ageSeconds)
    .slice(0, 20)
    .map((o) => [
      o.partition,
      o.transactionalId ?? `producer ${o.producerId}`,
      o.startOffset,
      Math.round(o.ageSeconds),
      o.reason === null ? 'open' : 'hanging',
    ])
  const coordinatorNote = facts.transactions.ok
    ? `${facts.transactions.value.length} transactional id(s) known to the coordinators, ${facts.transactions.value.filter((t) => ONGOING.has(t.state)).length} in a transaction.`
    : 'The coordinators could not be asked.'
  return checkReport(
    'transactions',
    title,
    findings,
    [`transaction.max.timeout.ms is ${maxTimeout} ms.`, coordinatorNote],
    { columns: ['partition', 'held by', 'open since offset', 'age s', 'state'], rows },
  )
}
