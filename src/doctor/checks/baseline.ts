/**
 * baseline: compares topic, partition and producer-id counts with an earlier `--json` report, so growth
 * between two runs (a nightly cron, a CI job) is reported even when each run alone looks acceptable.
 */
import { readFileSync } from 'node:fs'
import {
  type CheckReport,
  checkReport,
  type Finding,
  REPORT_SCHEMA,
  type ReportCounts,
  unknownFinding,
} from '../types.ts'

export function readBaseline(file: string): { counts: ReportCounts; startedAt: string } | string {
  let parsed: unknown
  try {
    parsed = JSON.parse(readFileSync(file, 'utf8'))
  } catch (error) {
    return `the baseline ${file} could not be read (${(error as Error).message})`
  }
  const report = parsed as { schema?: unknown; counts?: ReportCounts; startedAt?: string }
  if (report.schema !== REPORT_SCHEMA || typeof report.counts !== 'object' || report.counts === null)
    return `the baseline ${file} is not a spillway doctor report (schema ${REPORT_SCHEMA})`
  return { counts: report.counts, startedAt: String(report.startedAt) }
}

export function baselineCheck(file: string, now: ReportCounts): CheckReport {
  const title = 'Growth since the baseline'
  const before = readBaseline(file)
  if (typeof before === 'string')
    return checkReport('baseline', title, [unknownFinding('baseline', file, before)])
  const findings: Finding[] = []
  const b = before.counts
  const rows: (string | number)[][] = [
    ['topics', b.topics, now.topics, now.topics - b.topics],
    ['partitions', b.partitions, now.partitions, now.partitions - b.partitions],
    [
      'producer ids',
      b.producerIds ?? '?',
      now.producerIds ?? '?',
      b.producerIds === null || now.producerIds === null ? '?' : now.producerIds - b.producerIds,
    ],
  ]
  if (b.producerIds !== null && now.producerIds !== null) {
    const grew = now.producerIds - b.producerIds
    if (grew >= 1000 && now.producerIds >= 2 * Math.max(1, b.producerIds)) {
      const byTopic = Object.entries(now.producerIdsByTopic)
        .map(([topic, n]) => ({ topic, before: b.producerIdsByTopic[topic] ?? 0, now: n }))
        .filter((t) => t.now > t.before)
        .sort((x, y) => y.now - y.before - (x.now - x.before))
        .slice(0, 10)
      findings.push({
        id: 'baseline.producer-ids-growth',
        severity: 'warn',
        subject: 'cluster',
        summary: `Active producer ids grew from ${b.producerIds} to ${now.producerIds} since ${before.startedAt}.`,
        confidence: 'high',
        evidence: { before: b.producerIds, now: now.producerIds, byTopic },
        remedy:
          'See the producer-ids check for the topics and the signature; a producer is being created repeatedly.',
      })
    }
  }
  const grewTopics = now.topics - b.topics
  const grewPartitions = now.partitions - b.partitions
  if (grewPartitions > 0 || grewTopics > 0) {
    findings.push({
      id: 'baseline.growth',
      severity: 'info',
      subject: 'cluster',
      summary: `${grewTopics} more topic(s) and ${grewPartitions} more partition(s) than at ${before.startedAt}.`,
      confidence: 'high',
      evidence: {
        topics: { before: b.topics, now: now.topics },
        partitions: { before: b.partitions, now: now.partitions },
      },
      remedy: 'Expected if you added topics; otherwise look for clients that create topics on the fly.',
    })
  }
  return checkReport('baseline', title, findings, [`Baseline: ${file} (${before.startedAt}).`], {
    columns: ['what', 'baseline', 'now', 'growth'],
    rows,
  })
}
