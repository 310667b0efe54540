/**
 * The durable local log: an append-only sequence of opaque records in segment files, with group commit,
 * a delivered-cursor checkpoint, retention of delivered segments and a disk budget. It knows nothing of
 * Kafka. See docs/log-format.md for the bytes and docs/guarantees.md for what survives which failure.
 *
 * Invariants:
 *   - seq grows by one per appended record and is never reused, not even across restarts.
 *   - An append's promise resolves only after its bytes are durable under the fsync policy.
 *   - Readers see only durable bytes: [cursor … durable end).
 *   - A segment file is deleted only after a checkpoint past its last record is durable.
 */

import { EventEmitter } from 'node:events'
import { fstatSync, statSync } from 'node:fs'
import type { FileHandle } from 'node:fs/promises'
import { mkdir, open, rm, statfs } from 'node:fs/promises'
import { channel } from '../channels.ts'
import { SpillwayError } from '../errors.ts'
import { StateMachine } from '../state-machine.ts'
import { fsyncDirectory, type LogPosition, writeCheckpoint } from './checkpoint.ts'
import { createSegmentFile, isMemoryBacked, writeFully } from './disk.ts'
import {
  ENTRY_HEADER_BYTES,
  encodeSegmentHeader,
  FRAME_HEADER_BYTES,
  frameSize,
  frameTimestamp,
  RECORD_HEADER_BYTES,
  SEGMENT_HEADER_BYTES,
  sealFrame,
  writeEntryHeader,
  writeFrameHeader,
} from './format.ts'
import { type DirectoryLock, lockDirectory } from './lock.ts'
import { type LogOptions, type ResolvedLogOptions, resolveLogOptions } from './options.ts'
import { LogReader, type ReaderSource } from './reader.ts'
import { recoverLog } from './recovery.ts'
import type { Corruption } from './scanner.ts'
import { type Segment, SegmentList } from './segments.ts'
import { TailCache } from './tail-cache.ts'
import { TailRing } from './tail-ring.ts'
import {
  type AppendResult,
  type CorruptionReport,
  type LogEvents,
  type LogState,
  type LogStats,
  type PayloadWriter,
  payloadSizes,
} from './types.ts'

export { LogReader } from './reader.ts'
export type {
  AppendResult,
  CorruptionReport,
  LogEvents,
  LogPosition,
  LogRecord,
  LogState,
  LogStats,
  PayloadWriter,
  ReadLimits,
} from './types.ts'
export { payloadSizes } from './types.ts'

/** The states in which append() is legal ('failed' answers with the failure that put it there). */
const APPENDING: readonly LogState[] = ['open', 'disk-full', 'unwritable', 'failed']

const TRANSITIONS: Record<LogState, readonly LogState[]> = {
  open: ['disk-full', 'unwritable', 'failed', 'closing'],
  'disk-full': ['open', 'unwritable', 'failed', 'closing'],
  unwritable: ['open', 'failed', 'closing'],
  failed: ['closing'],
  closing: ['closed'],
  closed: [],
}

interface Waiter {
  readonly resolve: (result: AppendResult) => void
  readonly reject: (error: Error) => void
  readonly result: AppendResult
}

interface Batch {
  chunks: Buffer[]
  /** How many of the chunks are regions of the write arena (released once the batch is written). */
  arenaChunks: number
  bytes: number
  waiters: Waiter[]
  lastSeq: bigint
}

const channels = {
  corruption: channel('spillway:log:corruption'),
  fsync: channel('spillway:log:fsync'),
  refused: channel('spillway:log:refused'),
}

export interface DurableLogOpenOptions extends LogOptions {
  /** Wall clock for record timestamps (injected in tests). */
  readonly wallClock?: () => number
  /** Write appends on the caller's thread (LogStats.inlineWrites); detected from the filesystem when absent. */
  readonly inlineWrites?: boolean
}

function emptyBatch(): Batch {
  return { chunks: [], arenaChunks: 0, bytes: 0, waiters: [], lastSeq: -1n }
}

