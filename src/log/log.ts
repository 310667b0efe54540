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
import { constants, writevSync } from 'node:fs'
import { type FileHandle, mkdir, open, readdir, rm, stat, statfs } from 'node:fs/promises'
import { join } from 'node:path'
import { channel } from '../channels.ts'
import { SpillwayError } from '../errors.ts'
import { StateMachine } from '../state-machine.ts'
import {
  fsyncDirectory,
  type LogPosition,
  readCheckpoint,
  removeTempCheckpoint,
  writeCheckpoint,
} from './checkpoint.ts'
import {
  decodeSegmentHeader,
  ENTRY_HEADER_BYTES,
  encodeSegmentHeader,
  FRAME_HEADER_BYTES,
  frameSize,
  parseSegmentFileName,
  RECORD_HEADER_BYTES,
  readMillis,
  SEGMENT_HEADER_BYTES,
  sealFrame,
  segmentFileName,
  writeFrameHeader,
} from './format.ts'
import { type DirectoryLock, lockDirectory } from './lock.ts'
import { type LogOptions, type ResolvedLogOptions, resolveLogOptions } from './options.ts'
import { type Corruption, scanSegment, scanSegmentBatches } from './scanner.ts'
import { type RingEntry, TailRing } from './tail-ring.ts'

export type { LogPosition } from './checkpoint.ts'

export type LogState = 'open' | 'disk-full' | 'failed' | 'closing' | 'closed'

const TRANSITIONS: Record<LogState, readonly LogState[]> = {
  open: ['disk-full', 'failed', 'closing'],
  'disk-full': ['open', 'failed', 'closing'],
  failed: ['closing'],
  closing: ['closed'],
  closed: [],
}

export interface LogRecord {
  readonly seq: bigint
  readonly timestamp: number
  /**
   * The record's bytes. A view that stays valid until the cursor is committed past this record (the
   * tail cache reuses its memory then); copy it to keep it longer.
   */
  readonly payload: Buffer
  /** Position just after this record: commit it once this record is delivered. */
  readonly next: LogPosition
}

export interface AppendResult {
  readonly firstSeq: bigint
  readonly count: number
}

/**
 * Payloads the log writes in place, without a buffer of their own: the size of each, and a function that
 * writes payload `index` (exactly `sizes[index]` bytes) into `target` at `offset`.
 */
export interface PayloadWriter {
  readonly sizes: readonly number[]
  write(index: number, target: Buffer, offset: number): void
}

/** The sizes of payloads given either way. */
export function payloadSizes(payloads: readonly Buffer[] | PayloadWriter): readonly number[] {
  return Array.isArray(payloads) ? payloads.map((p) => p.length) : (payloads as PayloadWriter).sizes
}

export interface CorruptionReport extends Corruption {
  readonly segment: string
}

export interface LogStats {
  readonly state: LogState
  readonly segments: number
  readonly diskBytes: number
  readonly maxBytes: number
  readonly queuedBytes: number
  readonly pendingRecords: bigint
  readonly nextSeq: bigint
  readonly cursorSeq: bigint
  /** Wall-clock ms of the oldest undelivered record, if any. */
  readonly oldestPendingTimestamp: number | undefined
  readonly appendedRecords: number
  readonly refusedFull: number
  readonly refusedQueue: number
  readonly refusedTooLarge: number
  readonly corruptRegions: number
  readonly corruptBytes: number
  readonly tornTailBytes: number
  readonly fsyncs: number
  /** Records readers took from the tail cache instead of the disk. */
  readonly cachedReads: number
  /** Bytes held in the tail cache. */
  readonly tailCacheBytes: number
  /**
   * Appends are written on the caller's thread: the log is in memory (tmpfs), where a write is a copy
   * that costs less than the hand-off to the thread pool and back. Elsewhere they go through the pool.
   */
  readonly inlineWrites: boolean
}

