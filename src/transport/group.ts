/**
 * The group facet over @platformatic/kafka: what a consumer needs beyond the admin calls.
 *
 * - Membership is KIP-848's ConsumerGroupHeartbeat, sent by spillway itself to the group coordinator
 *   over the admin client's authenticated connections. The client's own Consumer acknowledges a
 *   revocation at once and keeps the member epoch to itself; spillway must first finish or abandon the
 *   revoked partitions' work and commit it under the epoch it was fetched under (docs/architecture.md).
 * - Commits are OffsetCommit v9 with the member epoch, and each partition's refusal comes back to the
 *   caller: a stale or fenced commit is dropped by the consumer, never sent again under a newer epoch.
 * - Fetches go through the client's `Consumer.fetch`, which keeps a KIP-227 fetch session per broker.
 *   Each spillway consumer has its own fetching client (named by `session`), so two consumers in one
 *   process never share a session. The client is never subscribed and never joins a group.
 */
import {
  type Admin,
  type Connection,
  type Consumer,
  consumerGroupHeartbeatV1,
  cooperativeStickyAssigner,
  decodeConsumerProtocolAssignment,
  decodeConsumerProtocolSubscription,
  encodeConsumerProtocolAssignment,
  encodeConsumerProtocolSubscription,
  FindCoordinatorKeyTypes,
  heartbeatV4,
  joinGroupV9,
  leaveGroupV5,
  offsetCommitV9,
  protocolErrorsCodesById,
  type RecordsBatch,
  syncGroupV5,
  txnOffsetCommitV4,
} from '@platformatic/kafka'
import { SpillwayError } from '../errors.ts'
import { brokerConnection, callbackApi } from './admin.ts'
import { clientErrorFacts, toSpillwayError } from './classify.ts'
import type {
  ClassicJoin,
  ClassicJoinAnswer,
  ClassicMember,
  ClassicSubscription,
  ClassicSync,
  CommitRequest,
  CommitResult,
  FetchedPartition,
  FetchedRecord,
  FetchRequest,
  GroupFacet,
  GroupHeartbeat,
  GroupHeartbeatAnswer,
  TopicPartitions,
} from './cluster.ts'
import { withDeadline } from './deadline.ts'
import type { MetadataCache } from './metadata-cache.ts'

/** The classic protocol's assignor: keeps partitions where they are and moves one only once it is free. */
const COOPERATIVE = 'cooperative-sticky'
/** ConsumerProtocolSubscription v1 carries owned partitions (cooperative rebalancing); later ones add generation and rack. */
const SUBSCRIPTION_VERSION = 2

/**
 * The cooperative-sticky assignment of `partitionCounts` among the members: owned partitions stay, free
 * ones go to the least loaded, and a partition that must move is first left unassigned (its owner gives
 * it up and joins again; the next generation gives it to its new member).
 */
export function cooperativeAssignment(
  members: readonly ClassicSubscription[],
  partitionCounts: ReadonlyMap<string, number>,
): { memberId: string; partitions: TopicPartitions[] }[] {
  const byId = new Map(
    members.map((m) => [
      m.memberId,
      {
        memberId: m.memberId,
        topics: [...m.topics],
        ownedPartitions: m.owned.map((o) => ({ topic: o.topic, partitions: [...o.partitions] })),
        generationId: m.generationId,
      },
    ]),
  )
  const topics = new Set(members.flatMap((m) => m.topics).filter((t) => partitionCounts.has(t)))
  const metadata = {
    topics: new Map([...partitionCounts].map(([topic, count]) => [topic, { partitionsCount: count }])),
  }
  const assigned = cooperativeStickyAssigner('', byId as never, topics, metadata as never)
  return assigned.map((a) => ({
    memberId: a.memberId,
    partitions: [...a.assignments.values()].map((t) => ({
      topic: t.topic,
      partitions: [...t.partitions].sort((x, y) => x - y),
    })),
  }))
}

/** Errors that mean the coordinator moved: look it up again. */
const COORDINATOR_MOVED = new Set([
  'NOT_COORDINATOR',
  'COORDINATOR_NOT_AVAILABLE',
  'COORDINATOR_LOAD_IN_PROGRESS',
])
/** The batch attribute bit of a transaction marker: it holds no user records. */
const CONTROL_BATCH = 0x20
/** Kafka's record batch header before `length` counts: baseOffset (8) and length (4). */
const BATCH_LOG_OVERHEAD = 12

type FetchClient = Consumer<Buffer, Buffer, Buffer, Buffer>

