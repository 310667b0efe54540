/**
 * consumer-lag: per group and partition, lag in offsets and in seconds (now minus the timestamp of the
 * record at the committed offset, read exactly), the share of the retention window it has used, and a
 * status in the spirit of Burrow's, judged over the run's window in time rather than over a count of
 * commits, so an idle topic is never called stopped:
 *
 *   REWIND   the committed offset went back during the window
 *   OK       caught up, or the oldest unhandled record is younger than maxLagSeconds
 *   STOP     behind, and no member of the group owns the partition
 *   STARVED  behind and not moving, while the same member's other partitions are fine
 *   STALL    behind and not moving, with an owner
 *   WARN     moving, but the lag grew over the window
 */

import type { CommittedOffset, GroupDescription } from '../../transport/cluster.ts'
import { configNumber, type Known, tp } from '../facts.ts'
import { type CheckReport, checkReport, type Finding, type Severity, unknownFinding } from '../types.ts'
import { type CheckContext, listed } from './context.ts'

export type LagStatus = 'OK' | 'WARN' | 'STALL' | 'STOP' | 'REWIND' | 'STARVED'

export interface PartitionLag {
  readonly group: string
  readonly protocol: 'classic' | 'consumer'
  readonly topic: string
  readonly partition: number
  readonly committedBefore: bigint | null
  readonly committed: bigint
  readonly endBefore: bigint
  readonly end: bigint
  readonly logStart: bigint | null
  /** Now minus the timestamp of the record at the committed offset; null when it could not be read. */
  readonly lagSeconds: number | null
  /** The member that owns the partition (its client id), or null when none does. */
  readonly owner: string | null
  readonly retentionMs: number | null
}

export interface JudgedLag extends PartitionLag {
  readonly lag: bigint
  readonly status: LagStatus
}

/** The status of one partition, before STARVED (which needs the member's other partitions). */
export function judgePartition(p: PartitionLag, maxLagSeconds: number): LagStatus {
  const lag = p.end - p.committed
  if (p.committedBefore !== null && p.committed < p.committedBefore) return 'REWIND'
  if (lag <= 0n) return 'OK'
  if (p.lagSeconds !== null && p.lagSeconds <= maxLagSeconds) return 'OK'
  if (p.owner === null) return 'STOP'
  if (p.committedBefore !== null && p.committed === p.committedBefore) return 'STALL'
  if (p.endBefore - (p.committedBefore ?? p.committed) < lag) return 'WARN'
  return 'OK'
}

/** Judges every partition, then marks STALLs STARVED where the same member keeps its other partitions OK. */
export function judgeAll(partitions: readonly PartitionLag[], maxLagSeconds: number): JudgedLag[] {
  const judged = partitions.map((p) => ({
    ...p,
    lag: p.end - p.committed,
    status: judgePartition(p, maxLagSeconds),
  }))
  return judged.map((p) => {
    if (p.status !== 'STALL' || p.owner === null) return p
    const siblings = judged.filter(
      (q) =>
        q.group === p.group && q.owner === p.owner && !(q.topic === p.topic && q.partition === p.partition),
    )
    return siblings.some((q) => q.status === 'OK') ? { ...p, status: 'STARVED' as const } : p
  })
}

const SEVERITY: Record<LagStatus, Severity> = {
  OK: 'ok',
  WARN: 'warn',
  STALL: 'crit',
  STOP: 'crit',
  REWIND: 'crit',
  STARVED: 'crit',
}

const MEANING: Record<Exclude<LagStatus, 'OK'>, { summary: string; remedy: string }> = {
  WARN: {
    summary: 'is consuming but falling further behind',
    remedy: 'Add consumers or make the handler faster; check for a slow dependency.',
  },
  STALL: {
    summary: 'has an owner but its committed offset did not move while records wait',
    remedy:
      'Look at the owning member: a handler stuck on one record, a poison record retried forever, or a commit that keeps failing.',
  },
  STOP: {
    summary: 'has records waiting and no member of the group owns it',
    remedy:
      "Start the group's consumers again, or delete the group if it is retired (its offsets then stop counting as lag).",
  },
  REWIND: {
    summary: 'had its committed offset moved back during the window',
    remedy:
      'Someone reset the offsets, or a consumer commits stale positions (a commit after losing the partition); the records in between will be handled again.',
  },
  STARVED: {
    summary:
      'is stuck while the same member keeps its other partitions caught up: one partition waits behind the rest',
    remedy:
      'The consumer serves partitions unevenly (one buffer for all, fetch sizes too small for large records, or a handler blocked on one key). A consumer that fetches per partition with its own budget (spillway) does not starve one.',
  },
}

