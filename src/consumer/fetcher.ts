/**
 * The fetch loop: at most one fetch in flight per broker, carrying only that broker's partitions that
 * have buffer credit and are not paused (FetchPlan), in an order that rotates after every response. A
 * broker with nothing to ask for waits for a wake-up (a buffer drained, a partition assigned) instead of
 * polling. Per-partition errors are handled per partition: a moved leader refreshes metadata, an offset
 * out of range restarts the partition where `from` says, an unknown topic or a denied one is reported
 * and tried again with back-off; none of them holds the other partitions back.
 */
import { channel } from '../channels.ts'
import { asSpillwayError, SpillwayError } from '../errors.ts'
import type { AdminFacet, FetchedPartition, GroupFacet } from '../transport/cluster.ts'
import type { FetchPlan } from './fetch-plan.ts'
import type { StartFrom } from './options.ts'
import type { PartitionWork } from './partition.ts'

export interface FetcherOptions {
  readonly session: string
  readonly topics: readonly string[]
  readonly maxWaitMs: number
  readonly requestTimeoutMs: number
  readonly from: StartFrom
}

export interface FetcherDeps {
  readonly group: GroupFacet
  readonly admin: AdminFacet
  readonly plan: FetchPlan
  /** The partitions owned now, by key. */
  readonly partitions: () => ReadonlyMap<string, PartitionWork>
  /** A fetch brought records (or moved the partition's position) for an owned partition. */
  readonly deliver: (work: PartitionWork, fetched: FetchedPartition) => void
  /** A failure, or its end (undefined), for the status stream. */
  readonly trouble: (error: SpillwayError | undefined, what: string) => void
}

const fetchChannel = channel('spillway:consumer:fetch')
/** The longest a fetch waits at the broker while a partition of that broker waits for buffer credit. */
const STARVED_WAIT_MS = 20

const LEADER_MOVED = new Set([
  'NOT_LEADER_OR_FOLLOWER',
  'LEADER_NOT_AVAILABLE',
  'FENCED_LEADER_EPOCH',
  'UNKNOWN_LEADER_EPOCH',
  'REPLICA_NOT_AVAILABLE',
  'KAFKA_STORAGE_ERROR',
])
const TOPIC_GONE = new Set(['UNKNOWN_TOPIC_OR_PARTITION', 'UNKNOWN_TOPIC_ID', 'INCONSISTENT_TOPIC_ID'])

/** Where a partition starts when it has no committed offset, or its offset is out of range. */
export async function startOffset(
  admin: AdminFacet,
  topic: string,
  partition: number,
  from: StartFrom,
  timeoutMs: number,
): Promise<bigint> {
  const timestamp = from === 'beginning' ? -2n : from === 'end' ? -1n : BigInt(from.timestamp)
  const [listed] = await admin.listOffsets([{ topic, partition, timestamp }], timeoutMs)
  if (listed && listed.offset >= 0n) return listed.offset
  // no record at or after the time: start at the end
  const [end] = await admin.listOffsets([{ topic, partition, timestamp: -1n }], timeoutMs)
  return end?.offset ?? 0n
}

export class Fetcher {
  readonly #deps: FetcherDeps
  readonly #options: FetcherOptions
  /** Leader per partition key. */
  #leaders = new Map<string, number>()
  #leadersStale = true
  readonly #loops = new Map<number, Promise<void>>()
  #wake: (() => void)[] = []
  #stopped = false
  #refreshing: Promise<void> | undefined
  fetches = 0
  fetchedRecords = 0
  fetchedBytes = 0

  constructor(deps: FetcherDeps, options: FetcherOptions) {
    this.#deps = deps
    this.#options = options
  }

  /** Partitions were assigned or revoked: loops look again, and brokers without one get one. */
  wake(): void {
    this.nudge()
    this.#ensureLoops()
  }

