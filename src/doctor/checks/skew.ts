/**
 * skew (incident 3): per topic, bytes per partition (DescribeLogDirs) and offset growth per partition over
 * the last hour and over the run's window, as max/median; from the sample, the heaviest keys by count and
 * by bytes and the longest run of one key back to back.
 */
import { isInternal, tp } from '../facts.ts'
import { median } from '../stats.ts'
import { type CheckReport, checkReport, type Finding, unknownFinding } from '../types.ts'
import { type CheckContext, formatBytes, MiB } from './context.ts'
import { sampleErrors, samplesOf, showKey } from './samples.ts'

export const SKEW_RATIO = 3
export const HOT_KEY_SHARE = 0.25
export const KEY_RUN = 100

/** max/median, with a median of zero read as "everything in a few partitions". */
export function skewRatio(values: readonly number[]): number {
  const max = Math.max(0, ...values)
  const mid = median(values)
  if (max === 0) return 1
  return mid === 0 ? Number.POSITIVE_INFINITY : max / mid
}

export function skewCheck(ctx: CheckContext): CheckReport {
  const title = 'Partition skew and hot keys (incident 3)'
  const { facts, second } = ctx
  const findings: Finding[] = []
  const rows: (string | number)[][] = []
  const topics = facts.topics.filter((t) => !isInternal(t))
  if (!facts.logDirs.ok)
    findings.push(unknownFinding('skew', 'cluster', `partition sizes: ${facts.logDirs.reason}`))
  if (!facts.hourAgo.ok || !facts.first.ends.ok)
    findings.push(unknownFinding('skew', 'cluster', 'offsets an hour ago or now could not be listed'))
  const bytesOf = new Map<string, number>()
  if (facts.logDirs.ok) {
    for (const d of facts.logDirs.value) {
      const key = tp(d.topic, d.partition)
      bytesOf.set(key, Math.max(bytesOf.get(key) ?? 0, Number(d.bytes)))
    }
  }
  for (const topic of topics) {
    const parts = facts.partitions.filter((p) => p.topic === topic)
    if (parts.length < 2) continue
    const bytes = parts.map((p) => bytesOf.get(tp(topic, p.partition)) ?? 0)
    const hour = parts.map((p) => {
      const key = tp(topic, p.partition)
      const end = facts.first.ends.ok ? facts.first.ends.value.get(key) : undefined
      const then = facts.hourAgo.ok ? facts.hourAgo.value.get(key) : undefined
      return end === undefined || then === undefined || then < 0n ? 0 : Number(end - then)
    })
    const windowGrowth = parts.map((p) => {
      const key = tp(topic, p.partition)
      const a = facts.first.ends.ok ? facts.first.ends.value.get(key) : undefined
      const b = second?.ends.ok ? second.ends.value.get(key) : undefined
      return a === undefined || b === undefined ? 0 : Number(b - a)
    })
    const bytesRatio = skewRatio(bytes)
    const hourRatio = skewRatio(hour)
    const hottest = parts[hour.indexOf(Math.max(...hour))]?.partition ?? 0
    const biggest = parts[bytes.indexOf(Math.max(...bytes))]?.partition ?? 0
    const show = (r: number): string => (Number.isFinite(r) ? r.toFixed(1) : 'all in few')
    rows.push([
      topic,
      parts.length,
      formatBytes(Math.max(...bytes)),
      show(bytesRatio),
      Math.max(...hour),
      show(hourRatio),
      Math.max(...windowGrowth),
    ])
    const bytesSkewed = bytesRatio >= SKEW_RATIO && Math.max(...bytes) >= MiB
    const growthSkewed = hourRatio >= SKEW_RATIO && Math.max(...hour) >= 1000
    if (bytesSkewed || growthSkewed) {
      findings.push({
        id: 'skew.partitions',
        severity: 'warn',
        subject: `topic ${topic}`,
        summary: `Partition ${growthSkewed ? hottest : biggest} of ${topic} carries far more than the others (bytes max/median ${show(bytesRatio)}, records in the last hour max/median ${show(hourRatio)}): its consumer does most of the work while the others idle.`,
        confidence: 'high',
        evidence: {
          topic,
          bytesPerPartition: Object.fromEntries(parts.map((p, i) => [p.partition, bytes[i]])),
          recordsLastHourPerPartition: Object.fromEntries(parts.map((p, i) => [p.partition, hour[i]])),
          recordsInWindowPerPartition: Object.fromEntries(
            parts.map((p, i) => [p.partition, windowGrowth[i]]),
          ),
          bytesRatio: Number.isFinite(bytesRatio) ? bytesRatio : null,
          lastHourRatio: Number.isFinite(hourRatio) ? hourRatio : null,
        },
        remedy:
          'Choose a key with more spread (or add a suffix to the hottest keys), and use a consumer that runs keys in parallel within a partition (spillway ordering: key).',
      })
    }
  }
  const samples = samplesOf(ctx, 'skew')
  if (!Array.isArray(samples)) findings.push(samples)
  else {
    findings.push(...sampleErrors('skew', samples))
    for (const s of samples) {
      const keyed = s.records - s.nullKeys
      const top = s.byCount.top(1)[0]
      const partitions = facts.partitions.filter((p) => p.topic === s.topic).length
      if (top && keyed >= 1000 && partitions >= 2 && top.weight / s.records >= HOT_KEY_SHARE) {
        findings.push({
          id: 'skew.hot-key',
          severity: 'warn',
          subject: `topic ${s.topic}`,
          summary: `Key ${showKey(top.item)} is ${Math.round((100 * top.weight) / s.records)}% of the sampled records of ${s.topic}: its partition gets that share of the load.`,
          confidence: s.partial.size === 0 ? 'high' : 'medium',
          evidence: {
            topic: s.topic,
            sampledRecords: s.records,
            byCount: s.byCount
              .top(5)
              .map((k) => ({ key: showKey(k.item), records: k.weight, overcountAtMost: k.error })),
            byBytes: s.byBytes
              .top(5)
              .map((k) => ({ key: showKey(k.item), bytes: k.weight, overcountAtMost: k.error })),
          },
          remedy:
            'Split the hot key (a suffix per sub-entity) or give it its own topic; run keys in parallel within a partition.',
        })
      }
      const run = s.longestRun
      if (run && run.length >= KEY_RUN) {
        findings.push({
          id: 'skew.key-run',
          severity: 'warn',
          subject: `topic ${s.topic} partition ${run.partition}`,
          summary: `${run.length} records of key ${showKey(run.key)} back to back from offset ${run.startOffset}: a consumer that handles a batch by key on one thread holds all of them in one call.`,
          confidence: 'high',
          evidence: {
            topic: s.topic,
            partition: run.partition,
            key: showKey(run.key),
            length: run.length,
            startOffset: run.startOffset.toString(),
          },
          remedy:
            'Bound the work per handler call (spillway hands a key its records in order with a deadline per call), and look at why the producer writes one key in bursts.',
        })
      }
    }
  }
  const table = {
    columns: [
      'topic',
      'partitions',
      'largest',
      'bytes max/median',
      'max records/h',
      'records/h max/median',
      'max in window',
    ],
    rows,
  }
  return checkReport('skew', title, findings, [], table)
}
