/**
 * `runDoctor`: reads a live cluster within a time budget and returns a report. It writes nothing unless a
 * probe topic is given. The run:
 *
 *   0%    metadata (failure here is the run's failure: exit 3)
 *         configs, offsets, producer ids, log sizes, groups and commits: the first snapshot
 *         the sampler reads topic tails            ┐ at the same time
 *   70%   the second snapshot (window for churn,   ┘
 *         growth and lag status)
 *   ≤90%  timestamps of the records at the committed offsets (lag in seconds)
 *         the checks judge; nothing they could not see is called healthy
 */
import { isSpillwayError, SpillwayError } from '../errors.ts'
import type { Cluster, GroupFacet } from '../transport/cluster.ts'
import { acquireCluster } from '../transport/registry.ts'
import type { KafkaConnectionOptions } from '../transport/transport.ts'
import { baselineCheck } from './checks/baseline.ts'
import { consumerLagCheck, lagKey } from './checks/consumer-lag.ts'
import type { CheckContext } from './checks/context.ts'
import { duplicatesCheck } from './checks/duplicates.ts'
import { probeCheck } from './checks/probe.ts'
import { producerIdsCheck } from './checks/producer-ids.ts'
import { recordSizeCheck } from './checks/record-size.ts'
import { replicationCheck } from './checks/replication.ts'
import { skewCheck } from './checks/skew.ts'
import { transactionsCheck } from './checks/transactions.ts'
import {
  anyBrokerConfig,
  type Facts,
  gatherFacts,
  isInternal,
  type Known,
  known,
  type Offsets,
  readMetadata,
  type Snapshot,
  takeSnapshot,
  tp,
} from './facts.ts'
import { lookupKey, recordTimestamps } from './lag-records.ts'
import { type DoctorOptions, type ResolvedDoctorOptions, resolveDoctorOptions } from './options.ts'
import { type SampleProgress, sampleTails, type TopicSample } from './sampler.ts'
import {
  type CheckId,
  type CheckReport,
  checkReport,
  type DoctorReport,
  REPORT_SCHEMA,
  type ReportCounts,
  type Severity,
  severityRank,
  unknownFinding,
  worst,
} from './types.ts'

export interface DoctorHooks {
  /** A phase began ('sampling', …), or the sampler moved on. */
  readonly onProgress?: (phase: string, detail?: SampleProgress) => void
}

const SAMPLED: readonly CheckId[] = ['duplicates', 'skew', 'record-size']
const WINDOWED: readonly CheckId[] = ['producer-ids', 'consumer-lag', 'skew', 'transactions']

export function exitCodeOf(severity: Severity, failOn: 'warn' | 'crit'): 0 | 1 | 2 | 3 {
  if (severity === 'crit') return 2
  if (severity === 'unknown') return 3
  if (severity === 'warn') return failOn === 'warn' ? 1 : 0
  return 0
}

function verdictOf(checks: readonly CheckReport[], severity: Severity): string {
  const count = (s: Severity): number =>
    checks.reduce((n, c) => n + c.findings.filter((f) => f.severity === s).length, 0)
  const crit = count('crit')
  const warn = count('warn')
  const unknown = count('unknown')
  const head = {
    crit: 'CRITICAL',
    unknown: 'COULD NOT JUDGE',
    warn: 'WARNING',
    info: 'HEALTHY',
    ok: 'HEALTHY',
  }[severity]
  if (crit + warn + unknown === 0) return `${head}: nothing flagged in ${checks.length} check(s)`
  const parts = [
    crit ? `${crit} critical` : '',
    warn ? `${warn} warning(s)` : '',
    unknown ? `${unknown} not judged` : '',
  ].filter(Boolean)
  const worstCheck = [...checks].sort((a, b) => severityRank(b.severity) - severityRank(a.severity))[0]
  const first = worstCheck?.findings[0]
  return `${head}: ${parts.join(', ')} in ${checks.length} check(s)${first ? `; worst: ${first.summary}` : ''}`
}

function sleepUntil(at: number): Promise<void> {
  const ms = at - performance.now()
  return ms > 0 ? new Promise((r) => setTimeout(r, ms)) : Promise.resolve()
}