function ownerMap(
  groups: Known<readonly GroupDescription[]>,
): Map<string, { protocol: 'classic' | 'consumer'; owners: Map<string, string> }> {
  const out = new Map<string, { protocol: 'classic' | 'consumer'; owners: Map<string, string> }>()
  if (!groups.ok) return out
  for (const g of groups.value) {
    const owners = new Map<string, string>()
    for (const m of g.members)
      for (const a of m.assignment)
        for (const p of a.partitions) owners.set(tp(a.topic, p), `${m.clientId} (${m.memberId.slice(0, 8)})`)
    out.set(g.groupId, { protocol: g.type, owners })
  }
  return out
}

export function lagKey(group: string, topic: string, partition: number): string {
  return `${group}/${tp(topic, partition)}`
}

/** The partitions the groups have committed for, with both snapshots' figures. */
export function lagInputs(ctx: CheckContext): PartitionLag[] | string {
  const { facts, second } = ctx
  const last = second ?? facts.first
  if (!last.committed.ok) return last.committed.reason
  if (!facts.first.ends.ok || !last.ends.ok) return 'log end offsets could not be listed'
  const owners = ownerMap(last.groups)
  const before = new Map<string, CommittedOffset>()
  if (facts.first.committed.ok)
    for (const c of facts.first.committed.value) before.set(lagKey(c.groupId, c.topic, c.partition), c)
  const known = new Set(facts.topics)
  const out: PartitionLag[] = []
  for (const c of last.committed.value) {
    if (c.offset < 0n || !known.has(c.topic)) continue
    const key = tp(c.topic, c.partition)
    const end = last.ends.value.get(key)
    const endBefore = facts.first.ends.value.get(key)
    if (end === undefined || endBefore === undefined) continue
    const prior = before.get(lagKey(c.groupId, c.topic, c.partition))
    const group = owners.get(c.groupId)
    const stamp = ctx.committedTimestamps?.ok
      ? ctx.committedTimestamps.value.get(lagKey(c.groupId, c.topic, c.partition))
      : undefined
    const retention = configNumber(facts.topicConfigs, c.topic, 'retention.ms')
    out.push({
      group: c.groupId,
      protocol: group?.protocol ?? 'classic',
      topic: c.topic,
      partition: c.partition,
      committedBefore: prior && prior.offset >= 0n ? prior.offset : null,
      committed: c.offset,
      endBefore,
      end,
      logStart: facts.starts.ok ? (facts.starts.value.get(key) ?? null) : null,
      lagSeconds:
        c.offset >= end
          ? 0
          : stamp === undefined || stamp === null
            ? null
            : Math.max(0, (last.at - stamp) / 1000),
      owner: group?.owners.get(key) ?? null,
      retentionMs: retention !== undefined && retention > 0 ? retention : null,
    })
  }
  return out
}

