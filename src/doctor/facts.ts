/**
 * What the doctor reads from the cluster, through the admin facet only: metadata, configs, offsets,
 * producer ids, log sizes, groups and their commits, transactions. Each part is Known: its value, or the reason it could
 * not be read (an ACL, an API the broker lacks, the deadline), so a check can say UNKNOWN instead of
 * calling something healthy that it never saw.
 */
import { asSpillwayError } from '../errors.ts'
import type {
  AdminFacet,
  CommittedOffset,
  ConfigEntry,
  GroupDescription,
  LogDirPartition,
  ProducerDescription,
  TransactionDescription,
} from '../transport/cluster.ts'
import type { ClusterSnapshot } from '../transport/metadata-cache.ts'

export type Known<T> =
  | { readonly ok: true; readonly value: T }
  | { readonly ok: false; readonly reason: string }

export async function known<T>(work: Promise<T>): Promise<Known<T>> {
  try {
    return { ok: true, value: await work }
  } catch (error) {
    const e = asSpillwayError(error)
    return { ok: false, reason: `${e.code}: ${e.message}` }
  }
}

/** `topic[partition]`: topic names cannot contain brackets, so this key is unambiguous. */
export function tp(topic: string, partition: number): string {
  return `${topic}[${partition}]`
}

export interface PartitionInfo {
  readonly topic: string
  readonly partition: number
  readonly leader: number
  readonly replicas: readonly number[]
  readonly isr: readonly number[]
  readonly offline: readonly number[]
}

export type Configs = ReadonlyMap<string, ReadonlyMap<string, ConfigEntry>>
export type Offsets = ReadonlyMap<string, bigint>

/** One look at what moves: log ends, producer ids, commits and who owns what. */
export interface Snapshot {
  /** Date.now() when it was taken. */
  readonly at: number
  readonly ends: Known<Offsets>
  readonly producers: Known<ReadonlyMap<string, ProducerDescription>>
  readonly committed: Known<readonly CommittedOffset[]>
  readonly groups: Known<readonly GroupDescription[]>
}

export interface Facts {
  readonly cluster: ClusterSnapshot
  readonly partitions: readonly PartitionInfo[]
  /** The topics looked at (the ones asked for that exist, or all), internal ones included. */
  readonly topics: readonly string[]
  readonly topicConfigs: Known<Configs>
  /** Per broker id (as a string). */
  readonly brokerConfigs: Known<Configs>
  readonly starts: Known<Offsets>
  /** The first offset at or after one hour ago (-1: nothing written since). */
  readonly hourAgo: Known<Offsets>
  readonly logDirs: Known<readonly LogDirPartition[]>
  readonly first: Snapshot
  /** What the transaction coordinators know (ListTransactions, DescribeTransactions). */
  readonly transactions: Known<readonly TransactionDescription[]>
}

export const isInternal = (topic: string): boolean => topic.startsWith('__')

function bySubject(entries: readonly { name: string; entries: readonly ConfigEntry[] }[]): Configs {
  return new Map(entries.map((d) => [d.name, new Map(d.entries.map((e) => [e.name, e]))]))
}

async function offsetsAt(
  admin: AdminFacet,
  partitions: readonly PartitionInfo[],
  timestamp: bigint,
  deadlineMs: number,
): Promise<Offsets> {
  if (partitions.length === 0) return new Map()
  const listed = await admin.listOffsets(
    partitions.map((p) => ({ topic: p.topic, partition: p.partition, timestamp })),
    deadlineMs,
  )
  return new Map(listed.map((o) => [tp(o.topic, o.partition), o.offset]))
}

export interface Scope {
  readonly topics: readonly string[] | null
  readonly groups: readonly string[] | null
}

/** Metadata first: without it nothing else can be judged, so its failure is the run's failure. */
export async function readMetadata(
  admin: AdminFacet,
  scope: Scope,
  deadlineMs: number,
): Promise<{ cluster: ClusterSnapshot; partitions: PartitionInfo[]; missing: string[] }> {
  const cluster = await admin.metadata(scope.topics ?? [], deadlineMs)
  const partitions = cluster.topics.flatMap((t) =>
    t.partitions.map((p) => ({
      topic: t.name,
      partition: p.partition,
      leader: p.leader,
      replicas: p.replicas,
      isr: p.isr,
      offline: p.offlineReplicas,
    })),
  )
  const present = new Set(cluster.topics.map((t) => t.name))
  const missing = (scope.topics ?? []).filter((t) => !present.has(t))
  return { cluster, partitions, missing }
}

