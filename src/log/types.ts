/** The durable log's public types: records, append results, stats, events, read limits. */
import type { LogPosition } from './checkpoint.ts'
import type { Corruption } from './scanner.ts'

export type { LogPosition } from './checkpoint.ts'

/**
 * open: appending. disk-full: ENOSPC, probing for space. unwritable: a write failed (EPERM, EIO, …),
 * probing until a write succeeds again. failed: the directory or its segment was removed; only a
 * restart recovers (nothing can make the lost files whole). closing, closed.
 */
export type LogState = 'open' | 'disk-full' | 'unwritable' | 'failed' | 'closing' | 'closed'

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
  /** How long the log has been unable to write (unwritable or failed), ms; 0 while it writes. */
  readonly faultyForMs: number
  /** What went wrong last (the write error, or the removal), while faulty. */
  readonly fault: string | undefined
}

export interface LogEvents {
  durable: []
  corruption: [CorruptionReport]
  fsync: [durationMs: number]
}

export interface ReadLimits {
  readonly maxBytes?: number
  readonly maxRecords?: number
}