export class PlatformaticGroup implements GroupFacet {
  readonly #admin: () => Admin
  readonly #metadata: MetadataCache
  readonly #fetchClient: (session: string) => FetchClient
  readonly #memberClient: (session: string) => Admin
  readonly #coordinators = new Map<string, number>()
  readonly #sessions = new Map<string, FetchClient>()
  /** Classic members' own clients, by session: their JoinGroup and SyncGroup wait on these connections. */
  readonly #members = new Map<string, Admin>()
  readonly #names = new Map<string, string>()

  constructor(
    admin: () => Admin,
    metadata: MetadataCache,
    fetchClient: (session: string) => FetchClient,
    memberClient: (session: string) => Admin,
  ) {
    this.#admin = admin
    this.#metadata = metadata
    this.#fetchClient = fetchClient
    this.#memberClient = memberClient
  }

  #member(session: string): Admin {
    let client = this.#members.get(session)
    if (!client) {
      client = this.#memberClient(session)
      this.#members.set(session, client)
    }
    return client
  }

  async #coordinator(groupId: string, client: Admin): Promise<Connection> {
    let nodeId = this.#coordinators.get(groupId)
    if (nodeId === undefined) {
      const [found] = await this.#admin().findCoordinator({
        keyType: FindCoordinatorKeyTypes.GROUP,
        keys: [groupId],
      })
      if (!found || found.nodeId < 0)
        throw new SpillwayError('SPW_ERR_UNAVAILABLE', `no coordinator for group ${groupId}`)
      nodeId = found.nodeId
      this.#coordinators.set(groupId, nodeId)
    }
    return await brokerConnection(client, nodeId)
  }

  /** Runs one request to the group's coordinator; a coordinator that moved is forgotten. */
  async #toCoordinator<T>(
    groupId: string,
    what: string,
    deadlineMs: number,
    call: (c: Connection) => Promise<T>,
    client: Admin = this.#admin(),
  ): Promise<T> {
    try {
      return await withDeadline(
        (async () => await call(await this.#coordinator(groupId, client)))(),
        deadlineMs,
        what,
      )
    } catch (error) {
      const facts = clientErrorFacts(error)
      if ([...facts.names].some((n) => COORDINATOR_MOVED.has(n)) || facts.codes.has('PLT_KFK_NETWORK'))
        this.#coordinators.delete(groupId)
      throw toSpillwayError(error, what)
    }
  }

  async #topicId(name: string): Promise<string | undefined> {
    const topic = await this.#metadata.topic(name)
    if (topic) this.#names.set(topic.id, name)
    return topic?.id
  }

  async #ids(list: readonly TopicPartitions[]): Promise<{ topicId: string; partitions: number[] }[]> {
    const out: { topicId: string; partitions: number[] }[] = []
    for (const t of list) {
      const topicId = await this.#topicId(t.topic)
      if (topicId) out.push({ topicId, partitions: [...t.partitions] })
    }
    return out
  }

  async #name(topicId: string, subscribed: readonly string[]): Promise<string | undefined> {
    if (!this.#names.has(topicId)) {
      // a topic id not seen yet: the subscription's metadata names it (a topic created meanwhile)
      for (const name of subscribed) {
        this.#metadata.invalidate(name)
        await this.#topicId(name)
      }
    }
    return this.#names.get(topicId)
  }

  #subscribed = new Map<string, readonly string[]>()

  async heartbeat(request: GroupHeartbeat, deadlineMs: number): Promise<GroupHeartbeatAnswer> {
    if (request.topics) this.#subscribed.set(request.groupId, request.topics)
    const subscribed = this.#subscribed.get(request.groupId) ?? []
    const owned = request.owned ? await this.#ids(request.owned) : null
    const response = await this.#toCoordinator(
      request.groupId,
      'ConsumerGroupHeartbeat',
      deadlineMs,
      (connection) =>
        callbackApi<Awaited<ReturnType<typeof consumerGroupHeartbeatV1.api.async>>>((cb) =>
          consumerGroupHeartbeatV1.api(
            connection,
            request.groupId,
            request.memberId,
            request.memberEpoch,
            null,
            null,
            request.rebalanceTimeoutMs,
            request.topics ? [...request.topics] : null,
            null,
            request.serverAssignor ?? null,
            owned,
            cb as never,
          ),
        ),
    )
    let assignment: TopicPartitions[] | null = null
    if (response.assignment) {
      assignment = []
      for (const t of response.assignment.topicPartitions) {
        const topic = await this.#name(t.topicId, subscribed)
        if (topic === undefined) {
          throw new SpillwayError(
            'SPW_ERR_UNAVAILABLE',
            `the assignment names topic id ${t.topicId}, unknown to metadata yet`,
          )
        }
        assignment.push({ topic, partitions: [...t.partitions].sort((a, b) => a - b) })
      }
    }
    return {
      memberId: response.memberId ?? request.memberId,
      memberEpoch: response.memberEpoch,
      heartbeatIntervalMs: response.heartbeatIntervalMs,
      assignment,
    }
  }

  async commit(request: CommitRequest, deadlineMs: number): Promise<CommitResult[]> {
    return await this.#commitRequest(request.groupId, 'OffsetCommit', deadlineMs, (connection, cb) =>
      offsetCommitV9.api(
        connection,
        request.groupId,
        request.memberEpoch,
        request.memberId,
        null,
        offsetTopics(request.offsets),
        cb as never,
      ),
    )
  }

  /**
   * TxnOffsetCommit (KIP-447): the offsets become part of the producer's open transaction, committed or
   * aborted with it. The member id and epoch fence a member that lost the partitions meanwhile.
   */
  async commitInTransaction(
    request: CommitRequest & { transactionalId: string; producerId: bigint; producerEpoch: number },
    deadlineMs: number,
  ): Promise<CommitResult[]> {
    return await this.#commitRequest(request.groupId, 'TxnOffsetCommit', deadlineMs, (connection, cb) =>
      txnOffsetCommitV4.api(
        connection,
        request.transactionalId,
        request.groupId,
        request.producerId,
        request.producerEpoch,
        request.memberEpoch,
        request.memberId,
        null,
        offsetTopics(request.offsets),
        cb as never,
      ),
    )
  }

  /** One commit request to the group's coordinator, answered per partition. */
  async #commitRequest(
    groupId: string,
    what: string,
    deadlineMs: number,
    send: (connection: Connection, callback: (error: unknown, value: CommitAnswer) => void) => void,
  ): Promise<CommitResult[]> {
    let response: CommitAnswer
    try {
      response = await this.#toCoordinator(groupId, what, deadlineMs, (connection) =>
        callbackApi<CommitAnswer>((cb) => send(connection, cb)),
      )
    } catch (error) {
      // per-partition refusals arrive as an error carrying the whole answer: report them per partition
      const answered = answerOf<CommitAnswer>(error)
      if (!answered) throw error
      response = answered
    }
    return commitResults(response.topics)
  }

  async classicJoin(request: ClassicJoin, deadlineMs: number): Promise<ClassicJoinAnswer> {
    const metadata = encodeConsumerProtocolSubscription({
      version: SUBSCRIPTION_VERSION,
      topics: [...request.topics],
      userData: null,
      ownedPartitions: request.owned.map((o) => ({ topic: o.topic, partitions: [...o.partitions] })),
      generationId: request.generationId,
    } as never)
    type Answer = Awaited<ReturnType<typeof joinGroupV9.api.async>>
    const join = (memberId: string): Promise<Answer> =>
      this.#toCoordinator(
        request.groupId,
        'JoinGroup',
        deadlineMs,
        (connection) =>
          callbackApi<Answer>((cb) =>
            joinGroupV9.api(
              connection,
              request.groupId,
              request.sessionTimeoutMs,
              request.rebalanceTimeoutMs,
              memberId,
              null,
              'consumer',
              [{ name: COOPERATIVE, metadata }],
              null,
              cb as never,
            ),
          ),
        this.#member(request.session),
      )
    let answer: Answer
    try {
      answer = await join(request.memberId)
    } catch (error) {
      // a new member is given its id with MEMBER_ID_REQUIRED, and joins again with it (KIP-394)
      const given = answerOf<Answer>(error)?.memberId
      if (!given || request.memberId !== '') throw error
      answer = await join(given)
    }
    return {
      memberId: answer.memberId,
      generationId: answer.generationId,
      leader: answer.leader,
      members: answer.members.map((m) => {
        const s = decodeConsumerProtocolSubscription(m.metadata)
        return {
          memberId: m.memberId,
          topics: s.topics,
          owned: s.ownedPartitions.map((o) => ({ topic: o.topic, partitions: [...o.partitions] })),
          generationId: s.generationId,
        }
      }),
    }
  }

  async classicSync(request: ClassicSync, deadlineMs: number): Promise<TopicPartitions[]> {
    const assignments = request.assignments.map((a) => ({
      memberId: a.memberId,
      assignment: encodeConsumerProtocolAssignment({
        version: SUBSCRIPTION_VERSION,
        assignedPartitions: a.partitions.map((p) => ({ topic: p.topic, partitions: [...p.partitions] })),
        userData: null,
      } as never),
    }))
    const answer = await this.#toCoordinator(
      request.groupId,
      'SyncGroup',
      deadlineMs,
      (connection) =>
        callbackApi<Awaited<ReturnType<typeof syncGroupV5.api.async>>>((cb) =>
          syncGroupV5.api(
            connection,
            request.groupId,
            request.generationId,
            request.memberId,
            null,
            'consumer',
            COOPERATIVE,
            assignments,
            cb as never,
          ),
        ),
      this.#member(request.session),
    )
    return decodeConsumerProtocolAssignment(answer.assignment).assignedPartitions.map((t) => ({
      topic: t.topic,
      partitions: [...t.partitions].sort((a, b) => a - b),
    }))
  }

  async classicHeartbeat(
    request: ClassicMember & { readonly generationId: number },
    deadlineMs: number,
  ): Promise<void> {
    await this.#toCoordinator(
      request.groupId,
      'Heartbeat',
      deadlineMs,
      (connection) =>
        callbackApi((cb) =>
          heartbeatV4.api(
            connection,
            request.groupId,
            request.generationId,
            request.memberId,
            null,
            cb as never,
          ),
        ),
      this.#member(request.session),
    )
  }

  async classicLeave(request: ClassicMember, deadlineMs: number): Promise<void> {
    try {
      await this.#toCoordinator(
        request.groupId,
        'LeaveGroup',
        deadlineMs,
        (connection) =>
          callbackApi((cb) =>
            leaveGroupV5.api(
              connection,
              request.groupId,
              [{ memberId: request.memberId, groupInstanceId: null, reason: 'the consumer closed' }],
              cb as never,
            ),
          ),
        this.#member(request.session),
      )
    } finally {
      const client = this.#members.get(request.session)
      this.#members.delete(request.session)
      await client?.close().catch(() => undefined)
    }
  }

  async fetch(request: FetchRequest, deadlineMs: number): Promise<FetchedPartition[]> {
    let client = this.#sessions.get(request.session)
    if (!client) {
      client = this.#fetchClient(request.session)
      this.#sessions.set(request.session, client)
    }
    const byTopic = new Map<
      string,
      {
        topicId: string
        partitions: {
          partition: number
          currentLeaderEpoch: number
          fetchOffset: bigint
          lastFetchedEpoch: number
          partitionMaxBytes: number
        }[]
      }
    >()
    const wanted = new Map<string, bigint>()
    for (const p of request.partitions) {
      const topicId = await this.#topicId(p.topic)
      if (!topicId)
        throw new SpillwayError('SPW_ERR_TOPIC_MISSING', `topic ${p.topic} does not exist`, {
          details: { topic: p.topic },
        })
      let entry = byTopic.get(p.topic)
      if (!entry) {
        entry = { topicId, partitions: [] }
        byTopic.set(p.topic, entry)
      }
      entry.partitions.push({
        partition: p.partition,
        currentLeaderEpoch: -1,
        fetchOffset: p.offset,
        lastFetchedEpoch: -1,
        partitionMaxBytes: p.maxBytes,
      })
      wanted.set(`${p.topic}\u0000${p.partition}`, p.offset)
    }
    type Response = Awaited<ReturnType<FetchClient['fetch']>>
    let response: Response
    try {
      response = await withDeadline(
        client.fetch({
          node: request.broker,
          topics: [...byTopic.values()],
          maxWaitTime: request.maxWaitMs,
          minBytes: request.minBytes,
          maxBytes: request.maxBytes,
        }),
        deadlineMs,
        'Fetch',
      )
    } catch (error) {
      const answered = answerOf<Response>(error)
      if (!answered) throw toSpillwayError(error, 'Fetch')
      response = answered
    }
    const out: FetchedPartition[] = []
    for (const t of response.responses) {
      const topic = this.#names.get(t.topicId) ?? t.topicId
      for (const p of t.partitions) {
        const from = wanted.get(`${topic}\u0000${p.partitionIndex}`) ?? 0n
        out.push(fetchedPartition(topic, p, from))
      }
    }
    return out
  }

  async endSession(session: string): Promise<void> {
    const client = this.#sessions.get(session)
    this.#sessions.delete(session)
    await client?.close(true).catch(() => undefined)
  }

  async close(): Promise<void> {
    const clients = [...this.#sessions.values()]
    const members = [...this.#members.values()]
    this.#sessions.clear()
    this.#members.clear()
    await Promise.allSettled([...clients.map((c) => c.close(true)), ...members.map((c) => c.close())])
  }
}

/** What OffsetCommit and TxnOffsetCommit answer: an error code per partition. */
interface CommitAnswer {
  readonly topics: readonly {
    readonly name: string
    readonly partitions: readonly { readonly partitionIndex: number; readonly errorCode: number }[]
  }[]
}

/** Each partition's outcome in an OffsetCommit or TxnOffsetCommit answer. */
function commitResults(topics: CommitAnswer['topics']): CommitResult[] {
  return topics.flatMap((t) =>
    t.partitions.map((p) => ({
      topic: t.name,
      partition: p.partitionIndex,
      error: p.errorCode === 0 ? null : (protocolErrorsCodesById[p.errorCode] ?? `ERROR_${p.errorCode}`),
    })),
  )
}

/** Offsets to commit, grouped by topic the way OffsetCommit and TxnOffsetCommit take them. */
export function offsetTopics(offsets: CommitRequest['offsets']): {
  name: string
  partitions: {
    partitionIndex: number
    committedOffset: bigint
    committedLeaderEpoch: number
    committedMetadata: string
  }[]
}[] {
  const topics = new Map<string, ReturnType<typeof offsetTopics>[number]>()
  for (const o of offsets) {
    let t = topics.get(o.topic)
    if (!t) {
      t = { name: o.topic, partitions: [] }
      topics.set(o.topic, t)
    }
    t.partitions.push({
      partitionIndex: o.partition,
      committedOffset: o.offset,
      committedLeaderEpoch: -1,
      committedMetadata: o.metadata,
    })
  }
  return [...topics.values()]
}

/** The broker's answer carried by a client error whose only fault is per-partition error codes. */
export function answerOf<T>(error: unknown): T | undefined {
  let e = error as { response?: unknown; code?: string; cause?: unknown } | undefined
  for (let depth = 0; e && typeof e === 'object' && depth < 4; depth++) {
    if (e.code === 'PLT_KFK_RESPONSE' && e.response) return e.response as T
    e = e.cause as typeof e
  }
  return undefined
}

interface RawPartition {
  partitionIndex: number
  errorCode: number
  highWatermark: bigint
  logStartOffset: bigint
  records?: RecordsBatch[] | null
}

/** The last header name decoded, kept: records mostly carry the same few names (spillway-id above all). */
let lastName: { bytes: Buffer; text: string } | undefined

/** A header name's text, without a new string when it is the name decoded last. */
function headerName(bytes: Buffer): string {
  if (lastName?.bytes.equals(bytes)) return lastName.text
  const text = bytes.toString('utf8')
  // a copy: the name must not hold the whole fetch answer it was read from
  lastName = { bytes: Buffer.from(bytes), text }
  return text
}

/** One partition of a Fetch answer in spillway's terms: user records from `from` on. */
export function fetchedPartition(topic: string, p: RawPartition, from: bigint): FetchedPartition {
  const records: FetchedRecord[] = []
  let bytes = 0
  let largestBatch = 0
  const batchSizes: number[] = []
  let nextOffset = from
  for (const batch of p.records ?? []) {
    const size = batch.length + BATCH_LOG_OVERHEAD
    bytes += size
    largestBatch = Math.max(largestBatch, size)
    batchSizes.push(size)
    const end = batch.firstOffset + BigInt(batch.lastOffsetDelta) + 1n
    if (end > nextOffset) nextOffset = end
    if ((batch.attributes & CONTROL_BATCH) !== 0) continue
    for (const r of batch.records) {
      const offset = batch.firstOffset + BigInt(r.offsetDelta)
      // a compressed batch starts before the offset asked for: its earlier records were seen already
      if (offset < from) continue
      let size = (r.key?.length ?? 0) + (r.value?.length ?? 0)
      const headers: [string, Buffer][] = []
      for (const [k, v] of r.headers) {
        const name = k ? headerName(k) : ''
        const value = v ?? Buffer.alloc(0)
        size += name.length + value.length
        headers.push([name, value])
      }
      records.push({
        offset,
        timestamp: Number(batch.firstTimestamp + r.timestampDelta),
        key: r.key,
        value: r.value,
        headers,
        size,
      })
    }
  }
  return {
    topic,
    partition: p.partitionIndex,
    error: p.errorCode === 0 ? null : (protocolErrorsCodesById[p.errorCode] ?? `ERROR_${p.errorCode}`),
    highWatermark: p.highWatermark,
    logStartOffset: p.logStartOffset,
    records,
    bytes,
    largestBatch,
    batchSizes,
    nextOffset,
  }
}
