/**
 * Moves failed records on (to a retry tier, or to the dead-letter topic after the last one) so that each
 * source record makes at most one copy, whatever the network does: the copies and the consumer's offset
 * commit go in one Kafka transaction (KIP-98, with KIP-447's group-fenced offset commits).
 *
 * - Copies and commits are gathered into rounds, one transaction each: the copies asked for since the
 *   last round, and the commit point of every partition involved, computed as if the forwarded records
 *   were done (their source records count as done only once the transaction has committed).
 * - With retry tiers, every offset commit of the consumer goes through here, so no plain commit can race
 *   a transactional one for the same partition and move the group's offset back.
 * - A step that fails or times out ends the round: the producer is dropped, and the next one made with
 *   the same transactional id fences it and aborts what it left open (readers use read_committed, so an
 *   aborted copy is never seen). When the commit itself timed out, the group's offsets, read back once the
 *   transaction has ended, say whether it committed.
 * - A member that lost its partitions is refused by TxnOffsetCommit (its epoch is stale), which aborts the
 *   transaction: a zombie's copies never become visible.
 */
import { randomUUID } from 'node:crypto'
import { Producer } from '@platformatic/kafka'
import { SpillwayError } from '../../errors.ts'
import { sleep } from '../../sleep.ts'
import { withDeadline } from '../../transport/deadline.ts'
import { baseOptions, PlatformaticCluster } from '../../transport/platformatic.ts'
import type { KafkaConnectionOptions } from '../../transport/transport.ts'
import type { CommitPoint } from '../commit-tracker.ts'
import type { PartitionWork } from '../partition.ts'

/** One copy to write: where, and what. */
export interface Copy {
  readonly topic: string
  readonly partition: number
  readonly key: Buffer | null
  readonly value: Buffer | null
  readonly timestamp: number
  readonly headers: readonly (readonly [string, string])[]
}

export interface ForwarderDeps {
  readonly connection: KafkaConnectionOptions
  readonly groupId: string
  readonly transactionTimeoutMs: number
  readonly requestTimeoutMs: number
  /** The member's id and epoch now (the epoch fences a member that lost its partitions). */
  readonly member: () => { readonly memberId: string | undefined; readonly epoch: number }
  /** A record is done: called inside the round, once its copy and its offset have committed. */
  readonly onDone: (work: PartitionWork, offset: bigint) => void
}

interface Pending {
  readonly work: PartitionWork
  readonly offsets: readonly bigint[]
  readonly copies: readonly Copy[]
  readonly resolve: (done: boolean) => void
  readonly reject: (error: unknown) => void
}

interface CommitWaiter {
  readonly works: readonly PartitionWork[]
  readonly resolve: (outcome: CommitOutcome) => void
}

export interface CommitOutcome {
  /** Partitions committed. */
  readonly committed: number
  /** Partitions the group refused (stale epoch): error name → partitions. */
  readonly refused: ReadonlyMap<string, { topic: string; partition: number }[]>
  readonly error: SpillwayError | undefined
}

export interface ForwarderStats {
  readonly transactions: number
  readonly aborted: number
  readonly copies: number
}

/** Most bytes of copies per destination partition, and most moves, one transaction carries. */
const ROUND_MAX_PARTITION_BYTES = 640 * 1024
const ROUND_MAX_MOVES = 5000
/** Rounds of one move each after a round of several failed. */
const SOLO_ROUNDS = 20

/** Bytes of a move's copies per destination partition (record framing estimated). */
function copyBytes(copies: readonly Copy[]): Map<string, number> {
  const out = new Map<string, number>()
  for (const c of copies) {
    let n = (c.key?.length ?? 0) + (c.value?.length ?? 0) + 70
    for (const [k, v] of c.headers) n += k.length + v.length + 2
    const key = `${c.topic}\u0000${c.partition}`
    out.set(key, (out.get(key) ?? 0) + n)
  }
  return out
}

export class TransactionalForwarder {
  readonly #deps: ForwarderDeps
  readonly #transactionalId = `spillway-retry-${randomUUID()}`
  readonly #cluster: PlatformaticCluster
  #producer: Producer<Buffer, Buffer, Buffer, Buffer> | undefined
  #queue: Pending[] = []
  #waiters: CommitWaiter[] = []
  #running: Promise<void> | undefined
  readonly #abort = new AbortController()
  #closed = false
  #transactions = 0
  /** Rounds left that carry one move each (after a round of several failed). */
  #solo = 0
  #aborted = 0
  #copies = 0

  constructor(deps: ForwarderDeps) {
    this.#deps = deps
    this.#cluster = new PlatformaticCluster({ ...deps.connection, thread: 'main' })
  }