export class DurableLog extends EventEmitter<LogEvents> {
  readonly options: ResolvedLogOptions
  readonly status: StateMachine<LogState>
  readonly #lock: DirectoryLock
  readonly #segments: SegmentList
  readonly #wallClock: () => number
  #active: FileHandle
  #nextSeq: bigint
  #durable: LogPosition
  #cursor: LogPosition
  #cursorTimestamp: number | undefined
  #diskBytes: number
  #queue: Batch = emptyBatch()
  #queuedBytes = 0
  #io: Promise<void> = Promise.resolve()
  #flushScheduled = false
  #unsynced: Waiter[] = []
  #syncTimer: NodeJS.Timeout | undefined
  #probeTimer: NodeJS.Timeout | undefined
  #checkpointChain: Promise<void> = Promise.resolve()
  #queuedCheckpoint: Promise<void> | undefined
  #failure: SpillwayError | undefined
  /** Monotonic ms since the log could not write (unwritable or failed). */
  #faultySince: number | undefined
  /** The directory's inode at open: a different one means the directory was replaced. */
  readonly #dirInode: number
  #failedBatchBytes = 0
  #reported = new Set<string>()
  #stats = {
    appendedRecords: 0,
    refusedFull: 0,
    refusedQueue: 0,
    refusedTooLarge: 0,
    corruptRegions: 0,
    corruptBytes: 0,
    tornTailBytes: 0,
    fsyncs: 0,
  }
  /** Copies of recently written chunks, oldest first, held until delivered. */
  #tail: TailCache | undefined
  /** What readers see of this log (no friend methods). */
  readonly #source: ReaderSource
  /** Where appended frames are built until they are written. */
  #arena: TailRing<undefined> | undefined
  /** See LogStats.inlineWrites. */
  readonly #inlineWrites: boolean

  private constructor(init: {
    options: ResolvedLogOptions
    lock: DirectoryLock
    segments: Segment[]
    active: FileHandle
    nextSeq: bigint
    cursor: LogPosition
    diskBytes: number
    tornTailBytes: number
    wallClock: () => number
    inlineWrites: boolean
  }) {
    super()
    this.options = init.options
    this.status = new StateMachine<LogState>('log', 'open', TRANSITIONS)
    this.#lock = init.lock
    this.#segments = new SegmentList(init.segments)
    this.#active = init.active
    this.#nextSeq = init.nextSeq
    this.#cursor = init.cursor
    this.#diskBytes = init.diskBytes
    this.#stats.tornTailBytes = init.tornTailBytes
    this.#wallClock = init.wallClock
    this.#inlineWrites = init.inlineWrites
    this.#dirInode = statSync(this.options.dir).ino
    const last = this.#segments.active
    this.#durable = { seq: init.nextSeq, segment: last.base, offset: last.size }
    const policy = this.options.fsync
    if (typeof policy === 'object') {
      this.#syncTimer = setInterval(() => this.#intervalSync(), policy.intervalMs)
      this.#syncTimer.unref()
    }
    this.#source = {
      maxRecordBytes: this.options.maxRecordBytes,
      readChunkBytes: this.options.readChunkBytes,
      segments: this.#segments,
      cursor: () => this.#cursor,
      durable: () => this.#durable,
      cached: (position, maxRecords, maxBytes) =>
        this.#tail?.read(position, this.#durable.seq, maxRecords, maxBytes) ?? [],
      reportCorruption: (segment, corruption) => this.#reportCorruption(segment, corruption),
    }
  }

  /**
   * Opens (creating if needed) the log in `options.dir`. Reads only the checkpoint and the last segment,
   * truncates a torn tail, finishes interrupted retention, and starts a fresh active segment.
   */
  static async open(input: DurableLogOpenOptions): Promise<DurableLog> {
    const { wallClock, inlineWrites, ...rest } = input
    const options = resolveLogOptions(rest)
    await mkdir(options.dir, { recursive: true })
    const lock = await lockDirectory(options.dir)
    try {
      return await DurableLog.#recover(options, lock, wallClock ?? Date.now, inlineWrites)
    } catch (error) {
      await lock.release()
      throw error
    }
  }

  static async #recover(
    options: ResolvedLogOptions,
    lock: DirectoryLock,
    wallClock: () => number,
    inlineWrites: boolean | undefined,
  ): Promise<DurableLog> {
    const found = await recoverLog(options)
    const log = new DurableLog({
      options,
      lock,
      segments: found.segments,
      active: found.active,
      nextSeq: found.nextSeq,
      cursor: found.cursor,
      diskBytes: found.diskBytes,
      tornTailBytes: found.tornTailBytes,
      wallClock,
      inlineWrites: inlineWrites ?? (await isMemoryBacked(options.dir)),
    })
    if (found.headerDamage) {
      log.#stats.corruptRegions++
      log.#stats.corruptBytes += SEGMENT_HEADER_BYTES
      if (channels.corruption.hasSubscribers) {
        channels.corruption.publish({
          segment: found.headerDamage,
          offset: 0,
          bytes: SEGMENT_HEADER_BYTES,
          reason: 'segment header damaged',
          tail: false,
        })
      }
    }
    await log.#refreshCursorTimestamp()
    return log
  }

  // ─── append ────────────────────────────────────────────────────────────────────────────────────

  /**
   * Appends records as one unit: all are accepted or none. Resolves once they are durable under the fsync
   * policy. Refusals (full, too large, queue full, closed, failed) reject at once without touching disk.
   */
  append(payloads: readonly Buffer[] | PayloadWriter): Promise<AppendResult> {
    const sizes = payloadSizes(payloads)
    const refusal = this.#admit(sizes)
    if (refusal) return Promise.reject(refusal)
    // one frame per append: on disk whole or not at all, one CRC for all its records
    const bytes = frameSize(sizes)
    // A frame lives only until it is written (the tail cache keeps a copy): it is built in a region of
    // the write arena, taken and given back in order, so appends leave no buffers behind for the
    // garbage collector (their external memory was what triggered most of its full collections).
    this.#arena ??= new TailRing<undefined>(WRITE_ARENA_BYTES)
    const slot = this.#arena.reserve(bytes, undefined)
    const chunk = slot ? slot.view : Buffer.allocUnsafe(bytes)
    const timestamp = this.#wallClock()
    const firstSeq = this.#nextSeq
    try {
      writeFrameHeader(chunk, 0, firstSeq, timestamp, sizes.length, bytes)
      let offset = FRAME_HEADER_BYTES
      const list = Array.isArray(payloads) ? (payloads as readonly Buffer[]) : undefined
      for (let i = 0; i < sizes.length; i++) {
        const size = sizes[i] as number
        writeEntryHeader(chunk, offset, size)
        offset += ENTRY_HEADER_BYTES
        // a writer encodes straight into the chunk: no buffer per payload, no copy
        if (list) (list[i] as Buffer).copy(chunk, offset)
        else (payloads as PayloadWriter).write(i, chunk, offset)
        offset += size
      }
    } catch (error) {
      // a writer that throws appends nothing; its region goes back, or the arena's order would slip
      if (slot) this.#arena.releaseNewest()
      throw error
    }
    sealFrame(chunk, 0, bytes)
    this.#nextSeq += BigInt(sizes.length)
    const result: AppendResult = { firstSeq, count: sizes.length }
    if (this.#cursorTimestamp === undefined && this.#cursor.seq >= firstSeq) this.#cursorTimestamp = timestamp
    const promise = new Promise<AppendResult>((resolve, reject) => {
      this.#queue.waiters.push({ resolve, reject, result })
    })
    this.#queue.chunks.push(chunk)
    if (slot) this.#queue.arenaChunks++
    this.#queue.bytes += bytes
    this.#queue.lastSeq = this.#nextSeq - 1n
    this.#queuedBytes += bytes
    this.#stats.appendedRecords += sizes.length
    this.#scheduleFlush()
    return promise
  }

  #admit(sizes: readonly number[]): SpillwayError | undefined {
    const state = this.status.state
    if (state === 'failed' || state === 'unwritable') return this.#failure
    const closed = this.status.refusal('append', APPENDING, 'SPW_ERR_LOG_CLOSED', 'the log is closed')
    if (closed) return closed
    if (sizes.length === 0)
      return new SpillwayError('SPW_ERR_BAD_REQUEST', 'append needs at least one record')
    let bytes = FRAME_HEADER_BYTES
    for (const size of sizes) {
      if (size > this.options.maxRecordBytes) {
        this.#stats.refusedTooLarge++
        return new SpillwayError(
          'SPW_ERR_RECORD_TOO_LARGE',
          `a record of ${size} bytes is over log.maxRecordBytes (${this.options.maxRecordBytes})`,
          { details: { bytes: size, max: this.options.maxRecordBytes } },
        )
      }
      bytes += size + ENTRY_HEADER_BYTES
    }
    if (state === 'disk-full' || this.#diskBytes + this.#queuedBytes + bytes > this.options.maxBytes) {
      this.#stats.refusedFull++
      channels.refused.publish({ reason: 'full', bytes })
      const why =
        state === 'disk-full' ? 'the disk is full' : `log.maxBytes (${this.options.maxBytes}) is reached`
      return new SpillwayError('SPW_ERR_LOG_FULL', `the local log refuses new records: ${why}`, {
        details: { diskBytes: this.#diskBytes, maxBytes: this.options.maxBytes },
      })
    }
    if (this.#queuedBytes + bytes > this.options.maxQueuedBytes) {
      this.#stats.refusedQueue++
      channels.refused.publish({ reason: 'queue', bytes })
      return new SpillwayError(
        'SPW_ERR_BACKPRESSURE',
        `the log's write queue is full (log.maxQueuedBytes ${this.options.maxQueuedBytes})`,
        { details: { queuedBytes: this.#queuedBytes } },
      )
    }
    return undefined
  }

  #scheduleFlush(): void {
    if (this.#flushScheduled) return
    this.#flushScheduled = true
    this.#serial(async () => {
      this.#flushScheduled = false
      await this.#flushQueue()
    })
  }

  /** Runs `task` after every earlier I/O task: one writer, so offsets and fsync coverage are exact. */
  #serial(task: () => Promise<void>): Promise<void> {
    const run = this.#io.then(task)
    this.#io = run.catch(() => undefined)
    return run
  }

  async #flushQueue(): Promise<void> {
    while (this.#queue.waiters.length > 0) {
      const batch = this.#queue
      this.#queue = emptyBatch()
      try {
        await this.#writeBatch(batch)
      } catch (error) {
        this.#releaseArena(batch)
        this.#queuedBytes -= batch.bytes
        this.#failedBatchBytes = batch.bytes
        // the seqs of a failed batch are never reused; readers simply never see them
        const failure = await this.#onWriteError(error)
        for (const w of batch.waiters) w.reject(failure)
        continue
      }
      this.#releaseArena(batch)
      this.#queuedBytes -= batch.bytes
      const policy = this.options.fsync
      if (typeof policy === 'object') {
        this.#unsynced.push(...batch.waiters)
      } else {
        this.#markDurable(batch.lastSeq + 1n)
        for (const w of batch.waiters) w.resolve(w.result)
      }
    }
  }

  /** A batch is written (or failed): its frames' arena regions, the oldest ones, are free again. */
  #releaseArena(batch: Batch): void {
    for (let i = 0; i < batch.arenaChunks; i++) this.#arena?.releaseOldest()
  }

  async #writeBatch(batch: Batch): Promise<void> {
    if (this.status.is('failed', 'unwritable')) throw this.#failure
    // Split the batch at append boundaries so segments stay near segmentBytes; an append is never split.
    let index = 0
    while (index < batch.chunks.length) {
      let active = this.#segments.active
      const first = batch.chunks[index] as Buffer
      if (active.size > SEGMENT_HEADER_BYTES && active.size + first.length > this.options.segmentBytes) {
        await this.#roll((batch.waiters[index] as Waiter).result.firstSeq)
        active = this.#segments.active
      }
      const run: Buffer[] = [first]
      let runBytes = first.length
      index++
      while (index < batch.chunks.length) {
        const chunk = batch.chunks[index] as Buffer
        if (active.size + runBytes + chunk.length > this.options.segmentBytes) break
        run.push(chunk)
        runBytes += chunk.length
        index++
      }
      const position = active.size
      try {
        const started = performance.now()
        await writeFully(this.#active, run, runBytes, position, this.#inlineWrites)
        // under 'always' the segment is opened with O_DSYNC: the write returns once the data is on disk
        if (this.options.fsync === 'always' && index >= batch.chunks.length)
          this.#synced(performance.now() - started)
        this.#cacheWritten(batch, index - run.length, index, active.base, position)
      } catch (error) {
        // a partial write must not leave half a record before the next one
        await this.#active.truncate(position).catch(() => undefined)
        throw error
      }
      active.size += runBytes
      this.#diskBytes += runBytes
    }
    this.#checkStillThere()
  }

  /**
   * Throws when the log's files are gone from under it (`rm -rf` of the directory, a volume swapped):
   * bytes written to an unlinked segment are lost at the next restart, so they must never be answered
   * as durable. Two cheap synchronous calls per group commit: the active segment's link count, and the
   * directory's inode.
   */
  #checkStillThere(): void {
    let removed: string | undefined
    try {
      if (fstatSync(this.#active.fd).nlink === 0) removed = 'its active segment was deleted'
      else if (statSync(this.options.dir).ino !== this.#dirInode) removed = 'the directory was replaced'
    } catch (error) {
      removed = `the directory is gone (${(error as NodeJS.ErrnoException).code ?? (error as Error).message})`
    }
    if (removed) throw Object.assign(new Error(removed), { code: LOG_REMOVED })
  }

  /** Keeps the chunks just written at `position` of segment `base` in the tail cache. */
  #cacheWritten(batch: Batch, from: number, to: number, base: bigint, position: number): void {
    if (this.options.tailCacheBytes === 0) return
    this.#tail ??= new TailCache(this.options.tailCacheBytes)
    let offset = position
    for (let i = from; i < to; i++) {
      // one chunk and one waiter per append; a chunk the cache has no room for is simply not cached
      const chunk = batch.chunks[i] as Buffer
      const { firstSeq, count } = (batch.waiters[i] as Waiter).result
      this.#tail.take(chunk, firstSeq, count, base, offset)
      offset += chunk.length
    }
  }

  async #datasync(): Promise<void> {
    const started = performance.now()
    await this.#active.datasync()
    this.#synced(performance.now() - started)
  }

  #synced(ms: number): void {
    this.#stats.fsyncs++
    this.emit('fsync', ms)
    if (channels.fsync.hasSubscribers) channels.fsync.publish({ durationMs: ms })
  }

  #intervalSync(): void {
    if (this.#unsynced.length === 0) return
    void this.#serial(async () => {
      const waiters = this.#unsynced
      this.#unsynced = []
      if (waiters.length === 0) return
      try {
        await this.#datasync()
      } catch (error) {
        const failure = await this.#onWriteError(error)
        for (const w of waiters) w.reject(failure)
        return
      }
      const last = waiters.at(-1) as Waiter
      this.#markDurable(last.result.firstSeq + BigInt(last.result.count))
      for (const w of waiters) w.resolve(w.result)
    })
  }

  #markDurable(nextSeq: bigint): void {
    const active = this.#segments.active
    this.#durable = { seq: nextSeq, segment: active.base, offset: active.size }
    this.emit('durable')
  }

  async #roll(base: bigint): Promise<void> {
    // under the interval policy, records written to the old segment become durable with this sync
    await this.#datasync()
    const waiters = this.#unsynced
    this.#unsynced = []
    const old = this.#segments.active
    if (waiters.length > 0) {
      const last = waiters.at(-1) as Waiter
      this.#durable = {
        seq: last.result.firstSeq + BigInt(last.result.count),
        segment: old.base,
        offset: old.size,
      }
    }
    const { path, handle } = await createSegmentFile(this.options.dir, base, this.options.fsync)
    await this.#active.close()
    this.#active = handle
    this.#segments.push({ base, path, size: SEGMENT_HEADER_BYTES })
    this.#diskBytes += SEGMENT_HEADER_BYTES
    for (const w of waiters) w.resolve(w.result)
    this.emit('durable')
  }

  /**
   * ENOSPC is a full disk: refuse quickly and probe until space returns. A removed directory fails the
   * log for good (a restart starts a fresh one). Any other write error (EPERM, EIO, EROFS…) makes the log
   * unwritable: appends are refused with SPW_ERR_LOG_IO while a probe retries, and it opens again once a
   * write succeeds.
   */
  async #onWriteError(error: unknown): Promise<SpillwayError> {
    const code = (error as NodeJS.ErrnoException).code
    if (code === LOG_REMOVED) {
      const failure = new SpillwayError(
        'SPW_ERR_LOG_IO',
        `the local log in ${this.options.dir} was removed (${(error as Error).message}); events written since are lost, restart the process`,
        { cause: error, details: { dir: this.options.dir } },
      )
      this.#fault(failure)
      if (this.status.canTransitionTo('failed')) this.status.transitionTo('failed', failure.message)
      return failure
    }
    if (code === 'ENOSPC' || code === 'EDQUOT') {
      if (this.status.is('open')) {
        this.status.transitionTo('disk-full', `write failed with ${code}`)
        this.#probeTimer = setInterval(() => void this.#probeDisk(), 250)
        this.#probeTimer.unref()
      }
      this.#stats.refusedFull++
      return new SpillwayError('SPW_ERR_LOG_FULL', `the disk under ${this.options.dir} is full (${code})`, {
        cause: error,
        details: { dir: this.options.dir },
      })
    }
    if (error instanceof SpillwayError) return error
    const failure = new SpillwayError(
      'SPW_ERR_LOG_IO',
      `the local log in ${this.options.dir} cannot write (${code ?? (error as Error).message}); appends are refused until a write succeeds again`,
      { cause: error, details: { dir: this.options.dir, errno: code } },
    )
    this.#fault(failure)
    if (this.status.canTransitionTo('unwritable')) {
      this.status.transitionTo('unwritable', failure.message)
      clearInterval(this.#probeTimer)
      this.#probeTimer = setInterval(() => void this.#serial(() => this.#probeWritable()), 250)
      this.#probeTimer.unref()
    }
    return failure
  }

  #fault(failure: SpillwayError): void {
    this.#failure = failure
    this.#faultySince ??= performance.now()
  }

  /**
   * Rewrites the active segment's header (the same bytes) at its start after cutting anything past its
   * end: harmless when it works, and a write to the very file the appends go to.
   */
  async #probeWritable(): Promise<void> {
    if (!this.status.is('unwritable')) {
      clearInterval(this.#probeTimer)
      return
    }
    const active = this.#segments.active
    try {
      await this.#active.truncate(active.size)
      await writeFully(this.#active, [encodeSegmentHeader(active.base)], SEGMENT_HEADER_BYTES, 0, false)
      await this.#active.datasync()
      this.#checkStillThere()
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code === LOG_REMOVED) await this.#onWriteError(error)
      return // still unwritable: keep probing
    }
    clearInterval(this.#probeTimer)
    this.#failure = undefined
    this.#faultySince = undefined
    if (this.status.is('unwritable')) this.status.transitionTo('open', 'a write succeeded again')
  }

  async #probeDisk(): Promise<void> {
    if (!this.status.is('disk-full')) {
      clearInterval(this.#probeTimer)
      return
    }
    try {
      const fs = await statfs(this.options.dir)
      const free = fs.bavail * fs.bsize
      // room for the batch that failed plus slack, so the log does not flap between full and open
      if (free >= this.#failedBatchBytes + 256 * 1024) {
        clearInterval(this.#probeTimer)
        if (this.status.is('disk-full')) this.status.transitionTo('open', `${free} bytes free again`)
      }
    } catch {
      // keep probing
    }
  }

  // ─── reading and delivery ─────────────────────────────────────────────────────────────────────

  /** A reader that starts at the delivered cursor. */
  reader(): LogReader {
    return new LogReader(this.#source, this.#cursor)
  }

  get cursor(): LogPosition {
    return this.#cursor
  }

  #reportCorruption(segment: Segment, corruption: Corruption): void {
    const key = `${segment.base}:${corruption.offset}`
    if (this.#reported.has(key)) return
    if (this.#reported.size > 10_000) this.#reported.clear()
    this.#reported.add(key)
    this.#stats.corruptRegions++
    this.#stats.corruptBytes += corruption.bytes
    const report: CorruptionReport = { ...corruption, segment: segment.path }
    this.emit('corruption', report)
    if (channels.corruption.hasSubscribers) channels.corruption.publish(report)
  }

  /**
   * Records that every record before `position.seq` is delivered. Resolves once a checkpoint covering it
   * is durable and fully delivered segments are removed. Older positions are ignored.
   */
  commit(position: LogPosition): Promise<void> {
    if (position.seq <= this.#cursor.seq) return this.#checkpointChain
    if (position.seq > this.#durable.seq) {
      return Promise.reject(
        new SpillwayError(
          'SPW_ERR_ILLEGAL_TRANSITION',
          `cannot commit seq ${position.seq} past the durable end ${this.#durable.seq}`,
        ),
      )
    }
    this.#cursor = position
    // delivered chunks leave the tail cache, and their space is taken again
    this.#tail?.release(position.seq)
    // Coalesce: while one checkpoint write runs, later commits share the single write queued behind it,
    // which takes whatever cursor is newest when it starts.
    if (this.#queuedCheckpoint) return this.#queuedCheckpoint
    const run = this.#checkpointChain.then(async () => {
      this.#queuedCheckpoint = undefined
      const target = this.#cursor
      // the directory is synced only before a segment is removed (see #removeDelivered): a checkpoint
      // lost to a crash before that costs replays of delivered records, never a record
      await writeCheckpoint(this.options.dir, target, false)
      await this.#removeDelivered(target)
      await this.#refreshCursorTimestamp()
    })
    this.#queuedCheckpoint = run
    this.#checkpointChain = run.catch(() => undefined)
    return run
  }

  async #removeDelivered(cursor: LogPosition): Promise<void> {
    let removed = false
    // Never the active segment; a segment goes once the cursor has moved into a later one, or sits at its end.
    while (this.#segments.length > 1) {
      const first = this.#segments.first as Segment
      const wholeDelivered =
        first.base < cursor.segment || (first.base === cursor.segment && cursor.offset >= first.size)
      if (!wholeDelivered) break
      // the checkpoint past this segment must survive a crash before the segment may go
      if (!removed) await fsyncDirectory(this.options.dir)
      await rm(first.path, { force: true })
      this.#segments.shift()
      this.#diskBytes -= first.size
      removed = true
    }
    if (removed) await fsyncDirectory(this.options.dir)
  }

  async #refreshCursorTimestamp(): Promise<void> {
    this.#cursorTimestamp = undefined
    if (this.#cursor.seq >= this.#nextSeq) return
    const located = this.#segments.locate(this.#cursor.segment, this.#durable)
    const segment = located?.segment ?? this.#segments.firstAtOrAfter(this.#cursor.seq)
    if (!segment) return
    const offset = located ? this.#cursor.offset : SEGMENT_HEADER_BYTES
    // delivery usually reads from the tail cache, and then the cursor's frame is its oldest entry
    const cached = this.#tail?.oldestTimestampAt(segment.base, offset)
    if (cached !== undefined) {
      this.#cursorTimestamp = cached
      return
    }
    let handle: FileHandle | undefined
    try {
      handle = await open(segment.path, 'r')
      const header = Buffer.alloc(RECORD_HEADER_BYTES)
      const { bytesRead } = await handle.read(header, 0, RECORD_HEADER_BYTES, offset)
      if (bytesRead === RECORD_HEADER_BYTES) this.#cursorTimestamp = frameTimestamp(header)
    } catch {
      // the segment may have been removed in between; the next commit refreshes it
    } finally {
      await handle?.close()
    }
  }

  stats(): LogStats {
    return {
      state: this.status.state,
      segments: this.#segments.length,
      diskBytes: this.#diskBytes,
      maxBytes: this.options.maxBytes,
      queuedBytes: this.#queuedBytes,
      pendingRecords: this.#nextSeq - this.#cursor.seq,
      nextSeq: this.#nextSeq,
      cursorSeq: this.#cursor.seq,
      oldestPendingTimestamp: this.#cursorTimestamp,
      ...this.#stats,
      cachedReads: this.#tail?.served ?? 0,
      tailCacheBytes: this.#tail?.usedBytes ?? 0,
      inlineWrites: this.#inlineWrites,
      faultyForMs: this.#faultySince === undefined ? 0 : performance.now() - this.#faultySince,
      fault: this.#failure?.message,
    }
  }

  /** Resolves once every append accepted so far is durable (or has failed). */
  async flush(): Promise<void> {
    this.#scheduleFlush()
    await this.#io
    if (typeof this.options.fsync === 'object') {
      this.#intervalSync()
      await this.#io
    }
  }

  /** Stops intake, makes accepted appends durable, writes the checkpoint, releases the directory. */
  async close(): Promise<void> {
    if (this.status.is('closing', 'closed')) return
    this.status.transitionTo('closing', 'close() called')
    clearInterval(this.#syncTimer)
    clearInterval(this.#probeTimer)
    await this.flush().catch(() => undefined)
    await this.#checkpointChain
    // the last checkpoint's rename, durable: a clean close leaves nothing to replay
    await fsyncDirectory(this.options.dir).catch(() => undefined)
    await this.#active.close().catch(() => undefined)
    await this.#lock.release()
    this.status.transitionTo('closed', 'closed')
  }
}

/** The code of the error #checkStillThere throws. */
const LOG_REMOVED = 'SPW_LOG_REMOVED'

/** The write arena's size: frames waiting for their write; a frame that finds it full gets a buffer of its own. */
const WRITE_ARENA_BYTES = 4 * 1024 * 1024