export async function takeSnapshot(
  admin: AdminFacet,
  partitions: readonly PartitionInfo[],
  scope: Scope,
  deadlineMs: number,
): Promise<Snapshot> {
  // internal topics are read for replication only: offsets and producer state are about user data
  const data = partitions.filter((p) => !isInternal(p.topic))
  const topics = [...new Set(data.map((p) => p.topic))]
  const groupIds = (async (): Promise<string[]> =>
    scope.groups ? [...scope.groups] : (await admin.listGroups(deadlineMs)).map((g) => g.groupId))()
  const [ends, producers, committed, groups] = await Promise.all([
    known(offsetsAt(admin, data, -1n, deadlineMs)),
    known(
      (async () => {
        if (topics.length === 0) return new Map<string, ProducerDescription>()
        const described = await admin.describeProducers(topics, deadlineMs)
        return new Map(described.map((d) => [tp(d.topic, d.partition), d]))
      })(),
    ),
    known(
      (async () => {
        const ids = await groupIds
        return ids.length === 0 ? [] : await admin.committedOffsets(ids, deadlineMs)
      })(),
    ),
    known(
      (async () => {
        const ids = await groupIds
        return ids.length === 0 ? [] : await admin.describeGroups(ids, deadlineMs)
      })(),
    ),
  ])
  return { at: Date.now(), ends, producers, committed, groups }
}

export async function gatherFacts(
  admin: AdminFacet,
  cluster: ClusterSnapshot,
  partitions: readonly PartitionInfo[],
  scope: Scope,
  deadlineMs: number,
): Promise<Facts> {
  const topics = [...new Set(partitions.map((p) => p.topic))]
  const data = partitions.filter((p) => !isInternal(p.topic))
  const dataTopics = [...new Set(data.map((p) => p.topic))]
  const now = BigInt(Date.now())
  const [topicConfigs, brokerConfigs, starts, hourAgo, logDirs, first, transactions] = await Promise.all([
    known(
      (async () =>
        topics.length === 0
          ? new Map()
          : bySubject(
              await admin.describeConfigs(
                topics.map((name) => ({ type: 'topic', name })),
                deadlineMs,
              ),
            ))(),
    ),
    known(
      (async () =>
        bySubject(
          await admin.describeConfigs(
            cluster.brokers.map((b) => ({ type: 'broker', name: String(b.nodeId) })),
            deadlineMs,
          ),
        ))(),
    ),
    known(offsetsAt(admin, data, -2n, deadlineMs)),
    known(offsetsAt(admin, data, now - 3_600_000n, deadlineMs)),
    known(dataTopics.length === 0 ? Promise.resolve([]) : admin.describeLogDirs(dataTopics, deadlineMs)),
    takeSnapshot(admin, partitions, scope, deadlineMs),
    known(admin.describeTransactions(deadlineMs)),
  ])
  return {
    cluster,
    partitions,
    topics,
    topicConfigs,
    brokerConfigs,
    starts,
    hourAgo,
    logDirs,
    first,
    transactions,
  }
}

/** A config value as a number, from a topic's or a broker's description; undefined when not known. */
export function configNumber(configs: Known<Configs>, subject: string, name: string): number | undefined {
  if (!configs.ok) return undefined
  const value = configs.value.get(subject)?.get(name)?.value
  if (value === null || value === undefined) return undefined
  const n = Number(value)
  return Number.isFinite(n) ? n : undefined
}

export function configEntry(configs: Known<Configs>, subject: string, name: string): ConfigEntry | undefined {
  return configs.ok ? configs.value.get(subject)?.get(name) : undefined
}

/** The first broker's value of a broker setting (they are usually the same; checks name the broker when not). */
export function anyBrokerConfig(configs: Known<Configs>, name: string): ConfigEntry | undefined {
  if (!configs.ok) return undefined
  for (const entries of configs.value.values()) {
    const e = entries.get(name)
    if (e) return e
  }
  return undefined
}