interface Segment {
  readonly base: bigint
  readonly path: string
  size: number
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

/** Where an appended chunk in the tail cache lies on disk, and which records it holds. */
interface CachedChunk {
  readonly firstSeq: bigint
  /** Seq after its last record. */
  readonly endSeq: bigint
  readonly segment: bigint
  readonly offset: number
}

const channels = {
  corruption: channel('spillway:log:corruption'),
  fsync: channel('spillway:log:fsync'),
  refused: channel('spillway:log:refused'),
}

export interface LogEvents {
  durable: []
  corruption: [CorruptionReport]
  fsync: [durationMs: number]
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
  readonly #segments: Segment[]
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
    cachedReads: 0,
  }
  /** Copies of recently written chunks, oldest first, held until delivered. */
  #tail: TailRing<CachedChunk> | undefined
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
    this.#segments = init.segments
    this.#active = init.active
    this.#nextSeq = init.nextSeq
    this.#cursor = init.cursor
    this.#diskBytes = init.diskBytes
    this.#stats.tornTailBytes = init.tornTailBytes
    this.#wallClock = init.wallClock
    this.#inlineWrites = init.inlineWrites
    const last = this.#segments.at(-1) as Segment
    this.#durable = { seq: init.nextSeq, segment: last.base, offset: last.size }
    const policy = this.options.fsync
    if (typeof policy === 'object') {
      this.#syncTimer = setInterval(() => this.#intervalSync(), policy.intervalMs)
      this.#syncTimer.unref()
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
    const dir = options.dir
    await removeTempCheckpoint(dir)
    const names = (await readdir(dir)).filter((n) => parseSegmentFileName(n) !== undefined).sort()
    const segments: Segment[] = []
    for (const name of names) {
      const path = join(dir, name)
      segments.push({ base: parseSegmentFileName(name) as bigint, path, size: (await stat(path)).size })
    }
    const checkpoint = await readCheckpoint(dir)
    const firstBase = segments[0]?.base ?? 0n
    let cursor: LogPosition =
      checkpoint.kind === 'ok'
        ? checkpoint.position
        : { seq: firstBase, segment: firstBase, offset: SEGMENT_HEADER_BYTES }

    // Finish retention a crash interrupted: segments wholly before the cursor's segment were delivered.
    while (
      segments.length > 1 &&
      (segments[1] as Segment).base <= cursor.seq &&
      (segments[0] as Segment).base < cursor.segment
    ) {
      const dead = segments.shift() as Segment
      await rm(dead.path, { force: true })
    }
    const cursorSegment = segments.find((s) => s.base === cursor.segment)
    if (cursorSegment === undefined) {
      // The cursor's segment is gone (delivered to its end and removed): resume at the first segment at or past it.
      const next = segments.find((s) => s.base >= cursor.seq) ?? segments[0]
      if (next)
        cursor = {
          seq: next.base > cursor.seq ? next.base : cursor.seq,
          segment: next.base,
          offset: SEGMENT_HEADER_BYTES,
        }
    }

    // Find the valid end of the last segment; truncate a torn tail so new bytes never follow garbage.
    let nextSeq = cursor.seq
    let tornTailBytes = 0
    let headerDamage: string | undefined
    const last = segments.at(-1)
    if (last) {
      const handle = await open(last.path, 'r+')
      try {
        let validEnd = SEGMENT_HEADER_BYTES
        let lastSeq = last.base - 1n
        if (last.size < SEGMENT_HEADER_BYTES) {
          // created by a roll that crashed before its header was complete: it holds nothing
          tornTailBytes = last.size
          validEnd = 0
        } else {
          const header = Buffer.alloc(SEGMENT_HEADER_BYTES)
          await handle.read(header, 0, SEGMENT_HEADER_BYTES, 0)
          if (decodeSegmentHeader(header) !== last.base) headerDamage = last.path
          // the file name carries the base seq too, so records survive a damaged header
          for await (const item of scanSegment(handle, {
            start: SEGMENT_HEADER_BYTES,
            end: last.size,
            maxPayload: options.maxRecordBytes,
            lastSeq,
            chunkBytes: options.readChunkBytes,
          })) {
            if (item.kind === 'record') {
              lastSeq = item.record.seq
              validEnd = item.record.offset + item.record.size
            } else if (item.corruption.tail) {
              tornTailBytes = item.corruption.bytes
            }
          }
        }
        if (validEnd < last.size) {
          await handle.truncate(validEnd)
          await handle.sync()
          last.size = validEnd
        }
        nextSeq = lastSeq + 1n > nextSeq ? lastSeq + 1n : nextSeq
      } finally {
        await handle.close()
      }
      if (last.size <= SEGMENT_HEADER_BYTES) {
        // holds no record: drop it and let the new active segment take its place
        await rm(last.path, { force: true })
        segments.pop()
      }
    }
    if (nextSeq < cursor.seq) nextSeq = cursor.seq

    const activePath = join(dir, segmentFileName(nextSeq))
    const active = await open(activePath, segmentWriteFlags(options.fsync))
    await writeFully(active, [encodeSegmentHeader(nextSeq)], SEGMENT_HEADER_BYTES, 0, false)
    await active.sync()
    await fsyncDirectory(dir)
    segments.push({ base: nextSeq, path: activePath, size: SEGMENT_HEADER_BYTES })
    if (!segments.some((s) => s.base === cursor.segment)) {
      cursor = { seq: cursor.seq, segment: nextSeq, offset: SEGMENT_HEADER_BYTES }
    }
    const diskBytes = segments.reduce((sum, s) => sum + s.size, 0)
    const log = new DurableLog({
      options,
      lock,
      segments,
      active,
      nextSeq,
      cursor,
      diskBytes,
      tornTailBytes,
      wallClock,
      inlineWrites: inlineWrites ?? (await isMemoryBacked(options.dir)),
    })
    if (headerDamage) {
      log.#stats.corruptRegions++
      log.#stats.corruptBytes += SEGMENT_HEADER_BYTES
      if (channels.corruption.hasSubscribers) {
        channels.corruption.publish({
          segment: headerDamage,
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
        chunk.writeUInt32BE(size, offset)
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
    if (state === 'failed') return this.#failure
    if (state === 'closing' || state === 'closed') {
      return new SpillwayError('SPW_ERR_LOG_CLOSED', 'the log is closed', {
        details: { dir: this.options.dir },
      })
    }
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
    if (this.status.is('failed')) throw this.#failure
    // Split the batch at append boundaries so segments stay near segmentBytes; an append is never split.
    let index = 0
    while (index < batch.chunks.length) {
      let active = this.#segments.at(-1) as Segment
      const first = batch.chunks[index] as Buffer
      if (active.size > SEGMENT_HEADER_BYTES && active.size + first.length > this.options.segmentBytes) {
        await this.#roll((batch.waiters[index] as Waiter).result.firstSeq)
        active = this.#segments.at(-1) as Segment
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
  }

  /** Keeps the chunks just written at `position` of segment `base` in the tail cache. */
  #cacheWritten(batch: Batch, from: number, to: number, base: bigint, position: number): void {
    if (this.options.tailCacheBytes === 0) return
    this.#tail ??= new TailRing(this.options.tailCacheBytes)
    let offset = position
    for (let i = from; i < to; i++) {
      // one chunk and one waiter per append; a chunk the ring has no room for is simply not cached
      const chunk = batch.chunks[i] as Buffer
      const { firstSeq, count } = (batch.waiters[i] as Waiter).result
      this.#tail.take(chunk, { firstSeq, endSeq: firstSeq + BigInt(count), segment: base, offset })
      offset += chunk.length
    }
  }

  /**
   * @internal used by LogReader: durable records from `position` that are still in the tail cache, in
   * order and within the limits; none when the cache does not hold the record at that exact place.
   */
  _cached(position: LogPosition, maxRecords: number, maxBytes: number): LogRecord[] {
    const durable = this.#durable.seq
    const tail = this.#tail
    if (!tail || tail.size === 0 || position.seq >= durable) return []
    // the chunk holding position.seq: binary search over the (seq-ordered) cached chunks
    let lo = 0
    let hi = tail.size - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if ((tail.at(mid) as RingEntry<CachedChunk>).value.firstSeq <= position.seq) lo = mid
      else hi = mid - 1
    }
    const out: LogRecord[] = []
    let bytes = 0
    let at = position
    for (let index = lo; index < tail.size; index++) {
      // one cached chunk is one frame, one append; the reader is at its start (or inside it, at its start)
      const { view: frame, value: c } = tail.at(index) as RingEntry<CachedChunk>
      if (c.segment !== at.segment || at.offset !== c.offset) break
      const count = frame.readUInt32BE(26)
      const timestamp = readMillis(frame, 18)
      const end: LogPosition = { seq: c.endSeq, segment: c.segment, offset: c.offset + frame.length }
      let o = FRAME_HEADER_BYTES
      let seq = c.firstSeq
      for (let i = 0; i < count; i++) {
        const size = frame.readUInt32BE(o)
        // one bigint per record: each is allocated on the heap
        const following = seq + 1n
        o += ENTRY_HEADER_BYTES
        if (seq >= at.seq) {
          if (seq !== at.seq || seq >= durable || out.length >= maxRecords || bytes >= maxBytes)
            return this.#served(out)
          const next = i === count - 1 ? end : { seq: following, segment: c.segment, offset: c.offset }
          out.push({ seq, timestamp, payload: frame.subarray(o, o + size), next })
          bytes += ENTRY_HEADER_BYTES + size
          at = next
        }
        o += size
        seq = following
      }
    }
    return this.#served(out)
  }

  #served(records: LogRecord[]): LogRecord[] {
    this.#stats.cachedReads += records.length
    return records
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
    const active = this.#segments.at(-1) as Segment
    this.#durable = { seq: nextSeq, segment: active.base, offset: active.size }
    this.emit('durable')
  }

  async #roll(base: bigint): Promise<void> {
    // under the interval policy, records written to the old segment become durable with this sync
    await this.#datasync()
    const waiters = this.#unsynced
    this.#unsynced = []
    const old = this.#segments.at(-1) as Segment
    if (waiters.length > 0) {
      const last = waiters.at(-1) as Waiter
      this.#durable = {
        seq: last.result.firstSeq + BigInt(last.result.count),
        segment: old.base,
        offset: old.size,
      }
    }
    const path = join(this.options.dir, segmentFileName(base))
    const handle = await open(path, segmentWriteFlags(this.options.fsync))
    try {
      await writeFully(handle, [encodeSegmentHeader(base)], SEGMENT_HEADER_BYTES, 0, false)
      await handle.sync()
      await fsyncDirectory(this.options.dir)
    } catch (error) {
      await handle.close().catch(() => undefined)
      await rm(path, { force: true }).catch(() => undefined)
      throw error
    }
    await this.#active.close()
    this.#active = handle
    this.#segments.push({ base, path, size: SEGMENT_HEADER_BYTES })
    this.#diskBytes += SEGMENT_HEADER_BYTES
    for (const w of waiters) w.resolve(w.result)
    this.emit('durable')
  }

  /** ENOSPC is a full disk: refuse quickly and probe until space returns. Anything else fails the log. */
  async #onWriteError(error: unknown): Promise<SpillwayError> {
    const code = (error as NodeJS.ErrnoException).code
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
      `the local log in ${this.options.dir} failed (${code ?? (error as Error).message}); it refuses appends until reopened`,
      { cause: error, details: { dir: this.options.dir } },
    )
    if (this.status.canTransitionTo('failed')) {
      this.#failure = failure
      this.status.transitionTo('failed', failure.message)
    }
    return failure
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
    return new LogReader(this, this.#cursor)
  }

