/**
 * The consumer: membership (membership.ts) decides which partitions this process owns, the fetcher
 * (fetcher.ts) fills each owned partition's buffer within its byte budget (fetch-plan.ts), the runner
 * (runner.ts) hands records to the handler by lane (key-executor.ts), and commits (commit-tracker.ts)
 * carry the contiguous done prefix plus the done offsets beyond it in their metadata.
 *
 * Lifecycle: created → starting → running → closing → closed. close() stops fetching, drops what has
 * not started, gives running handlers up to closeTimeoutMs, commits what is done and leaves the group.
 */
import { EventEmitter, on } from 'node:events'
import { channel } from '../channels.ts'
import { asSpillwayError, type SpillwayError } from '../errors.ts'
import { StateMachine } from '../state-machine.ts'
import type { Registry } from '../telemetry/metrics.ts'
import type { FetchedPartition } from '../transport/cluster.ts'
import { acquireCluster, type ClusterLease } from '../transport/registry.ts'
import { ClassicMembership } from './classic-membership.ts'
import { ConsumerDeadLetters } from './dead-letters.ts'
import { type DedupeStore, DedupeWindow } from './dedupe.ts'
import { FallbackMembership } from './fallback-membership.ts'
import { FetchPlan } from './fetch-plan.ts'
import { Fetcher, startOffset } from './fetcher.ts'
import { KeyExecutor } from './key-executor.ts'
import {
  existingTopics,
  GroupMembership,
  type Membership,
  type MembershipHandlers,
  type PartitionRef,
  StaticAssignment,
} from './membership.ts'
import { type ConsumerMetrics, registerConsumerMetrics } from './metrics.ts'
import { type ConsumerOptions, type ResolvedConsumerOptions, resolveConsumerOptions } from './options.ts'
import { PartitionWork } from './partition.ts'
import { DueGate } from './retry/due-gate.ts'
import { TransactionalForwarder } from './retry/forwarder.ts'
import { RetryRouter } from './retry/router.ts'
import { Runner, type RunnerCounters } from './runner.ts'
import type { ConsumerState, ConsumerStats, ConsumerStatus, PartitionStats } from './types.ts'

const LIFECYCLE: Readonly<Record<ConsumerState, readonly ConsumerState[]>> = {
  created: ['starting', 'closing'],
  starting: ['running', 'closing'],
  running: ['closing'],
  closing: ['closed'],
  closed: [],
}

/** Past this share of the commit metadata's room, a partition fetches no more until its watermark moves. */
const METADATA_PRESSURE_PAUSE = 0.75
const METADATA_PRESSURE_RESUME = 0.5

let sessions = 0

const commitChannel = channel('spillway:consumer:commit')
const rebalanceChannel = channel('spillway:consumer:rebalance')
const recordErrorChannel = channel('spillway:consumer:record-error')