  /** A buffer drained: idle loops look again. Cheap enough to call for every record done. */
  nudge(): void {
    if (this.#wake.length === 0) return
    const waiters = this.#wake
    this.#wake = []
    for (const w of waiters) w()
  }

  /** The partitions' leaders may have changed: ask the cluster before the next fetch. */
  refreshLeaders(): void {
    this.#leadersStale = true
    this.wake()
  }

  #ensureLoops(): void {
    if (this.#stopped) return
    if (this.#leadersStale || this.#missingLeader()) {
      this.#refreshing ??= this.#refresh().finally(() => {
        this.#refreshing = undefined
        this.#ensureLoops()
      })
      return
    }
    for (const broker of new Set(this.#leaders.values())) {
      if (broker < 0 || this.#loops.has(broker)) continue
      this.#loops.set(
        broker,
        this.#loop(broker).finally(() => {
          this.#loops.delete(broker)
          this.#ensureLoops()
        }),
      )
    }
  }

  #missingLeader(): boolean {
    for (const key of this.#deps.partitions().keys()) if (!this.#leaders.has(key)) return true
    return false
  }

  async #refresh(): Promise<void> {
    for (let attempt = 1; !this.#stopped; attempt++) {
      try {
        const snapshot = await this.#deps.admin.metadata(this.#options.topics, this.#options.requestTimeoutMs)
        const leaders = new Map<string, number>()
        for (const t of snapshot.topics)
          for (const p of t.partitions) leaders.set(`${t.name}\u0000${p.partition}`, p.leader)
        this.#leaders = leaders
        this.#leadersStale = false
        this.#deps.trouble(undefined, 'metadata')
        const missing = [...this.#deps.partitions().values()].filter((w) => !leaders.has(w.key))
        if (missing.length === 0) return
        const topics = [...new Set(missing.map((w) => w.topic))]
        this.#deps.trouble(
          new SpillwayError(
            'SPW_ERR_TOPIC_MISSING',
            `no leader known for partitions of ${topics.join(', ')}`,
            { details: { topics } },
          ),
          'metadata',
        )
      } catch (error) {
        this.#deps.trouble(asSpillwayError(error), 'metadata')
      }
      await this.#pause(Math.min(200 * 2 ** Math.min(attempt, 5), 5000))
    }
  }

  /** Waits `ms` or until woken; true when the time ran out. */
  #pause(ms: number): Promise<boolean> {
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(true), ms)
      this.#wake.push(() => {
        clearTimeout(timer)
        resolve(false)
      })
    })
  }

  #idle(): Promise<void> {
    return new Promise((resolve) => this.#wake.push(resolve))
  }

  async #loop(broker: number): Promise<void> {
    let failures = 0
    while (!this.#stopped && !this.#leadersStale) {
      const owned = this.#deps.partitions()
      const wanted = this.#deps.plan
        .next((p) => {
          const k = `${p.topic}\u0000${p.partition}`
          const work = owned.get(k)
          return (
            this.#leaders.get(k) === broker && work !== undefined && !work.stopping && work.nextOffset >= 0n
          )
        })
        .map((p) => {
          const work = owned.get(`${p.topic}\u0000${p.partition}`) as PartitionWork
          return {
            work,
            topic: p.topic,
            partition: p.partition,
            offset: work.nextOffset,
            maxBytes: p.maxBytes,
          }
        })
      if (wanted.length === 0) {
        if (![...this.#leaders.values()].includes(broker)) return
        await this.#idle()
        continue
      }
      // A partition with records waiting at the broker but no buffer credit must not wait behind a fetch
      // of partitions that have nothing: that fetch would sit out maxWaitMs at the broker (the incident).
      const behind = this.#deps.plan
        .starved((p) => this.#leaders.get(`${p.topic}\u0000${p.partition}`) === broker)
        .some((p) => {
          const work = owned.get(`${p.topic}\u0000${p.partition}`)
          return work !== undefined && work.highWatermark > work.nextOffset
        })
      const caughtUp = wanted.every(
        (w) => w.work.highWatermark >= 0n && w.work.nextOffset >= w.work.highWatermark,
      )
      // only caught-up partitions could be asked for: wait for the backlogged one's credit instead, and ask
      // the caught-up ones anyway after a whole wait, so their new records are not held back long
      if (behind && caughtUp && !(await this.#pause(this.#options.maxWaitMs))) continue
      const maxWaitMs = behind ? Math.min(this.#options.maxWaitMs, STARVED_WAIT_MS) : this.#options.maxWaitMs
      let answer: FetchedPartition[]
      try {
        answer = await this.#deps.group.fetch(
          {
            session: this.#options.session,
            broker,
            maxWaitMs,
            minBytes: 1,
            maxBytes: wanted.reduce((sum, w) => sum + w.maxBytes, 0),
            partitions: wanted.map(({ topic, partition, offset, maxBytes }) => ({
              topic,
              partition,
              offset,
              maxBytes,
            })),
          },
          this.#options.maxWaitMs + this.#options.requestTimeoutMs,
        )
        failures = 0
        this.#deps.trouble(undefined, 'fetch')
      } catch (error) {
        failures++
        const e = asSpillwayError(error)
        this.#deps.trouble(e, 'fetch')
        if (e.code === 'SPW_ERR_TOPIC_MISSING' || e.code === 'SPW_ERR_UNAVAILABLE') this.#leadersStale = true
        await this.#pause(Math.min(100 * 2 ** Math.min(failures, 6), 5000))
        continue
      }
      this.fetches++
      if (fetchChannel.hasSubscribers) {
        fetchChannel.publish({
          broker,
          partitions: wanted.length,
          records: answer.reduce((sum, p) => sum + p.records.length, 0),
          bytes: answer.reduce((sum, p) => sum + p.bytes, 0),
        })
      }
      for (const fetched of answer) {
        const request = wanted.find((w) => w.topic === fetched.topic && w.partition === fetched.partition)
        const work = request?.work
        // the partition was revoked, or moved on (a reset) while this fetch was out: its answer is stale
        if (!work || work.revoked || work.stopping || work.nextOffset !== request.offset) continue
        if (fetched.error !== null) {
          await this.#partitionError(work, fetched)
          continue
        }
        this.fetchedRecords += fetched.records.length
        this.fetchedBytes += fetched.bytes
        const bytes = fetched.records.reduce((sum, r) => sum + r.size, 0)
        // buffer credit is taken before the records reach the runner, which may give some back at once
        this.#deps.plan.received([
          { topic: fetched.topic, partition: fetched.partition, bytes, largestBatch: fetched.largestBatch },
        ])
        this.#deps.deliver(work, fetched)
      }
    }
  }

  async #partitionError(work: PartitionWork, fetched: FetchedPartition): Promise<void> {
    const error = fetched.error as string
    if (error === 'OFFSET_OUT_OF_RANGE') {
      // the records are gone (retention) or not there yet: start again where `from` says
      const position = work.nextOffset
      try {
        const reset = await startOffset(
          this.#deps.admin,
          work.topic,
          work.partition,
          position < fetched.logStartOffset ? 'beginning' : this.#options.from,
          this.#options.requestTimeoutMs,
        )
        if (!work.revoked && work.nextOffset === position) {
          // records retention deleted are gone for good: the watermark passes them
          if (reset > position) work.tracker.skip(position, reset)
          work.nextOffset = reset
        }
        this.#deps.trouble(
          new SpillwayError(
            'SPW_ERR_UNAVAILABLE',
            `${work.topic}[${work.partition}]: offset ${position} is out of range; reading on from ${reset}`,
          ),
          `offset:${work.key}`,
        )
      } catch (e) {
        this.#deps.trouble(asSpillwayError(e), `offset:${work.key}`)
      }
      return
    }
    if (LEADER_MOVED.has(error) || TOPIC_GONE.has(error)) {
      this.#leadersStale = true
      if (TOPIC_GONE.has(error)) {
        this.#deps.trouble(
          new SpillwayError('SPW_ERR_TOPIC_MISSING', `${work.topic}[${work.partition}]: ${error}`),
          `partition:${work.key}`,
        )
      }
      return
    }
    const code = error.endsWith('_AUTHORIZATION_FAILED') ? 'SPW_ERR_KAFKA_DENIED' : 'SPW_ERR_UNAVAILABLE'
    this.#deps.trouble(
      new SpillwayError(code, `${work.topic}[${work.partition}]: ${error}`),
      `partition:${work.key}`,
    )
    await this.#pause(1000)
  }

  /** Starts fetching for what is owned now. */
  start(): void {
    this.#ensureLoops()
  }

  /** Stops every loop after its fetch under way. */
  async stop(): Promise<void> {
    this.#stopped = true
    this.wake()
    await Promise.allSettled([...this.#loops.values(), this.#refreshing])
  }
}