export function consumerLagCheck(ctx: CheckContext): CheckReport {
  const title = 'Consumer lag and group health'
  const inputs = lagInputs(ctx)
  if (typeof inputs === 'string')
    return checkReport('consumer-lag', title, [unknownFinding('consumer-lag', 'groups', inputs)])
  const judged = judgeAll(inputs, ctx.options.maxLagSeconds)
  const findings: Finding[] = []
  const windowS = ctx.second ? (ctx.second.at - ctx.facts.first.at) / 1000 : 0
  const byGroupStatus = new Map<string, JudgedLag[]>()
  for (const p of judged) {
    if (p.status === 'OK') continue
    const key = `${p.group}\u0000${p.status}`
    byGroupStatus.set(key, [...(byGroupStatus.get(key) ?? []), p])
  }
  for (const list of byGroupStatus.values()) {
    const first = list[0] as JudgedLag
    const status = first.status as Exclude<LagStatus, 'OK'>
    const names = list.map((p) => tp(p.topic, p.partition))
    findings.push({
      id: `consumer-lag.${status.toLowerCase()}`,
      severity: SEVERITY[status],
      subject: `group ${first.group}`,
      summary: `${status}: ${listed(names)} of group ${first.group} (${first.protocol} protocol) ${MEANING[status].summary}; lag ${list.reduce((n, p) => n + p.lag, 0n)} records${
        first.lagSeconds !== null
          ? `, oldest waiting ${Math.round(Math.max(...list.map((p) => p.lagSeconds ?? 0)))} s`
          : ''
      }.`,
      confidence: list.some((p) => p.lagSeconds === null) || windowS < 2 ? 'medium' : 'high',
      evidence: {
        group: first.group,
        protocol: first.protocol,
        status,
        windowSeconds: windowS,
        partitions: list.map((p) => ({
          topic: p.topic,
          partition: p.partition,
          owner: p.owner,
          committedBefore: p.committedBefore?.toString() ?? null,
          committed: p.committed.toString(),
          end: p.end.toString(),
          lag: p.lag.toString(),
          lagSeconds: p.lagSeconds,
        })),
      },
      remedy: MEANING[status].remedy,
    })
  }
  for (const p of judged) {
    if (p.lag <= 0n) continue
    if (p.logStart !== null && p.committed < p.logStart) {
      findings.push({
        id: 'consumer-lag.beyond-retention',
        severity: 'crit',
        subject: `group ${p.group} ${tp(p.topic, p.partition)}`,
        summary: `Group ${p.group} committed offset ${p.committed} on ${tp(p.topic, p.partition)}, before the log start (${p.logStart}): retention deleted records it never handled.`,
        confidence: 'high',
        evidence: {
          group: p.group,
          topic: p.topic,
          partition: p.partition,
          committed: p.committed.toString(),
          logStart: p.logStart.toString(),
        },
        remedy:
          'Those records are gone; fix the lag first, then raise retention.ms on topics whose consumers can fall this far behind.',
      })
    } else if (
      p.lagSeconds !== null &&
      p.retentionMs !== null &&
      p.lagSeconds * 1000 >= 0.5 * p.retentionMs
    ) {
      findings.push({
        id: 'consumer-lag.retention',
        severity: 'warn',
        subject: `group ${p.group} ${tp(p.topic, p.partition)}`,
        summary: `Group ${p.group} is ${Math.round(p.lagSeconds)} s behind on ${tp(p.topic, p.partition)}: ${Math.round((100 * p.lagSeconds * 1000) / p.retentionMs)}% of the topic's retention.`,
        confidence: 'high',
        evidence: {
          group: p.group,
          topic: p.topic,
          partition: p.partition,
          lagSeconds: p.lagSeconds,
          retentionMs: p.retentionMs,
        },
        remedy:
          'Catch up before retention deletes unhandled records: add consumers, or raise retention.ms for now.',
      })
    }
  }
  const order: LagStatus[] = ['STARVED', 'STOP', 'STALL', 'REWIND', 'WARN', 'OK']
  const rows = [...judged]
    .sort((a, b) => order.indexOf(a.status) - order.indexOf(b.status) || Number(b.lag - a.lag))
    .slice(0, 40)
    .map((p) => [
      p.group,
      p.protocol,
      tp(p.topic, p.partition),
      p.owner ?? '-',
      p.committed.toString(),
      p.end.toString(),
      p.lag.toString(),
      p.lagSeconds === null ? '?' : Math.round(p.lagSeconds),
      p.status,
    ])
  const groups = new Set(judged.map((p) => p.group))
  const notes = [
    `${groups.size} group(s), ${judged.length} committed partition(s), judged over a ${windowS.toFixed(1)} s window; lag under ${ctx.options.maxLagSeconds} s is OK.`,
  ]
  return checkReport('consumer-lag', title, findings, notes, {
    columns: ['group', 'protocol', 'partition', 'owner', 'committed', 'end', 'lag', 'lag s', 'status'],
    rows,
  })
}