export class SpillwayConsumer<T = Buffer | null> extends EventEmitter<{ status: [ConsumerStatus] }> {
  readonly options: ResolvedConsumerOptions<T>
  readonly lifecycle = new StateMachine<ConsumerState>('consumer', 'created', LIFECYCLE)
  readonly #lease: ClusterLease
  readonly #plan: FetchPlan
  readonly #executor: KeyExecutor
  readonly #runner: Runner<T>
  readonly #fetcher: Fetcher
  readonly #membership: Membership
  readonly #deadLetters: ConsumerDeadLetters
  readonly #session = `c${process.pid}-${++sessions}`
  readonly #partitions = new Map<string, PartitionWork>()
  readonly #counters: RunnerCounters = {
    handled: 0,
    failed: 0,
    retried: 0,
    skipped: 0,
    deadLettered: 0,
    duplicates: 0,
    coalesced: 0,
    alreadyDone: 0,
    handlerTimeouts: 0,
    handlerCalls: 0,
    dropped: 0,
    tiered: 0,
    blockedBehind: 0,
  }
  #commits = 0
  #deliveries = 0
  #topicsChecked = Number.NEGATIVE_INFINITY
  #commitsRefused = 0
  #rebalances = 0
  #abandoned = 0
  #committing: Promise<void> | undefined
  #commitTimer: NodeJS.Timeout | undefined
  #watchTimer: NodeJS.Timeout | undefined
  readonly #troubles = new Map<string, string>()
  readonly #sizes = new Map<string, { count: number; bytes: number; max: number; warned: boolean }>()
  readonly #metrics: ConsumerMetrics | undefined
  #closing: Promise<void> | undefined
  /** With retry tiers: where failed records go, the transactions that move them, and the tiers' delays. */
  readonly #router: RetryRouter | undefined
  readonly #forwarder: TransactionalForwarder | undefined
  readonly #gate: DueGate
  #tiersReady = false

  constructor(
    options: ResolvedConsumerOptions<T>,
    registry?: Registry,
    metricLabels?: Readonly<Record<string, string>>,
  ) {
    super()
    this.options = options
    this.#lease = acquireCluster(
      {
        brokers: options.brokers,
        clientId: options.clientId,
        ...(options.tls ? { tls: options.tls } : {}),
        ...(options.sasl ? { sasl: options.sasl } : {}),
        requestTimeoutMs: options.requestTimeoutMs,
        metadataMaxAgeMs: options.metadataMaxAgeMs,
        thread: options.transportThread,
      },
      // a consumer's connections go when it closes (a lease held by a producer keeps them)
      { purpose: 'consumer', lingerMs: 0 },
    )
    const cluster = this.#lease.cluster
    this.#plan = new FetchPlan({
      maxBufferedBytes: options.maxBufferedBytes,
      minPartitionFetchBytes: options.minPartitionFetchBytes,
      maxPartitionFetchBytes: options.maxPartitionFetchBytes,
    })
    this.#executor = new KeyExecutor(options.concurrency)
    this.#deadLetters = new ConsumerDeadLetters(options, options.deadLetterTopics, options.groupId)
    const dedupe: DedupeStore | undefined =
      options.dedupe === false
        ? undefined
        : (options.dedupe.store ??
          new DedupeWindow({
            maxIds: options.dedupe.window,
            maxBytes: options.dedupe.maxBytes,
            ttlMs: options.dedupe.ttlMs,
          }))
    if (options.retry && options.groupId) {
      const retryConnection = options.retry.connection ?? options
      this.#forwarder = new TransactionalForwarder({
        connection: {
          brokers: retryConnection.brokers,
          clientId: retryConnection.clientId,
          ...(retryConnection.tls ? { tls: retryConnection.tls } : {}),
          ...(retryConnection.sasl ? { sasl: retryConnection.sasl } : {}),
          requestTimeoutMs: options.requestTimeoutMs,
        },
        groupId: options.groupId,
        transactionTimeoutMs: options.retry.transactionTimeoutMs,
        requestTimeoutMs: options.requestTimeoutMs,
        member: () => ({ memberId: this.#membership.memberId, epoch: this.#membership.epoch }),
        onDone: (work, offset) => this.#done(work, offset),
      })
      this.#router = new RetryRouter({
        retry: options.retry,
        sources: options.topics,
        deadLetterRoutes: options.deadLetterTopics,
        groupId: options.groupId,
        forwarder: this.#forwarder,
        partitions: (topic) => cluster.admin.partitions(topic, options.requestTimeoutMs),
      })
    }
    this.#gate = new DueGate(
      (work, records) => {
        if (!work.revoked) this.#runner.submit(work, records)
      },
      (work, holding) => {
        work.holding = holding
        this.#plan.pause(work.topic, work.partition, work.paused || work.holding)
        if (!holding) this.#fetcher.nudge()
      },
    )
    const topics = this.#router?.topics ?? options.topics
    this.#runner = new Runner<T>({
      options,
      executor: this.#executor,
      dedupe,
      retry: this.#router,
      deadLetter: (records, error, code) => this.#deadLetters.write(records, error, code),
      onDone: (work, offset) => this.#done(work, offset),
      status: (status) => this.#emit(status),
      counters: this.#counters,
    })
    this.#fetcher = new Fetcher(
      {
        group: cluster.group,
        admin: cluster.admin,
        plan: this.#plan,
        partitions: () => this.#partitions,
        deliver: (work, fetched) => this.#deliver(work, fetched),
        trouble: (error, what) => this.#trouble(error, what),
      },
      {
        session: this.#session,
        topics,
        maxWaitMs: options.maxWaitMs,
        requestTimeoutMs: options.requestTimeoutMs,
        from: options.from,
      },
    )
    const handlers = {
      assigned: (partitions: readonly PartitionRef[], epoch: number) => this.#assigned(partitions, epoch),
      revoked: (partitions: readonly PartitionRef[], lost: boolean) => this.#revoked(partitions, lost),
      trouble: (error: SpillwayError | undefined) => this.#trouble(error, 'group'),
    }
    this.#membership = options.groupId
      ? this.#groupMembership(options.groupId, topics, handlers)
      : new StaticAssignment(cluster.admin, options.topics, options.requestTimeoutMs, handlers)
    this.lifecycle.on('transition', (t) =>
      this.#emit({ type: 'lifecycle', from: t.from, to: t.to, reason: t.reason }),
    )
    this.#metrics = registry
      ? registerConsumerMetrics(registry, () => this.stats(), metricLabels ?? {})
      : undefined
  }

  #protocol(): 'consumer' | 'classic' | null {
    const m = this.#membership
    if (m instanceof FallbackMembership) return m.protocol
    if (m instanceof ClassicMembership) return 'classic'
    return m instanceof GroupMembership ? 'consumer' : null
  }

  /** KIP-848, the classic protocol, or KIP-848 falling back to the classic one ('auto'). */
  #groupMembership(groupId: string, topics: readonly string[], handlers: MembershipHandlers): Membership {
    const options = this.options
    const cluster = this.#lease.cluster
    const modern = (h: MembershipHandlers): Membership =>
      new GroupMembership(
        cluster.group,
        {
          groupId,
          topics,
          // retry.blockKey keeps a key's block in the process that owns its partition number: the range
          // assignor gives one member the same partition of the source and of every tier
          ...(options.retry?.blockKey ? { serverAssignor: 'range' } : {}),
          rebalanceTimeoutMs: options.rebalanceTimeoutMs,
          requestTimeoutMs: options.requestTimeoutMs,
        },
        h,
      )
    const classic = (h: MembershipHandlers): Membership =>
      new ClassicMembership(
        cluster.group,
        cluster.admin,
        {
          session: this.#session,
          groupId,
          topics,
          rebalanceTimeoutMs: options.rebalanceTimeoutMs,
          requestTimeoutMs: options.requestTimeoutMs,
          sessionTimeoutMs: options.sessionTimeoutMs,
        },
        h,
      )
    if (options.groupProtocol === 'consumer') return modern(handlers)
    if (options.groupProtocol === 'classic') return classic(handlers)
    return new FallbackMembership(modern, classic, handlers)
  }

  #emit(status: ConsumerStatus): void {
    if (status.type === 'record-error' && recordErrorChannel.hasSubscribers) {
      const { topic, partition, offset, id, code, action } = status
      recordErrorChannel.publish({ topic, partition, offset, id, code, action })
    }
    if ((status.type === 'assigned' || status.type === 'revoked') && rebalanceChannel.hasSubscribers) {
      rebalanceChannel.publish({
        change: status.type === 'assigned' ? 'assigned' : status.lost ? 'lost' : 'revoked',
        partitions: status.partitions,
        epoch: this.#membership.epoch,
      })
    }
    this.emit('status', status)
  }

  /** The member epoch (KIP-848) this consumer is at; 0 before it joins and without a group. */
  get memberEpoch(): number {
    return this.#membership.epoch
  }

  /** Joins (or, without a group, takes every partition) and starts consuming. Resolves once started. */
  async run(): Promise<void> {
    const refused = this.lifecycle.refusal('run()', ['created'], 'SPW_ERR_CLOSED')
    if (refused) throw refused
    this.lifecycle.transitionTo('starting', 'run()')
    // the tiers exist before the group is joined, so the first assignment already includes them
    if (this.#router) await this.#ensureTiers()
    this.#membership.start()
    this.#fetcher.start()
    this.#commitTimer = setInterval(() => void this.commit(), this.options.commitIntervalMs)
    this.#watchTimer = setInterval(() => this.#watch(), Math.min(1000, this.options.stallAlarmMs / 2))
    this.lifecycle.transitionTo('running', 'started')
  }

  // ---- assignment --------------------------------------------------------------------------------

  async #assigned(partitions: readonly PartitionRef[], epoch: number): Promise<void> {
    this.#rebalances++
    const { groupId, requestTimeoutMs, from } = this.options
    const cluster = this.#lease.cluster
    for (let attempt = 1; ; attempt++) {
      try {
        const committed = new Map<string, { offset: bigint; metadata: string | null }>()
        if (groupId && !this.options.offsetStore) {
          // with retry tiers, offsets a forwarding transaction has not ended yet are waited out (KIP-447)
          const stable = this.#forwarder !== undefined
          for (const c of await cluster.admin.committedOffsets([groupId], requestTimeoutMs, stable)) {
            if (c.offset >= 0n)
              committed.set(`${c.topic}\u0000${c.partition}`, { offset: c.offset, metadata: c.metadata })
          }
        }
        // offsets kept beside a sink's writes are the truth for what it has written
        const stored = new Map<string, bigint>()
        if (this.options.offsetStore)
          for (const o of await this.options.offsetStore.load(partitions.map((p) => ({ ...p }))))
            stored.set(`${o.topic}\u0000${o.partition}`, o.offset)
        const works: PartitionWork[] = []
        for (const p of partitions) {
          const key = `${p.topic}\u0000${p.partition}`
          const own = stored.get(key)
          // with a store, a partition it has no offset for starts at `from`: the store is the whole truth
          const found = this.options.offsetStore ? undefined : committed.get(key)
          const offset =
            own ??
            found?.offset ??
            (await startOffset(cluster.admin, p.topic, p.partition, from, requestTimeoutMs))
          works.push(new PartitionWork(p.topic, p.partition, offset, found?.metadata ?? null, epoch))
        }
        for (const w of works) this.#partitions.set(w.key, w)
        this.#plan.assign([...this.#partitions.values()])
        this.#trouble(undefined, 'offsets')
        this.#emit({ type: 'assigned', partitions: partitions.map((p) => ({ ...p })), epoch })
        this.#fetcher.wake()
        return
      } catch (error) {
        this.#trouble(asSpillwayError(error), 'offsets')
        if (this.lifecycle.is('closing', 'closed')) return
        await new Promise((r) => setTimeout(r, Math.min(200 * 2 ** Math.min(attempt, 5), 5000)))
      }
    }
  }

  /**
   * Gives partitions up: nothing new starts, buffered records are dropped, running handlers get until
   * the deadline, what is done is committed (unless `lost`), then the partitions are retired.
   */
  async #revoked(partitions: readonly PartitionRef[], lost: boolean): Promise<void> {
    const works = partitions
      .map((p) => this.#partitions.get(`${p.topic}\u0000${p.partition}`))
      .filter((w): w is PartitionWork => w !== undefined)
    for (const w of works) {
      w.stopping = true
      this.#runner.drop(w)
    }
    if (!lost) {
      // shorter than the rebalance timeout, so the commit still lands under our epoch
      const deadline = Math.min(this.options.closeTimeoutMs, Math.floor(this.options.rebalanceTimeoutMs / 2))
      const idle = await Promise.all(works.map((w) => w.whenIdle(deadline)))
      this.#abandoned += works.reduce((sum, w, i) => sum + (idle[i] ? 0 : w.running), 0)
      await this.#commitNow(works)
    } else {
      this.#abandoned += works.reduce((sum, w) => sum + w.running, 0)
    }
    for (const w of works) {
      w.retire(lost ? 'partition lost' : 'partition revoked')
      this.#runner.abandon(w)
      this.#plan.drained(w.topic, w.partition, w.dropWaiting() + this.#gate.drop(w))
      this.#partitions.delete(w.key)
    }
    this.#plan.assign([...this.#partitions.values()])
    this.#fetcher.wake()
    this.#emit({
      type: 'revoked',
      partitions: works.map((w) => ({ topic: w.topic, partition: w.partition })),
      abandoned: works.reduce((sum, w) => sum + w.running, 0),
      lost,
    })
  }

  // ---- records -----------------------------------------------------------------------------------

  #deliver(work: PartitionWork, fetched: FetchedPartition): void {
    work.highWatermark = fetched.highWatermark
    // offsets the fetch passed without a record for the handler (transaction markers, aborted records,
    // compacted ones) count as done, or the watermark would wait for them forever
    let position = work.nextOffset
    for (const r of fetched.records) {
      if (r.offset > position) work.tracker.skip(position, r.offset)
      position = r.offset + 1n
    }
    if (fetched.nextOffset > position) work.tracker.skip(position, fetched.nextOffset)
    work.nextOffset = fetched.nextOffset
    if (fetched.records.length > 0) {
      this.#deliveries++
      this.#recordSizes(work.topic, fetched)
      // a retry tier's records wait for their due time; the partition fetches nothing more meanwhile
      if (this.#router && this.#router.stage(work.topic) > 0) this.#gate.add(work, fetched.records)
      else this.#runner.submit(work, fetched.records)
    }
  }

  #recordSizes(topic: string, fetched: FetchedPartition): void {
    let s = this.#sizes.get(topic)
    if (!s) {
      s = { count: 0, bytes: 0, max: 0, warned: false }
      this.#sizes.set(topic, s)
    }
    for (const r of fetched.records) {
      this.#metrics?.observeRecordSize(topic, r.size)
      s.count++
      s.bytes += r.size
      if (r.size > s.max) s.max = r.size
    }
    const average = s.bytes / s.count
    if (!s.warned && s.count >= 10 && average > this.options.largeRecordBytes) {
      s.warned = true
      this.#emit({
        type: 'large-records',
        topic,
        averageBytes: Math.round(average),
        maxBytes: s.max,
        limit: this.options.largeRecordBytes,
      })
      process.emitWarning(
        `records of ${topic} average ${Math.round(average)} bytes (largest ${s.max}), over largeRecordBytes ${this.options.largeRecordBytes}: consider keeping large payloads outside Kafka`,
        { code: 'SPILLWAY_LARGE_RECORDS' },
      )
    }
  }

  #done(work: PartitionWork, offset: bigint): void {
    const wasStalled = work.stalledReported
    const bytes = work.done(offset)
    if (wasStalled) this.#emit({ type: 'unstalled', topic: work.topic, partition: work.partition })
    if (bytes > 0 && !work.revoked) {
      // the work's key is the plan's key for its partition
      this.#plan.drained(work.topic, work.partition, bytes, work.key)
      this.#fetcher.nudge()
    }
  }

  // ---- commits -----------------------------------------------------------------------------------

  /** Commits what is done now (also runs every commitIntervalMs). One commit at a time. */
  async commit(): Promise<void> {
    await this.#commitNow([...this.#partitions.values()])
  }

  async #commitNow(works: readonly PartitionWork[]): Promise<void> {
    while (this.#committing) await this.#committing
    const groupId = this.options.groupId
    const membership = this.#membership
    if (!groupId || membership.memberId === undefined) return
    const points = works
      .filter((w) => !w.revoked)
      .map((w) => ({ work: w, point: w.tracker.commitPoint() }))
      .filter((x): x is { work: PartitionWork; point: NonNullable<typeof x.point> } => x.point !== undefined)
    this.#pressure(works)
    if (points.length === 0) return
    const epoch = membership.epoch
    if (epoch <= 0) return
    if (this.#forwarder) {
      await this.#commitInTransaction(points.map((p) => p.work))
      return
    }
    this.#committing = (async () => {
      try {
        const results = await this.#lease.cluster.group.commit(
          {
            groupId,
            memberId: membership.memberId as string,
            memberEpoch: epoch,
            offsets: points.map(({ work, point }) => ({
              topic: work.topic,
              partition: work.partition,
              offset: point.offset,
              metadata: point.metadata,
            })),
          },
          this.options.requestTimeoutMs,
        )
        this.#commits++
        const refused = new Map<string, { topic: string; partition: number }[]>()
        for (const r of results) {
          const entry = points.find((p) => p.work.topic === r.topic && p.work.partition === r.partition)
          if (!entry) continue
          if (r.error === null) entry.work.tracker.committed(entry.point)
          else
            refused.set(r.error, [
              ...(refused.get(r.error) ?? []),
              { topic: r.topic, partition: r.partition },
            ])
        }
        if (commitChannel.hasSubscribers) {
          commitChannel.publish({
            partitions: points.length,
            refused: [...refused.values()].reduce((sum, list) => sum + list.length, 0),
          })
        }
        for (const [error, partitions] of refused) {
          // dropped, never sent again under another epoch: a later commit of a partition still owned
          // carries the same offsets anyway, and one no longer owned must not be committed by us
          this.#commitsRefused++
          this.#emit({ type: 'commit-refused', error, partitions })
        }
        this.#trouble(undefined, 'commit')
      } catch (error) {
        this.#commitsRefused++
        this.#trouble(asSpillwayError(error), 'commit')
      }
    })()
    try {
      await this.#committing
    } finally {
      this.#committing = undefined
    }
  }

  /** With retry tiers every commit is a transaction's, so none can race a forward's for a partition. */
  async #commitInTransaction(works: readonly PartitionWork[]): Promise<void> {
    const forwarder = this.#forwarder as TransactionalForwarder
    const outcome = await forwarder.commit(works)
    if (outcome.committed > 0) this.#commits++
    for (const [error, partitions] of outcome.refused) {
      this.#commitsRefused++
      this.#emit({ type: 'commit-refused', error, partitions })
    }
    if (outcome.error && outcome.refused.size === 0) {
      this.#commitsRefused++
      this.#trouble(outcome.error, 'commit')
    } else this.#trouble(undefined, 'commit')
  }

  /** Commit metadata nearly full: stop fetching the partition until its watermark catches up. */
  #pressure(works: readonly PartitionWork[]): void {
    for (const w of works) {
      const pressure = w.tracker.metadataPressure()
      if (!w.paused && pressure > METADATA_PRESSURE_PAUSE) {
        w.paused = true
        this.#plan.pause(w.topic, w.partition, true)
      } else if (w.paused && pressure < METADATA_PRESSURE_RESUME) {
        w.paused = false
        this.#plan.pause(w.topic, w.partition, w.holding)
        this.#fetcher.nudge()
      }
    }
  }

  // ---- liveness and status -----------------------------------------------------------------------

  /** Group members are given nothing for a topic that does not exist: say so while it is missing. */
  async #checkTopics(): Promise<void> {
    await this.#ensureTiers()
    if (this.options.groupId === undefined || this.#topicsChecked > performance.now() - 5000) return
    this.#topicsChecked = performance.now()
    try {
      await existingTopics(this.#lease.cluster.admin, this.options.topics, this.options.requestTimeoutMs)
      this.#trouble(undefined, 'topics')
      this.#topicsChecked = Number.POSITIVE_INFINITY
    } catch (error) {
      this.#trouble(asSpillwayError(error), 'topics')
    }
  }

  /** Creates the missing tier and dead-letter topics of the source topics that exist (until all are made). */
  async #ensureTiers(): Promise<void> {
    if (!this.#router || !this.#forwarder || this.#tiersReady) return
    try {
      const snapshot = await this.#lease.cluster.admin.metadata(
        this.options.topics,
        this.options.requestTimeoutMs,
      )
      const counts = new Map(snapshot.topics.map((t) => [t.name, t.partitions.length]))
      await this.#forwarder.ensureTopics(this.#router.topicsToCreate(counts))
      if (counts.size === this.options.topics.length) this.#tiersReady = true
      this.#trouble(undefined, 'retry-topics')
    } catch (error) {
      this.#trouble(asSpillwayError(error), 'retry-topics')
    }
  }

  #watch(): void {
    void this.#checkTopics()
    const now = performance.now()
    for (const w of this.#partitions.values()) {
      const stalled = w.stalledFor(now)
      if (!w.stalledReported && stalled >= this.options.stallAlarmMs) {
        w.stalledReported = true
        this.#emit({ type: 'stalled', topic: w.topic, partition: w.partition, forMs: Math.round(stalled) })
      }
    }
  }

  /** Reports a failure once per kind until it clears, and its clearing. */
  #trouble(error: SpillwayError | undefined, what: string): void {
    const kind = what.split(':')[0] as string
    if (error === undefined) {
      if (this.#troubles.delete(what))
        this.#emit({ type: 'connection', ok: true, message: `${kind}: ok again` })
      return
    }
    const message = `${kind}: ${error.message}`
    if (this.#troubles.get(what) === message) return
    this.#troubles.set(what, message)
    this.#emit({ type: 'connection', ok: false, code: error.code, message })
  }

  /** Failures going on now (empty when all is well). */
  troubles(): string[] {
    return [...this.#troubles.values()]
  }

  stats(): ConsumerStats {
    const now = performance.now()
    const wall = Date.now()
    const partitions: PartitionStats[] = [...this.#partitions.values()].map((w) =>
      w.stats(now, this.#plan.fetchBytes(w.topic, w.partition), wall),
    )
    let bufferedBytes = 0
    let lagRecords = 0n
    let stalled = 0
    for (const p of partitions) {
      bufferedBytes += p.bufferedBytes
      lagRecords += p.lagRecords
      if (p.stalledMs >= this.options.stallAlarmMs) stalled++
    }
    return {
      state: this.lifecycle.state,
      groupId: this.options.groupId,
      memberId: this.#membership.memberId,
      memberEpoch: this.#membership.epoch,
      groupProtocol: this.#protocol(),
      ...this.#counters,
      delayed: this.#gate.size,
      transactions: this.#forwarder?.stats().transactions ?? 0,
      transactionsAborted: this.#forwarder?.stats().aborted ?? 0,
      fetches: this.#fetcher.fetches,
      fetchedRecords: this.#fetcher.fetchedRecords,
      fetchedBytes: this.#fetcher.fetchedBytes,
      deliveries: this.#deliveries,
      commits: this.#commits,
      commitsRefused: this.#commitsRefused,
      rebalances: this.#rebalances,
      abandoned: this.#abandoned,
      running: this.#executor.running,
      bufferedBytes,
      assigned: partitions.length,
      stalledPartitions: stalled,
      lagRecords,
      partitions,
      recordSizes: Object.fromEntries(
        [...this.#sizes].map(([topic, s]) => [topic, { count: s.count, bytes: s.bytes, max: s.max }]),
      ),
    }
  }

  /** Status changes: lifecycle, assignments and revocations, failures and their end, record errors. */
  async *statusStream(signal?: AbortSignal): AsyncIterable<ConsumerStatus> {
    for await (const [status] of on(this, 'status', signal ? { signal } : {})) yield status as ConsumerStatus
  }

  [Symbol.asyncIterator](): AsyncIterator<ConsumerStatus> {
    return this.statusStream()[Symbol.asyncIterator]()
  }

  /**
   * Stops fetching, drops what has not started, gives running handlers until closeTimeoutMs, commits
   * what is done, leaves the group and lets the cluster go. Safe to call more than once.
   */
  async close(): Promise<void> {
    this.#closing ??= this.#close()
    await this.#closing
  }

  async #close(): Promise<void> {
    if (this.lifecycle.is('closed')) return
    this.lifecycle.transitionTo('closing', 'close()')
    clearInterval(this.#commitTimer)
    clearInterval(this.#watchTimer)
    await this.#fetcher.stop()
    // leaving revokes everything: running handlers get their deadline and what is done is committed
    await this.#membership.leave()
    await this.#lease.cluster.group.endSession(this.#session).catch(() => undefined)
    await this.#deadLetters.close().catch(() => undefined)
    this.#gate.close()
    await this.#forwarder?.close().catch(() => undefined)
    this.#metrics?.unregister()
    await this.#lease.release()
    this.lifecycle.transitionTo('closed', 'closed')
  }
}

/** Creates a consumer; `run()` starts it. Options are checked here, with readable errors. */
export function createConsumer<T = Buffer | null>(
  options: ConsumerOptions<T> & {
    readonly registry?: Registry
    readonly metricLabels?: Readonly<Record<string, string>>
  },
): SpillwayConsumer<T> {
  const { registry, metricLabels, ...rest } = options
  return new SpillwayConsumer<T>(resolveConsumerOptions<T>(rest), registry, metricLabels)
}