export async function runDoctor(input: DoctorOptions, hooks: DoctorHooks = {}): Promise<DoctorReport> {
  const options: ResolvedDoctorOptions = resolveDoctorOptions(input)
  const startedAt = new Date()
  const t0 = performance.now()
  const budget = options.budgetMs
  const left = (until = 1): number => Math.max(50, t0 + budget * until - performance.now())
  const wants = (ids: readonly CheckId[]): boolean => ids.some((id) => options.checks.includes(id))
  const progress = (phase: string, detail?: SampleProgress): void => hooks.onProgress?.(phase, detail)
  const requestTimeoutMs = Math.min(5000, Math.max(500, Math.floor(budget / 3)))
  const { brokers, clientId, tls, sasl } = options.connection
  const connection: KafkaConnectionOptions = {
    brokers,
    clientId,
    ...(tls ? { tls } : {}),
    ...(sasl ? { sasl } : {}),
    requestTimeoutMs,
    clientRetries: 0,
    thread: 'main',
  }
  const lease = acquireCluster(connection, { purpose: 'admin', lingerMs: 0 })
  const { admin, group } = lease.cluster
  try {
    progress('metadata')
    const scope = { topics: options.topics, groups: options.groups }
    let meta: Awaited<ReturnType<typeof readMetadata>>
    try {
      meta = await readMetadata(admin, scope, left(0.5))
    } catch (error) {
      const reason = error instanceof Error ? error.message : String(error)
      // refused credentials or a denied ACL keep their own code: retrying will not help
      const code =
        isSpillwayError(error) &&
        (error.code === 'SPW_ERR_KAFKA_AUTH' || error.code === 'SPW_ERR_KAFKA_DENIED')
          ? error.code
          : 'SPW_ERR_UNAVAILABLE'
      throw new SpillwayError(
        code,
        `cannot read the cluster at ${options.connection.brokers.join(',')}: ${reason}`,
        { cause: error },
      )
    }
    progress('cluster facts')
    const facts = await gatherFacts(admin, meta.cluster, meta.partitions, scope, left(0.4))
    let expiryAgo: Known<Offsets> | undefined
    if (options.checks.includes('producer-ids')) {
      const expiration = Number(
        anyBrokerConfig(facts.brokerConfigs, 'producer.id.expiration.ms')?.value ?? 86_400_000,
      )
      expiryAgo = await known(
        admin
          .listOffsets(
            meta.partitions
              .filter((p) => !isInternal(p.topic))
              .map((p) => ({
                topic: p.topic,
                partition: p.partition,
                timestamp: BigInt(Date.now() - expiration),
              })),
            left(0.5),
          )
          .then((l) => new Map(l.map((o) => [tp(o.topic, o.partition), o.offset]))),
      )
    }
    const sampling = wants(SAMPLED) ? sample(options, facts, lease.cluster, t0, budget, progress) : undefined
    const probing =
      options.probeTopic !== null && options.checks.includes('probe')
        ? probeCheck(
            connection,
            group,
            options.probeTopic,
            meta.partitions.find((p) => p.topic === options.probeTopic && p.partition === 0 && p.leader >= 0)
              ?.leader,
            left(0.85),
          )
        : undefined
    let second: Snapshot | undefined
    if (wants(WINDOWED)) {
      await sleepUntil(t0 + budget * 0.7)
      progress('second snapshot')
      second = await takeSnapshot(admin, meta.partitions, scope, left(0.8))
    }
    const samples = sampling ? await sampling : undefined
    let committedTimestamps: Known<ReadonlyMap<string, number | null>> | undefined
    if (options.checks.includes('consumer-lag')) {
      progress('lag in seconds')
      committedTimestamps = await known(
        lagTimestamps(facts.partitions, second ?? facts.first, group, left(0.9)),
      )
    }
    const ctx: CheckContext = { facts, second, samples, options, expiryAgo, committedTimestamps }
    const checks: CheckReport[] = []
    const counts = countsOf(facts)
    for (const id of options.checks) {
      switch (id) {
        case 'producer-ids':
          checks.push(producerIdsCheck(ctx))
          break
        case 'duplicates':
          checks.push(duplicatesCheck(ctx))
          break
        case 'skew':
          checks.push(skewCheck(ctx))
          break
        case 'record-size':
          checks.push(recordSizeCheck(ctx))
          break
        case 'consumer-lag':
          checks.push(consumerLagCheck(ctx))
          break
        case 'replication':
          checks.push(replicationCheck(ctx))
          break
        case 'transactions':
          checks.push(transactionsCheck(ctx))
          break
        case 'baseline':
          checks.push(baselineCheck(options.baseline as string, counts))
          break
        case 'probe':
          if (probing) checks.push(await probing)
          break
      }
    }
    if (meta.missing.length > 0) {
      checks.push(
        checkReport(
          'replication',
          'Topics asked for',
          meta.missing.map((t) => unknownFinding('replication', `topic ${t}`, `topic ${t} does not exist`)),
        ),
      )
    }
    const ordered = checks.sort((a, b) => severityRank(b.severity) - severityRank(a.severity))
    const severity = worst(ordered.map((c) => c.severity))
    return {
      schema: REPORT_SCHEMA,
      cluster: {
        id: meta.cluster.clusterId || null,
        brokers: meta.cluster.brokers.map((b) => `${b.nodeId}@${b.host}:${b.port}`),
      },
      startedAt: startedAt.toISOString(),
      durationMs: Math.round(performance.now() - t0),
      budgetMs: budget,
      windowMs: second ? second.at - facts.first.at : 0,
      severity,
      verdict: verdictOf(ordered, severity),
      exitCode: exitCodeOf(severity, options.failOn),
      counts,
      checks: ordered,
    }
  } finally {
    await Promise.race([lease.release(), new Promise((r) => setTimeout(r, 2000).unref())])
  }
}