  stats(): ForwarderStats {
    return { transactions: this.#transactions, aborted: this.#aborted, copies: this.#copies }
  }

  /**
   * Writes `copies` and commits `work` as if `offsets` were done, in one transaction. Resolves true once
   * committed (the offsets are then done), false when the partition was revoked first; rejects when the
   * transaction failed (nothing of it is visible: try again).
   */
  forward(work: PartitionWork, offsets: readonly bigint[], copies: readonly Copy[]): Promise<boolean> {
    if (this.#closed) return Promise.resolve(false)
    return new Promise((resolve, reject) => {
      this.#queue.push({ work, offsets, copies, resolve, reject })
      this.#kick()
    })
  }

  /** Commits what is done on `works`, in a transaction of its own or with the next forwards. */
  commit(works: readonly PartitionWork[]): Promise<CommitOutcome> {
    return new Promise((resolve) => {
      this.#waiters.push({ works, resolve })
      this.#kick()
    })
  }

  #kick(): void {
    this.#running ??= (async () => {
      try {
        while (this.#queue.length > 0 || this.#waiters.length > 0) await this.#round()
      } finally {
        this.#running = undefined
      }
    })()
  }

  async #round(): Promise<void> {
    // each partition's share of a round stays under a broker's default batch limit (message.max.bytes,
    // 1 MiB); the rest waits for the next round
    let take = 0
    const perPartition = new Map<string, number>()
    // after a failed round, moves go one per round for a while: a move the cluster refuses for itself (a
    // copy over the topic's size limit) then fails alone instead of holding every other move back
    const most = this.#solo > 0 ? 1 : ROUND_MAX_MOVES
    if (this.#solo > 0) this.#solo--
    while (take < this.#queue.length && take < most) {
      const next = this.#queue[take] as Pending
      const sizes = copyBytes(next.copies)
      if (take > 0 && [...sizes].some(([k, n]) => (perPartition.get(k) ?? 0) + n > ROUND_MAX_PARTITION_BYTES))
        break
      for (const [k, n] of sizes) perPartition.set(k, (perPartition.get(k) ?? 0) + n)
      take++
    }
    const pending = this.#queue.splice(0, take)
    const waiters = this.#waiters.splice(0)
    const live: Pending[] = []
    for (const p of pending) {
      if (p.work.revoked) p.resolve(false)
      else live.push(p)
    }
    const extra = new Map<PartitionWork, bigint[]>()
    for (const p of live) extra.set(p.work, [...(extra.get(p.work) ?? []), ...p.offsets])
    const works = new Set<PartitionWork>([...extra.keys()])
    for (const w of waiters) for (const work of w.works) if (!work.revoked) works.add(work)
    const points: { work: PartitionWork; point: CommitPoint }[] = []
    for (const work of works) {
      const more = extra.get(work)
      const point = more ? work.tracker.commitPointWith(more) : work.tracker.commitPoint()
      if (point) points.push({ work, point })
    }
    const settle = (outcome: CommitOutcome): void => {
      for (const w of waiters) w.resolve(outcome)
    }
    if (points.length === 0) {
      settle({ committed: 0, refused: new Map(), error: undefined })
      return
    }
    const copies = live.flatMap((p) => p.copies)
    try {
      const refused = await this.#transaction(copies, points)
      if (refused.size > 0) {
        const error = new SpillwayError(
          'SPW_ERR_GROUP_FENCED',
          `the group refused the transaction's offsets (${[...refused.keys()].join(', ')}); it was aborted`,
        )
        for (const p of live) p.reject(error)
        settle({ committed: 0, refused, error })
        return
      }
    } catch (error) {
      const failure = asRetryError(error)
      if (live.length > 1) this.#solo = Math.min(live.length, SOLO_ROUNDS)
      for (const p of live) p.reject(failure)
      settle({ committed: 0, refused: new Map(), error: failure })
      // a failing cluster is not asked again at once: the callers come back after their back-off
      await sleep(Math.min(1000, this.#deps.requestTimeoutMs / 5), this.#abort.signal)
      return
    }
    for (const p of live) {
      for (const offset of p.offsets) this.#deps.onDone(p.work, offset)
    }
    for (const { work, point } of points) work.tracker.committed(point)
    for (const p of live) p.resolve(true)
    this.#copies += copies.length
    settle({ committed: points.length, refused: new Map(), error: undefined })
  }

  /** One transaction. Resolves with the partitions the group refused (then it was aborted). */
  async #transaction(
    copies: readonly Copy[],
    points: readonly { work: PartitionWork; point: CommitPoint }[],
  ): Promise<Map<string, { topic: string; partition: number }[]>> {
    const { memberId, epoch } = this.#deps.member()
    if (memberId === undefined || epoch <= 0)
      throw new SpillwayError('SPW_ERR_GROUP_FENCED', 'not a member of the group at the moment')
    const deadline = this.#deps.requestTimeoutMs
    const offsets = points.map(({ work, point }) => ({
      topic: work.topic,
      partition: work.partition,
      offset: point.offset,
      metadata: point.metadata,
    }))
    this.#producer ??= this.#newProducer()
    const producer = this.#producer
    this.#transactions++
    let transaction: Awaited<ReturnType<typeof producer.beginTransaction>>
    const refused = new Map<string, { topic: string; partition: number }[]>()
    try {
      transaction = await withDeadline(producer.beginTransaction(), deadline, 'InitProducerId')
      if (copies.length > 0) {
        await withDeadline(
          transaction.send({
            messages: copies.map((c) => ({
              topic: c.topic,
              partition: c.partition,
              ...(c.key ? { key: c.key } : {}),
              ...(c.value ? { value: c.value } : {}),
              timestamp: BigInt(c.timestamp),
              headers: new Map(c.headers.map(([k, v]) => [Buffer.from(k), Buffer.from(v)])),
            })) as never,
          }),
          deadline,
          'Produce',
        )
      }
      await withDeadline(
        transaction.addConsumer({ groupId: this.#deps.groupId } as never),
        deadline,
        'AddOffsetsToTxn',
      )
      const results = await this.#cluster.group.commitInTransaction(
        {
          groupId: this.#deps.groupId,
          memberId,
          memberEpoch: epoch,
          offsets,
          transactionalId: this.#transactionalId,
          producerId: producer.producerId as bigint,
          producerEpoch: producer.producerEpoch as number,
        },
        deadline,
      )
      for (const r of results) {
        if (r.error === null) continue
        refused.set(r.error, [...(refused.get(r.error) ?? []), { topic: r.topic, partition: r.partition }])
      }
      if (refused.size > 0) {
        this.#aborted++
        await withDeadline(transaction.abort(), deadline, 'EndTxn')
        return refused
      }
    } catch (error) {
      this.#aborted++
      await this.#drop()
      throw error
    }
    try {
      await withDeadline(transaction.commit(), deadline, 'EndTxn')
      return refused
    } catch (error) {
      // the commit may have happened: end the transaction for sure, then read what the group holds
      await this.#drop()
      if (await this.#landed(offsets)) return refused
      this.#aborted++
      throw error
    }
  }

  /**
   * After an EndTxn whose answer was lost: a new producer with the same transactional id completes or
   * aborts the transaction, and the group's stable offsets then show which it was.
   */
  async #landed(offsets: readonly { topic: string; partition: number; offset: bigint; metadata: string }[]) {
    const deadline = this.#deps.requestTimeoutMs
    for (let attempt = 0; attempt < 5 && !this.#closed; attempt++) {
      try {
        // InitProducerId under the transactional id: the transaction left open is completed or aborted
        this.#producer = this.#newProducer()
        const opened = await withDeadline(this.#producer.beginTransaction(), deadline, 'InitProducerId')
        await opened.cancel()
        const committed = await this.#cluster.admin.committedOffsets([this.#deps.groupId], deadline, true)
        return offsets.every((o) =>
          committed.some(
            (c) =>
              c.topic === o.topic &&
              c.partition === o.partition &&
              c.offset === o.offset &&
              (c.metadata ?? '') === o.metadata,
          ),
        )
      } catch {
        await this.#drop()
        await sleep(200 * 2 ** attempt, this.#abort.signal)
      }
    }
    return false
  }

  #newProducer(): Producer<Buffer, Buffer, Buffer, Buffer> {
    return new Producer<Buffer, Buffer, Buffer, Buffer>({
      ...baseOptions(this.#deps.connection),
      clientId: `${this.#deps.connection.clientId}-retry`,
      transactionalId: this.#transactionalId,
      idempotent: true,
      // InitProducerId as a new producer asks (-1, -1): the coordinator fences the last one with this
      // transactional id and aborts what it left open (the client would send 0, 0, which it refuses)
      producerId: -1n,
      producerEpoch: -1,
      // the client hands this to InitProducerId as the transaction timeout too
      timeout: this.#deps.transactionTimeoutMs,
    } as unknown as ConstructorParameters<typeof Producer<Buffer, Buffer, Buffer, Buffer>>[0])
  }

  /** Forgets the producer: the next one fences it and aborts the transaction it left open. */
  async #drop(): Promise<void> {
    const producer = this.#producer
    this.#producer = undefined
    await producer?.close(true).catch(() => undefined)
  }

  /** Creates the tier topics that are missing, each with its source topic's partition count. */
  async ensureTopics(topics: readonly { name: string; partitions: number }[]): Promise<void> {
    await this.#cluster.admin.createTopics(topics, this.#deps.requestTimeoutMs)
  }

  async close(): Promise<void> {
    this.#closed = true
    this.#abort.abort()
    await this.#running?.catch(() => undefined)
    await this.#drop()
    await this.#cluster.close()
  }
}

function asRetryError(error: unknown): SpillwayError {
  if (
    error instanceof SpillwayError &&
    error.code !== 'SPW_ERR_TIMEOUT' &&
    error.code !== 'SPW_ERR_UNAVAILABLE'
  )
    return error
  return new SpillwayError(
    'SPW_ERR_RETRY_TRANSACTION',
    `forwarding transaction failed: ${error instanceof Error ? error.message : String(error)}`,
    { cause: error },
  )
}
