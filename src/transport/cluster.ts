/**
 * A cluster, as the rest of spillway sees it: one object per cluster key (brokers, client id, TLS, SASL,
 * timeouts), holding the connections and the one topic-metadata cache, and offering facets:
 *
 *   producer  the process's one idempotent Kafka producer (one producer id, however many leases)
 *   admin     metadata and the read-only admin calls the producer, the consumer and the doctor need
 *
 * Facets are leased from the registry (registry.ts). Each facet method is one entry of the operation
 * table (operations.ts), which is also what the worker-thread transport carries, so adding an operation
 * is one method here, one entry there and its implementation in platformatic.ts or admin.ts.
 *
 * Errors: the producer facet reports per-record outcomes (never throws for Kafka's answers). Admin calls
 * reject with a SpillwayError carrying a stable code (errors.ts); TransportError stays inside transport/.
 */
import type { ClusterSnapshot } from './metadata-cache.ts'
import type { OutboundRecord, RecordOutcome } from './transport.ts'

export type {
  BrokerAddress,
  ClusterSnapshot,
  PartitionMetadata,
  TopicMetadata,
} from './metadata-cache.ts'

export interface ProducerFacet {
  /** Number of Kafka producers this cluster has created (1, plus one per fatal rebuild). */
  readonly initializations: number
  /** The idempotent producer id, once the first send has obtained it. */
  readonly producerId: bigint | undefined
  /** Sends records; one outcome per record, in input order. Never waits past deadlineMs. */
  send(records: readonly OutboundRecord[], deadlineMs: number): Promise<RecordOutcome[]>
  /** Rebuilds the Kafka producer after a fatal error (new producer id). */
  rebuild(reason: string): Promise<void>
}

export interface ProducerDescription {
  readonly topic: string
  readonly partition: number
  readonly producerIds: readonly bigint[]
  /** Per producer id, in the same order: its last sequence, epoch and last write time. */
  readonly producers: readonly {
    readonly producerId: bigint
    readonly producerEpoch: number
    readonly lastSequence: number
    readonly lastTimestamp: bigint
  }[]
}

/** `timestamp` -1 asks for the log end, -2 for the log start, anything else for the first offset at or after it. */
export interface OffsetQuery {
  readonly topic: string
  readonly partition: number
  readonly timestamp: bigint
}

export interface ListedOffset {
  readonly topic: string
  readonly partition: number
  readonly offset: bigint
  readonly timestamp: bigint
}

export interface ConfigQuery {
  readonly type: 'topic' | 'broker'
  readonly name: string
  /** Only these keys (default: all). */
  readonly keys?: readonly string[]
}

export interface ConfigEntry {
  readonly name: string
  readonly value: string | null
  /** Where the value comes from: 'topic', 'dynamic-broker', 'static-broker', 'default', … */
  readonly source: string
  readonly sensitive: boolean
}

export interface ConfigDescription {
  readonly type: 'topic' | 'broker'
  readonly name: string
  readonly entries: readonly ConfigEntry[]
}

export interface LogDirPartition {
  readonly broker: number
  readonly dir: string
  readonly topic: string
  readonly partition: number
  readonly bytes: bigint
}

export interface GroupListing {
  readonly groupId: string
  readonly state: string
  /** 'classic' or 'consumer' (KIP-848) as the broker reports it. */
  readonly type: string
  readonly protocolType: string
}

export interface GroupMemberDescription {
  readonly memberId: string
  readonly clientId: string
  readonly clientHost: string
  /** The member epoch (KIP-848 groups), or -1 for classic ones. */
  readonly memberEpoch: number
  readonly assignment: readonly { readonly topic: string; readonly partitions: readonly number[] }[]
}

export interface GroupDescription {
  readonly groupId: string
  readonly type: 'classic' | 'consumer'
  readonly state: string
  /** The generation (classic) or group epoch (KIP-848). -1 when the broker does not say. */
  readonly epoch: number
  readonly members: readonly GroupMemberDescription[]
}

export interface CommittedOffset {
  readonly groupId: string
  readonly topic: string
  readonly partition: number
  /** -1 when the group has committed nothing for this partition. */
  readonly offset: bigint
  readonly metadata: string | null
}

export interface AdminFacet {
  /**
   * Partition count of a topic, from the cluster's metadata cache: the producer's lookup, asked the way the
   * Java producer asks (a broker that creates topics on first use creates it). A missing topic is
   * SPW_ERR_TOPIC_MISSING.
   */
  partitions(topic: string, deadlineMs: number): Promise<number>
  /** Brokers, controller and the named topics (all topics when `topics` is empty), fresh from a broker. */
  metadata(topics: readonly string[], deadlineMs: number): Promise<ClusterSnapshot>
  /** DescribeProducers (KIP-664) for every partition of the topics, asked of each partition's leader. */
  describeProducers(topics: readonly string[], deadlineMs: number): Promise<ProducerDescription[]>
  /** ListOffsets: the log end (-1), log start (-2) or the first offset at a timestamp. */
  listOffsets(queries: readonly OffsetQuery[], deadlineMs: number): Promise<ListedOffset[]>
  describeConfigs(queries: readonly ConfigQuery[], deadlineMs: number): Promise<ConfigDescription[]>
  /** Bytes on disk per partition replica, per broker and log directory. */
  describeLogDirs(topics: readonly string[], deadlineMs: number): Promise<LogDirPartition[]>
  listGroups(deadlineMs: number): Promise<GroupListing[]>
  /** Classic groups through DescribeGroups, KIP-848 groups through ConsumerGroupDescribe. */
  describeGroups(groupIds: readonly string[], deadlineMs: number): Promise<GroupDescription[]>
  /** OffsetFetch: what each group has committed. */
  committedOffsets(groupIds: readonly string[], deadlineMs: number): Promise<CommittedOffset[]>
}

export interface Cluster {
  readonly producer: ProducerFacet
  readonly admin: AdminFacet
  close(): Promise<void>
}

/** The facets and their methods: what the operation table must cover. */
export interface Facets {
  readonly producer: ProducerFacet
  readonly admin: AdminFacet
}