function countsOf(facts: Facts): ReportCounts {
  const partitionsByTopic: Record<string, number> = {}
  for (const p of facts.partitions) partitionsByTopic[p.topic] = (partitionsByTopic[p.topic] ?? 0) + 1
  let producerIds: number | null = null
  const producerIdsByTopic: Record<string, number> = {}
  if (facts.first.producers.ok) {
    producerIds = 0
    for (const d of facts.first.producers.value.values()) {
      producerIds += d.producers.length
      producerIdsByTopic[d.topic] = (producerIdsByTopic[d.topic] ?? 0) + d.producers.length
    }
  }
  return {
    brokers: facts.cluster.brokers.length,
    topics: facts.topics.length,
    partitions: facts.partitions.length,
    producerIds,
    producerIdsByTopic,
    partitionsByTopic,
  }
}

/** Tails of the user topics: from the sample window's start (or the last 1000 records of a quiet one). */
async function sample(
  options: ResolvedDoctorOptions,
  facts: Facts,
  { admin, group }: Cluster,
  t0: number,
  budget: number,
  progress: (phase: string, detail?: SampleProgress) => void,
): Promise<Known<ReadonlyMap<string, TopicSample>>> {
  return await known(
    (async () => {
      if (!facts.first.ends.ok)
        throw new SpillwayError('SPW_ERR_UNAVAILABLE', `log end offsets: ${facts.first.ends.reason}`)
      const ends = facts.first.ends.value
      const starts = facts.starts.ok ? facts.starts.value : new Map<string, bigint>()
      const windowStart: Offsets =
        facts.hourAgo.ok && options.sampleWindowMs === 3_600_000
          ? facts.hourAgo.value
          : new Map(
              (
                await admin.listOffsets(
                  facts.partitions
                    .filter((p) => !isInternal(p.topic))
                    .map((p) => ({
                      topic: p.topic,
                      partition: p.partition,
                      timestamp: BigInt(Date.now() - options.sampleWindowMs),
                    })),
                  Math.max(100, t0 + budget * 0.5 - performance.now()),
                )
              ).map((o) => [tp(o.topic, o.partition), o.offset] as const),
            )
      const targets = facts.partitions
        .filter((p) => !isInternal(p.topic) && p.leader >= 0)
        .map((p) => {
          const key = tp(p.topic, p.partition)
          const end = ends.get(key) ?? 0n
          const start = starts.get(key) ?? 0n
          const at = windowStart.get(key) ?? -1n
          const begin = at >= 0n ? at : end - 1000n > start ? end - 1000n : start
          return { partition: p, from: begin, to: end }
        })
      progress('sampling')
      return await sampleTails(group, targets, {
        maxBytes: options.maxBytes,
        idPath: options.idPath,
        until: t0 + budget * 0.7,
        requestTimeoutMs: 5000,
        onProgress: (p) => progress('sampling', p),
      })
    })(),
  )
}

async function lagTimestamps(
  partitions: Facts['partitions'],
  at: Snapshot,
  group: GroupFacet,
  deadlineMs: number,
): Promise<ReadonlyMap<string, number | null>> {
  if (!at.committed.ok || !at.ends.ok) return new Map()
  const leaders = new Map(partitions.map((p) => [tp(p.topic, p.partition), p.leader]))
  const wanted = at.committed.value.flatMap((c) => {
    const key = tp(c.topic, c.partition)
    const end = at.ends.ok ? at.ends.value.get(key) : undefined
    const leader = leaders.get(key)
    if (c.offset < 0n || end === undefined || c.offset >= end || leader === undefined || leader < 0) return []
    return [{ group: c.groupId, topic: c.topic, partition: c.partition, leader, offset: c.offset }]
  })
  const stamps = await recordTimestamps(group, wanted, deadlineMs)
  return new Map(wanted.map((w) => [lagKey(w.group, w.topic, w.partition), stamps.get(lookupKey(w)) ?? null]))
}
