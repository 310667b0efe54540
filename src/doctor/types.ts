/**
 * What the doctor reports: checks, each with findings that carry a stable id, a severity, the evidence and
 * a remedy. The JSON form of DoctorReport is the `--json` output; its schema is versioned by `schema` and
 * documented in docs/doctor.md.
 */

export const REPORT_SCHEMA = 'spillway.doctor/1'

/** 'unknown': the doctor could not see enough to judge (an ACL, a missing API, the time budget). */
export type Severity = 'ok' | 'info' | 'warn' | 'crit' | 'unknown'

export const CHECK_IDS = [
  'producer-ids',
  'duplicates',
  'skew',
  'record-size',
  'consumer-lag',
  'replication',
  'transactions',
  'baseline',
  'probe',
] as const
export type CheckId = (typeof CHECK_IDS)[number]

export interface Finding {
  /** Stable: `<check>.<what>`, e.g. `producer-ids.per-record`. */
  readonly id: string
  readonly severity: Severity
  /** What it is about: a topic, a partition, a broker, a group. */
  readonly subject: string
  /** One or two sentences in plain language. */
  readonly summary: string
  /** How sure the doctor is: 'high' when it saw everything it judged, lower when it sampled. */
  readonly confidence: 'high' | 'medium' | 'low'
  /** The figures behind the finding. */
  readonly evidence: Readonly<Record<string, unknown>>
  /** What to do about it. */
  readonly remedy: string
}

export interface Table {
  readonly columns: readonly string[]
  readonly rows: readonly (readonly (string | number)[])[]
}

export interface CheckReport {
  readonly id: CheckId
  readonly title: string
  /** The worst severity among the findings; 'ok' when there are none. */
  readonly severity: Severity
  readonly findings: readonly Finding[]
  /** The measurements, for the human report (rows worst first). */
  readonly table?: Table
  /** How it was measured and what was covered. */
  readonly notes: readonly string[]
}

export interface ReportCounts {
  readonly brokers: number
  readonly topics: number
  readonly partitions: number
  /** Active producer ids summed over partitions; null when DescribeProducers was not answered. */
  readonly producerIds: number | null
  readonly producerIdsByTopic: Readonly<Record<string, number>>
  readonly partitionsByTopic: Readonly<Record<string, number>>
}

export interface DoctorReport {
  readonly schema: typeof REPORT_SCHEMA
  readonly cluster: { readonly id: string | null; readonly brokers: readonly string[] }
  readonly startedAt: string
  readonly durationMs: number
  readonly budgetMs: number
  /** The window between the two snapshots (offsets, producer ids), ms. */
  readonly windowMs: number
  readonly severity: Severity
  readonly verdict: string
  readonly exitCode: 0 | 1 | 2 | 3
  readonly counts: ReportCounts
  readonly checks: readonly CheckReport[]
}

const RANK: Record<Severity, number> = { ok: 0, info: 1, warn: 2, unknown: 3, crit: 4 }

/** Orders severities worst first: crit, unknown, warn, info, ok. */
export function severityRank(s: Severity): number {
  return RANK[s]
}

export function worst(severities: Iterable<Severity>): Severity {
  let out: Severity = 'ok'
  for (const s of severities) if (RANK[s] > RANK[out]) out = s
  return out
}

/** Makes a check's report from its findings: severity is the worst, findings sorted worst first. */
export function checkReport(
  id: CheckId,
  title: string,
  findings: readonly Finding[],
  notes: readonly string[] = [],
  table?: Table,
): CheckReport {
  const sorted = [...findings].sort((a, b) => RANK[b.severity] - RANK[a.severity])
  return {
    id,
    title,
    severity: worst(sorted.map((f) => f.severity)),
    findings: sorted,
    notes,
    ...(table ? { table } : {}),
  }
}

/** A finding that says the check could not judge, and why. */
export function unknownFinding(check: CheckId, subject: string, reason: string): Finding {
  return {
    id: `${check}.unknown`,
    severity: 'unknown',
    subject,
    summary: `Could not judge: ${reason}`,
    confidence: 'high',
    evidence: { reason },
    remedy:
      'Grant the doctor Describe access (topics, groups, cluster), give it a longer --budget, or run it against a broker that supports the API.',
  }
}
