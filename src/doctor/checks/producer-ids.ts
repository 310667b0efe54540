/**
 * producer-ids (incident 5): active producer ids per partition and per broker, the share that wrote a
 * single record (the signature of a producer made per record or per request), ids per record appended
 * within producer.id.expiration.ms, and churn between the two snapshots.
 */
import { anyBrokerConfig, tp } from '../facts.ts'
import { type CheckReport, checkReport, type Finding, unknownFinding } from '../types.ts'
import { type CheckContext, formatBytes, listed, MiB } from './context.ts'

/**
 * Broker heap per producer id per partition replica: a ProducerStateEntry and its BatchMetadata, about
 * 88 bytes in a public heap dump of 33.5 M entries, before the map's own overhead. A floor, not a ceiling.
 */
export const HEAP_BYTES_PER_ID = 88
export const PER_RECORD_MIN_IDS = 100
export const BUILD_UP_IDS = 1000
export const DEFAULT_EXPIRATION_MS = 86_400_000

interface PartitionRow {
  topic: string
  partition: number
  ids: number
  oneRecord: number
  idsPerRecord: number | null
  newIds: number | null
  replicas: readonly number[]
}

export function producerIdsCheck(ctx: CheckContext): CheckReport {
  const { facts, second } = ctx
  const title = 'Producer ids held by the brokers (incident 5)'
  if (!facts.first.producers.ok)
    return checkReport('producer-ids', title, [
      unknownFinding('producer-ids', 'cluster', facts.first.producers.reason),
    ])
  const expiration = anyBrokerConfig(facts.brokerConfigs, 'producer.id.expiration.ms')
  const expirationMs = expiration?.value ? Number(expiration.value) : DEFAULT_EXPIRATION_MS
  const notes = [
    `producer.id.expiration.ms is ${expirationMs} ms (${(expirationMs / 3_600_000).toFixed(1)} h, ${
      expiration ? `from ${expiration.source}` : 'not readable: the Kafka default'
    }). Since Kafka 3.x (KIP-854) a broker forgets an idempotent producer id that long after its last write; before, it kept it as long as that write was retained. The ids are saved in snapshots and reloaded on restart, so a fix needs the producer made once and then that much time, or a lower setting.`,
    `Heap is estimated at ${HEAP_BYTES_PER_ID} bytes per id per partition replica, before map overhead.`,
  ]
  const rows: PartitionRow[] = []
  const ends = facts.first.ends.ok ? facts.first.ends.value : undefined
  const since = ctx.expiryAgo?.ok ? ctx.expiryAgo.value : undefined
  const later = second?.producers.ok ? second.producers.value : undefined
  for (const p of facts.partitions) {
    const key = tp(p.topic, p.partition)
    const d = facts.first.producers.value.get(key)
    if (!d) continue
    const ids = d.producers.length
    const end = ends?.get(key)
    const start = since?.get(key)
    const appended =
      end !== undefined && start !== undefined ? (start < 0n ? 0 : Number(end - start)) : undefined
    let newIds: number | null = null
    if (later) {
      const before = new Set(d.producerIds)
      newIds = (later.get(key)?.producerIds ?? []).filter((id) => !before.has(id)).length
    }
    rows.push({
      topic: p.topic,
      partition: p.partition,
      ids,
      oneRecord: d.producers.filter((x) => x.lastSequence === 0).length,
      idsPerRecord: appended === undefined ? null : ids / Math.max(1, appended),
      newIds,
      replicas: p.replicas,
    })
  }
  const findings: Finding[] = []
  const windowS = second ? Math.max(1, (second.at - facts.first.at) / 1000) : 0
  const byTopic = new Map<string, PartitionRow[]>()
  for (const r of rows) byTopic.set(r.topic, [...(byTopic.get(r.topic) ?? []), r])
  for (const [topic, list] of byTopic) {
    const perRecord = list.filter(
      (r) => r.ids >= PER_RECORD_MIN_IDS && (r.oneRecord / r.ids >= 0.5 || (r.idsPerRecord ?? 0) >= 0.2),
    )
    const total = list.reduce((n, r) => n + r.ids, 0)
    const worstRow = [...list].sort((a, b) => b.ids - a.ids)[0] as PartitionRow
    if (perRecord.length > 0) {
      const oneRecord = perRecord.reduce((n, r) => n + r.oneRecord, 0)
      const ids = perRecord.reduce((n, r) => n + r.ids, 0)
      findings.push({
        id: 'producer-ids.per-record',
        severity: 'crit',
        subject: `topic ${topic}`,
        summary: `${ids} active producer ids on ${perRecord.length} of ${list.length} partitions, ${Math.round((100 * oneRecord) / ids)}% of them wrote a single record: a producer is being created per record or per request.`,
        confidence: 'high',
        evidence: {
          topic,
          partitions: perRecord.map((r) => r.partition),
          producerIds: ids,
          oneRecordShare: oneRecord / ids,
          worstPartition: {
            partition: worstRow.partition,
            producerIds: worstRow.ids,
            idsPerRecord: worstRow.idsPerRecord,
          },
        },
        remedy: `Create one producer per process and share it (spillway's createProducer does; the registry warns on churn). The ids already held stay for producer.id.expiration.ms (${(expirationMs / 3_600_000).toFixed(1)} h) after their last write.`,
      })
    } else if (worstRow.ids >= BUILD_UP_IDS) {
      findings.push({
        id: 'producer-ids.build-up',
        severity: 'warn',
        subject: `topic ${topic}`,
        summary: `${total} active producer ids on ${list.length} partitions (up to ${worstRow.ids} on partition ${worstRow.partition}).`,
        confidence: 'high',
        evidence: {
          topic,
          producerIds: total,
          worstPartition: worstRow.partition,
          worstPartitionIds: worstRow.ids,
        },
        remedy:
          'Find the clients writing here (DescribeProducers lists their ids) and make sure each process keeps one producer.',
      })
    }
    const newIds = list.reduce((n, r) => n + (r.newIds ?? 0), 0)
    if (second && newIds >= 10 && (newIds / windowS) * 60 >= 60) {
      findings.push({
        id: 'producer-ids.churn',
        severity: 'warn',
        subject: `topic ${topic}`,
        summary: `${newIds} new producer ids appeared in ${windowS.toFixed(1)} s (${Math.round((newIds / windowS) * 60)} a minute).`,
        confidence: 'high',
        evidence: { topic, newIds, windowSeconds: windowS },
        remedy: 'A client is creating producers in a loop; keep one per process.',
      })
    }
  }
  const perBroker = new Map<number, number>()
  for (const r of rows) for (const b of r.replicas) perBroker.set(b, (perBroker.get(b) ?? 0) + r.ids)
  for (const [broker, ids] of perBroker) {
    const heap = ids * HEAP_BYTES_PER_ID
    if (heap < 64 * MiB) continue
    findings.push({
      id: 'producer-ids.broker-heap',
      severity: heap >= 512 * MiB ? 'crit' : 'warn',
      subject: `broker ${broker}`,
      summary: `Broker ${broker} holds about ${ids} producer-id entries over its replicas: at least ${formatBytes(heap)} of heap.`,
      confidence: 'medium',
      evidence: { broker, producerIdEntries: ids, heapBytesAtLeast: heap },
      remedy:
        'Stop the producer churn first; then the entries expire after producer.id.expiration.ms, or lower it temporarily.',
    })
  }
  const table = {
    columns: ['topic', 'partition', 'producer ids', 'one-record share', 'ids per record', 'new in window'],
    rows: [...rows]
      .sort((a, b) => b.ids - a.ids)
      .filter((r) => r.ids > 0)
      .slice(0, 20)
      .map((r) => [
        r.topic,
        r.partition,
        r.ids,
        r.ids === 0 ? '-' : `${Math.round((100 * r.oneRecord) / r.ids)}%`,
        r.idsPerRecord === null ? '-' : r.idsPerRecord.toFixed(3),
        r.newIds ?? '-',
      ]),
  }
  const busiest = [...perBroker].sort((a, b) => b[1] - a[1]).map(([b, n]) => `broker ${b}: ${n}`)
  if (busiest.length > 0) notes.push(`Entries per broker (over its replicas): ${listed(busiest)}.`)
  return checkReport('producer-ids', title, findings, notes, table)
}
