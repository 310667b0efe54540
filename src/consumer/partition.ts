/**
 * One assigned partition while this member owns it: where fetching goes on from, which records are
 * waiting or running, what may be committed (CommitTracker), and the figures for lag and liveness.
 *
 * The object is the ownership: a revocation retires it (`revoked`), and a later assignment of the same
 * partition makes a new one. Work that completes after its partition was revoked lands in the retired
 * object, which is never committed again: it cannot move the group's offset.
 */
import { CommitTracker } from './commit-tracker.ts'
import type { PartitionState, PartitionStats } from './types.ts'
import { WaitingRecords } from './waiting-records.ts'

export class PartitionWork {
  readonly topic: string
  readonly partition: number
  readonly key: string
  readonly tracker: CommitTracker
  /** Where the next fetch starts. */
  nextOffset: bigint
  highWatermark = -1n
  /** Records fetched and not yet done, in offset order. */
  readonly waiting = new WaitingRecords()
  bufferedBytes = 0
  running = 0
  retrying = 0
  /** Records whose key is held by a retry or a dead-letter write. */
  blocked = 0
  paused = false
  /** A retry tier's partition holding fetched records until they are due (fetching nothing more). */
  holding = false
  /** Revocation or close has begun: nothing new starts; running handlers may finish. */
  stopping = false
  revoked = false
  readonly #abort = new AbortController()
  #idleWaiters: (() => void)[] = []
  /** The member epoch the partition was assigned under (0 without a group). */
  readonly epoch: number
  lastProgress = performance.now()
  stalledReported = false

  constructor(topic: string, partition: number, committed: bigint, metadata: string | null, epoch: number) {
    this.topic = topic
    this.partition = partition
    this.key = `${topic}\u0000${partition}`
    this.tracker = new CommitTracker(committed, metadata)
    this.nextOffset = committed
    this.epoch = epoch
  }

  /** Aborted when the partition is revoked: handlers and retry waits of its records stop. */
  get signal(): AbortSignal {
    return this.#abort.signal
  }

  /** The partition is gone: work still running is abandoned (never committed). */
  retire(reason: string): void {
    this.stopping = true
    this.revoked = true
    this.#abort.abort(new Error(reason))
    this.notifyIdle()
  }

  /** Resolves when no handler of this partition runs (or `deadline` ms passed); true when idle. */
  whenIdle(deadlineMs: number): Promise<boolean> {
    if (this.running === 0) return Promise.resolve(true)
    return new Promise((resolve) => {
      const timer = setTimeout(() => resolve(false), deadlineMs)
      this.#idleWaiters.push(() => {
        clearTimeout(timer)
        resolve(true)
      })
    })
  }

  notifyIdle(): void {
    if (this.running !== 0 && !this.revoked) return
    const waiters = this.#idleWaiters
    this.#idleWaiters = []
    for (const w of waiters) w()
  }

  /** A fetched record now waits for its handler. */
  add(offset: bigint, timestamp: number, size: number): void {
    this.bufferedBytes += size - this.waiting.add(offset, timestamp, size)
  }

  /** The record is done (handled, skipped, dead-lettered, a duplicate): returns its buffered bytes. */
  done(offset: bigint): number {
    const size = this.waiting.finish(offset)
    this.tracker.complete(offset)
    this.lastProgress = performance.now()
    if (this.stalledReported) this.stalledReported = false
    if (size < 0) return 0
    this.bufferedBytes -= size
    return size
  }

  /** Forgets every waiting record (revocation): returns the bytes freed. */
  dropWaiting(): number {
    const bytes = this.bufferedBytes
    this.waiting.clear()
    this.bufferedBytes = 0
    return bytes
  }

  /** ms the partition has had records waiting without completing any; 0 when nothing waits. */
  stalledFor(now: number): number {
    return this.waiting.size === 0 ? 0 : now - this.lastProgress
  }

  state(): PartitionState {
    if (this.nextOffset < 0n) return 'starting'
    if (this.retrying > 0) return 'retrying'
    if (this.blocked > 0) return 'blocked'
    if (this.paused) return 'paused'
    if (this.holding && this.waiting.size === 0) return 'delayed'
    if (this.waiting.size === 0 && this.highWatermark >= 0n && this.tracker.watermark >= this.highWatermark)
      return 'idle'
    return 'fetching'
  }

  stats(now: number, fetchBytes: number, wallNow: number): PartitionStats {
    const oldest = this.waiting.oldestTimestamp()
    const hw = this.highWatermark
    const lag = hw >= 0n && hw > this.tracker.watermark ? hw - this.tracker.watermark : 0n
    const stalled = this.stalledFor(now)
    return {
      topic: this.topic,
      partition: this.partition,
      state: this.state(),
      watermark: this.tracker.watermark,
      highWatermark: hw,
      lagRecords: lag,
      lagSeconds: oldest === undefined ? 0 : Math.max(0, (wallNow - oldest) / 1000),
      bufferedBytes: this.bufferedBytes,
      bufferedRecords: this.waiting.size,
      inFlight: this.running,
      fetchBytes,
      stalledMs: stalled,
    }
  }
}
