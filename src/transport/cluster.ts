/**
 * A cluster, as the rest of spillway sees it: one object per cluster key (brokers, client id, TLS, SASL,
 * timeouts), holding the connections and the one topic-metadata cache, and offering facets:
 *
 *   producer  the process's one idempotent Kafka producer (one producer id, however many leases)
 *   admin     metadata and the read-only admin calls the producer, the consumer and the doctor need
 *   group     what a consumer needs beyond them: KIP-848 heartbeats, epoch-fenced commits and fetches
 *             (one fetch session per consumer and broker)
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
    /** The first offset of the producer's open transaction on this partition, or -1n when none is open. */
    readonly currentTxnStartOffset: bigint
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

/** A transaction as its coordinator knows it: ListTransactions on every broker, then DescribeTransactions. */
export interface TransactionDescription {
  readonly transactionalId: string
  readonly producerId: bigint
  readonly producerEpoch: number
  /** Ongoing, PrepareCommit, PrepareAbort, CompleteCommit, CompleteAbort, Empty, Dead, PrepareEpochFence */
  readonly state: string
  readonly timeoutMs: number
  /** -1 when no transaction is open */
  readonly startTimeMs: number
  readonly coordinator: number
  readonly partitions: readonly { topic: string; partition: number }[]
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
  /**
   * OffsetFetch: what each group has committed. `stable` waits out offsets a transaction has not yet
   * committed or aborted (KIP-447): such a partition is an error until the transaction ends.
   */
  committedOffsets(
    groupIds: readonly string[],
    deadlineMs: number,
    stable?: boolean,
  ): Promise<CommittedOffset[]>
  /** Creates the topics that do not exist yet (an existing one is left as it is). */
  createTopics(topics: readonly { name: string; partitions: number }[], deadlineMs: number): Promise<void>
  /** Every transactional id the coordinators know, with its state and the partitions in its transaction. */
  describeTransactions(deadlineMs: number): Promise<TransactionDescription[]>
}

export interface TopicPartitions {
  readonly topic: string
  readonly partitions: readonly number[]
}

/** One ConsumerGroupHeartbeat (KIP-848). Topics are named; the facet maps them to topic ids. */
export interface GroupHeartbeat {
  readonly groupId: string
  /** The member's id, made by the member (a UUID) and kept for its lifetime. */
  readonly memberId: string
  /** 0 to join, -1 to leave, otherwise the epoch the member is at. */
  readonly memberEpoch: number
  readonly rebalanceTimeoutMs: number
  /** The subscription; null when unchanged since the last heartbeat. */
  readonly topics: readonly string[] | null
  /** The partitions the member owns now; null when unchanged since the last heartbeat. */
  readonly owned: readonly TopicPartitions[] | null
  /** The server-side assignor to use ('uniform', 'range'); null or absent for the broker's default. */
  readonly serverAssignor?: string | null
}

export interface GroupHeartbeatAnswer {
  readonly memberId: string
  readonly memberEpoch: number
  readonly heartbeatIntervalMs: number
  /** The member's whole target assignment, when it changed; null when unchanged. */
  readonly assignment: readonly TopicPartitions[] | null
}

export interface OffsetToCommit {
  readonly topic: string
  readonly partition: number
  readonly offset: bigint
  /** At most 4 KB by default broker settings (offset.metadata.max.bytes). */
  readonly metadata: string
}

export interface CommitRequest {
  readonly groupId: string
  readonly memberId: string
  /** The member epoch (KIP-848) the partitions are owned under; a stale one is refused. */
  readonly memberEpoch: number
  readonly offsets: readonly OffsetToCommit[]
}

/** Per partition: null when committed, otherwise the broker's error name (STALE_MEMBER_EPOCH, …). */
export interface CommitResult {
  readonly topic: string
  readonly partition: number
  readonly error: string | null
}

export interface FetchRequest {
  /** Names the caller's fetch session: one per consumer; each has its own session per broker. */
  readonly session: string
  readonly broker: number
  readonly maxWaitMs: number
  readonly minBytes: number
  readonly maxBytes: number
  readonly partitions: readonly {
    readonly topic: string
    readonly partition: number
    readonly offset: bigint
    readonly maxBytes: number
  }[]
}

