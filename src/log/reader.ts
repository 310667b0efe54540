/**
 * Streams durable records from a position. It holds at most one open segment file and one read window,
 * so its memory does not depend on the backlog. It sees the log only through ReaderSource: the segment
 * list, the durable end, the delivered cursor, the tail cache and where to report damage.
 */
import { type FileHandle, open } from 'node:fs/promises'
import type { LogPosition } from './checkpoint.ts'
import { ENTRY_HEADER_BYTES, SEGMENT_HEADER_BYTES } from './format.ts'
import { type Corruption, scanSegmentBatches } from './scanner.ts'
import type { Segment, SegmentList } from './segments.ts'
import type { LogRecord, ReadLimits } from './types.ts'

/** What a reader needs of its log; the log hands one to each reader it makes. */
export interface ReaderSource {
  readonly maxRecordBytes: number
  readonly readChunkBytes: number
  readonly segments: SegmentList
  /** The delivered cursor. */
  cursor(): LogPosition
  /** Where durable bytes end: nothing past it is read. */
  durable(): LogPosition
  /** Records from `position` that the tail cache holds (see TailCache.read). */
  cached(position: LogPosition, maxRecords: number, maxBytes: number): LogRecord[]
  reportCorruption(segment: Segment, corruption: Corruption): void
}

export class LogReader {
  readonly #source: ReaderSource
  #position: LogPosition
  #handle: { base: bigint; file: FileHandle } | undefined

  constructor(source: ReaderSource, start: LogPosition) {
    this.#source = source
    this.#position = start
  }

  get position(): LogPosition {
    return this.#position
  }

  /** Moves back to a position (default: the delivered cursor), e.g. to redeliver after a failed send. */
  rewind(to: LogPosition = this.#source.cursor()): void {
    this.#position = to
  }

  /** The next records in order, or none if nothing durable is past the position yet. */
  async read(limits: ReadLimits = {}): Promise<LogRecord[]> {
    const source = this.#source
    const maxBytes = limits.maxBytes ?? 1 << 20
    const maxRecords = limits.maxRecords ?? 10_000
    const out: LogRecord[] = []
    let bytes = 0
    for (;;) {
      // records still in memory are taken from there; the disk is read for the rest
      const cached = source.cached(this.#position, maxRecords - out.length, maxBytes - bytes)
      if (cached.length > 0) {
        for (const r of cached) {
          out.push(r)
          bytes += ENTRY_HEADER_BYTES + r.payload.length
        }
        this.#position = (cached.at(-1) as LogRecord).next
        if (out.length >= maxRecords || bytes >= maxBytes) return out
        continue
      }
      const durable = source.durable()
      let located = source.segments.locate(this.#position.segment, durable)
      if (!located) {
        // our segment was removed (it was delivered): continue at the cursor
        const cursor = source.cursor()
        this.#position = cursor
        located = source.segments.locate(cursor.segment, durable)
        if (!located) {
          const next = source.segments.firstAtOrAfter(cursor.seq)
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
          maxPayload: source.maxRecordBytes,
          lastSeq,
          chunkBytes: Math.min(source.readChunkBytes, Math.max(maxBytes, 64 * 1024)),
        })) {
          for (const item of batch) {
            if (item.kind === 'corruption') {
              source.reportCorruption(segment, item.corruption)
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
      const following = source.segments.next(segment.base, source.durable())
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