  get cursor(): LogPosition {
    return this.#cursor
  }

  /** @internal used by LogReader */
  _segmentsFrom(base: bigint): { segment: Segment; end: number; active: boolean } | undefined {
    const index = this.#segments.findIndex((s) => s.base === base)
    if (index < 0) return undefined
    const segment = this.#segments[index] as Segment
    const active = index === this.#segments.length - 1
    const end =
      this.#durable.segment === segment.base
        ? this.#durable.offset
        : active
          ? SEGMENT_HEADER_BYTES
          : segment.size
    return { segment, end, active }
  }

  /** @internal */
  _nextSegment(base: bigint): Segment | undefined {
    const index = this.#segments.findIndex((s) => s.base === base)
    const next = this.#segments[index + 1]
    // a segment is only left behind once everything up to the durable end lies beyond it
    return next && this.#durable.segment >= next.base ? next : undefined
  }

  /** @internal */
  _firstSegmentAtOrAfter(seq: bigint): Segment | undefined {
    return this.#segments.find((s) => s.base >= seq) ?? this.#segments.at(-1)
  }

  /** @internal */
  _reportCorruption(segment: Segment, corruption: Corruption): void {
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
    const tail = this.#tail
    while (tail && tail.size > 0 && (tail.at(0) as RingEntry<CachedChunk>).value.endSeq <= position.seq)
      tail.releaseOldest()
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
      const first = this.#segments[0] as Segment
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
    const located = this._segmentsFrom(this.#cursor.segment)
    const segment = located?.segment ?? this._firstSegmentAtOrAfter(this.#cursor.seq)
    if (!segment) return
    const offset = located ? this.#cursor.offset : SEGMENT_HEADER_BYTES
    // delivery usually reads from the tail cache, and then the cursor's frame is its oldest chunk
    const oldest = this.#tail?.at(0)
    if (oldest && oldest.value.segment === segment.base && oldest.value.offset === offset) {
      this.#cursorTimestamp = readMillis(oldest.view, 18)
      return
    }
    let handle: FileHandle | undefined
    try {
      handle = await open(segment.path, 'r')
      const header = Buffer.alloc(RECORD_HEADER_BYTES)
      const { bytesRead } = await handle.read(header, 0, RECORD_HEADER_BYTES, offset)
      if (bytesRead === RECORD_HEADER_BYTES) this.#cursorTimestamp = readMillis(header, 18)
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
      tailCacheBytes: this.#tail?.used ?? 0,
      inlineWrites: this.#inlineWrites,
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

/**
 * How a segment is opened for appending. Under fsync 'always' it is O_DSYNC, so one write is also the
 * sync: one trip through the thread pool per group commit instead of two (write, then fdatasync).
 */
function segmentWriteFlags(fsync: LogOptions['fsync']): number {
  const { O_WRONLY, O_CREAT, O_TRUNC, O_DSYNC } = constants
  return O_WRONLY | O_CREAT | O_TRUNC | (fsync === 'always' ? O_DSYNC : 0)
}

/** The write arena's size: frames waiting for their write; a frame that finds it full gets a buffer of its own. */
const WRITE_ARENA_BYTES = 4 * 1024 * 1024

/** Filesystems whose files live in memory (statfs f_type): tmpfs and ramfs. */
const MEMORY_FILESYSTEMS = new Set([0x01021994, 0x858458f6])

async function isMemoryBacked(dir: string): Promise<boolean> {
  if (process.platform !== 'linux') return false
  try {
    return MEMORY_FILESYSTEMS.has((await statfs(dir)).type)
  } catch {
    return false
  }
}

/**
 * writev may write fewer bytes than asked (a filesystem filling up does exactly that) without an error.
 * Keep writing the rest: either it all lands, or the next call fails with the real errno (ENOSPC).
 * `inline` writes on this thread (see LogStats.inlineWrites).
 */
async function writeFully(
  file: FileHandle,
  chunks: Buffer[],
  total: number,
  position: number,
  inline: boolean,
): Promise<void> {
  let written = 0
  let pending = chunks
  while (written < total) {
    const bytesWritten = inline
      ? writevSync(file.fd, pending, position + written)
      : (await file.writev(pending, position + written)).bytesWritten
    if (bytesWritten === 0) throw Object.assign(new Error('write made no progress'), { code: 'ENOSPC' })
    written += bytesWritten
    if (written < total) {
      let skip = bytesWritten
      const rest: Buffer[] = []
      for (const chunk of pending) {
        if (skip >= chunk.length) {
          skip -= chunk.length
          continue
        }
        rest.push(skip > 0 ? chunk.subarray(skip) : chunk)
        skip = 0
      }
      pending = rest
    }
  }
}

export interface ReadLimits {
  readonly maxBytes?: number
  readonly maxRecords?: number
}

/**
 * Streams durable records from a position. It holds at most one open segment file and one read window,
 * so its memory does not depend on the backlog.
 */
export class LogReader {
  readonly #log: DurableLog
  #position: LogPosition
  #handle: { base: bigint; file: FileHandle } | undefined

  constructor(log: DurableLog, start: LogPosition) {
    this.#log = log
    this.#position = start
  }

  get position(): LogPosition {
    return this.#position
  }

  /** Moves back to a position (default: the delivered cursor), e.g. to redeliver after a failed send. */
  rewind(to: LogPosition = this.#log.cursor): void {
    this.#position = to
  }

  /** The next records in order, or none if nothing durable is past the position yet. */
  async read(limits: ReadLimits = {}): Promise<LogRecord[]> {
    const maxBytes = limits.maxBytes ?? 1 << 20
    const maxRecords = limits.maxRecords ?? 10_000
    const out: LogRecord[] = []
    let bytes = 0
    for (;;) {
      // records still in memory are taken from there; the disk is read for the rest
      const cached = this.#log._cached(this.#position, maxRecords - out.length, maxBytes - bytes)
      if (cached.length > 0) {
        for (const r of cached) {
          out.push(r)
          bytes += ENTRY_HEADER_BYTES + r.payload.length
        }
        this.#position = (cached.at(-1) as LogRecord).next
        if (out.length >= maxRecords || bytes >= maxBytes) return out
        continue
      }
      let located = this.#log._segmentsFrom(this.#position.segment)
      if (!located) {
        // our segment was removed (it was delivered): continue at the cursor
        const cursor = this.#log.cursor
        this.#position = cursor
        located = this.#log._segmentsFrom(cursor.segment)
        if (!located) {
          const next = this.#log._firstSegmentAtOrAfter(cursor.seq)
          if (!next) return out
          this.#position = { seq: cursor.seq, segment: next.base, offset: SEGMENT_HEADER_BYTES }
          continue
        }
      }
      const { segment, end } = located
      if (this.#position.offset < end) {
        const file = await this.#open(segment)
        let lastSeq = this.#position.seq - 1n
        for await (const batch of scanSegmentBatches(file, {
          start: this.#position.offset,
          end,
          maxPayload: this.#log.options.maxRecordBytes,
          lastSeq,
          chunkBytes: Math.min(this.#log.options.readChunkBytes, Math.max(maxBytes, 64 * 1024)),
        })) {
          for (const item of batch) {
            if (item.kind === 'corruption') {
              this.#log._reportCorruption(segment, item.corruption)
              if (item.corruption.tail)
                this.#position = { seq: lastSeq + 1n, segment: segment.base, offset: end }
              continue
            }
            const { record } = item
            // inside a frame the position stays at the frame's start; after its last record, past it
            const next: LogPosition = {
              seq: record.seq + 1n,
              segment: segment.base,
              offset: record.last ? record.offset + record.size : record.offset,
            }
            out.push({ seq: record.seq, timestamp: record.timestamp, payload: record.payload, next })
            bytes += ENTRY_HEADER_BYTES + record.payload.length
            lastSeq = record.seq
            this.#position = next
            if (out.length >= maxRecords || bytes >= maxBytes) return out
          }
        }
      }
      const following = this.#log._nextSegment(segment.base)
      if (!following) return out
      this.#position = { seq: this.#position.seq, segment: following.base, offset: SEGMENT_HEADER_BYTES }
    }
  }

  async #open(segment: Segment): Promise<FileHandle> {
    if (this.#handle?.base === segment.base) return this.#handle.file
    await this.#handle?.file.close().catch(() => undefined)
    const file = await open(segment.path, 'r')
    this.#handle = { base: segment.base, file }
    return file
  }

  async close(): Promise<void> {
    await this.#handle?.file.close().catch(() => undefined)
    this.#handle = undefined
  }
}