export interface FetchedRecord {
  readonly offset: bigint
  readonly timestamp: number
  readonly key: Buffer | null
  readonly value: Buffer | null
  readonly headers: readonly (readonly [string, Buffer])[]
  /** Key, value and header bytes: what the record weighs in a buffer. */
  readonly size: number
}

export interface FetchedPartition {
  readonly topic: string
  readonly partition: number
  /** null, or the broker's error name for this partition (OFFSET_OUT_OF_RANGE, NOT_LEADER_OR_FOLLOWER, …). */
  readonly error: string | null
  readonly highWatermark: bigint
  readonly logStartOffset: bigint
  readonly records: readonly FetchedRecord[]
  /** Bytes of the record batches returned. */
  readonly bytes: number
  /** The largest record batch returned, in bytes. */
  readonly largestBatch: number
  /** The size of each record batch returned (control batches included), in log order. */
  readonly batchSizes: readonly number[]
  /** Where the next fetch of this partition starts (after the last batch, or the request's offset). */
  readonly nextOffset: bigint
}

/** A member's subscription in the classic protocol (what JoinGroup carries for each member). */
export interface ClassicSubscription {
  readonly memberId: string
  readonly topics: readonly string[]
  /** What the member owns now (cooperative rebalancing keeps it where it is). */
  readonly owned: readonly TopicPartitions[]
  /** The generation the member owned it under; -1 for none. */
  readonly generationId: number
}

/**
 * Every classic call names the member's session: JoinGroup and SyncGroup wait at the coordinator until
 * the group is complete, and a broker answers one connection's requests in order, so each member talks
 * to its coordinator over connections of its own (another member's Heartbeat or a commit must not queue
 * behind them).
 */
export interface ClassicJoin {
  readonly session: string
  readonly groupId: string
  /** '' for a new member: the coordinator gives it an id (and asks it to join again with it). */
  readonly memberId: string
  readonly sessionTimeoutMs: number
  readonly rebalanceTimeoutMs: number
  readonly topics: readonly string[]
  readonly owned: readonly TopicPartitions[]
  readonly generationId: number
}

export interface ClassicJoinAnswer {
  readonly memberId: string
  readonly generationId: number
  readonly leader: string
  /** Every member's subscription; empty unless this member is the leader. */
  readonly members: readonly ClassicSubscription[]
}

export interface ClassicSync {
  readonly session: string
  readonly groupId: string
  readonly memberId: string
  readonly generationId: number
  /** The leader's assignment for every member; empty for the others. */
  readonly assignments: readonly {
    readonly memberId: string
    readonly partitions: readonly TopicPartitions[]
  }[]
}

export interface ClassicMember {
  readonly session: string
  readonly groupId: string
  readonly memberId: string
}

export interface GroupFacet {
  heartbeat(request: GroupHeartbeat, deadlineMs: number): Promise<GroupHeartbeatAnswer>
  /**
   * The classic protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup, with the cooperative-sticky
   * assignor), for brokers before KIP-848. Errors as SpillwayErrors: SPW_ERR_GROUP_FENCED for an unknown
   * member or a stale generation; REBALANCE_IN_PROGRESS among `details.kafkaErrors` when the member must
   * join again.
   */
  classicJoin(request: ClassicJoin, deadlineMs: number): Promise<ClassicJoinAnswer>
  /** The member's own assignment for the generation. */
  classicSync(request: ClassicSync, deadlineMs: number): Promise<TopicPartitions[]>
  classicHeartbeat(
    request: ClassicMember & { readonly generationId: number },
    deadlineMs: number,
  ): Promise<void>
  /** Leaves the group and closes the member's connections. */
  classicLeave(request: ClassicMember, deadlineMs: number): Promise<void>
  /** OffsetCommit with the member epoch; refusals come back per partition, never retried here. */
  commit(request: CommitRequest, deadlineMs: number): Promise<CommitResult[]>
  /** One Fetch to one broker within a fetch session (KIP-227). */
  fetch(request: FetchRequest, deadlineMs: number): Promise<FetchedPartition[]>
  /** Closes a fetch session's connections' state (the consumer is done). */
  endSession(session: string): Promise<void>
}

export interface Cluster {
  readonly producer: ProducerFacet
  readonly admin: AdminFacet
  readonly group: GroupFacet
  close(): Promise<void>
}

/** The facets and their methods: what the operation table must cover. */
export interface Facets {
  readonly producer: ProducerFacet
  readonly admin: AdminFacet
  readonly group: GroupFacet
}
