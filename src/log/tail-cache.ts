/**
 * The tail cache: copies of the frames just written, oldest first, in one buffer allocated once
 * (tail-ring.ts), so delivery reads what it needs without going back to the disk. Each entry is one
 * frame (one append) and says where it lies on disk; a reader is served from it only when it stands
 * exactly at a cached frame's place. Delivered frames leave it first-in first-out, and a frame it has no
 * room for is simply not cached (delivery then reads it from disk).
 */
import type { LogPosition } from './checkpoint.ts'
import {
  ENTRY_HEADER_BYTES,
  entrySize,
  FRAME_HEADER_BYTES,
  frameRecordCount,
  frameTimestamp,
} from './format.ts'
import { type RingEntry, TailRing } from './tail-ring.ts'
import type { LogRecord } from './types.ts'

/** Where a cached frame lies on disk, and which records it holds. */
interface CachedFrame {
  readonly firstSeq: bigint
  /** Seq after its last record. */
  readonly endSeq: bigint
  readonly segment: bigint
  readonly offset: number
}

export class TailCache {
  readonly #ring: TailRing<CachedFrame>
  /** Records served from the cache instead of the disk. */
  served = 0

  constructor(bytes: number) {
    this.#ring = new TailRing(bytes)
  }

  get usedBytes(): number {
    return this.#ring.used
  }

  /** Keeps a copy of a frame just written at `offset` of segment `segment`. */
  take(frame: Buffer, firstSeq: bigint, count: number, segment: bigint, offset: number): void {
    this.#ring.take(frame, { firstSeq, endSeq: firstSeq + BigInt(count), segment, offset })
  }

  /**
   * Durable records from `position` (below `durableSeq`) that the cache holds, in order and within the
   * limits; none when it does not hold the record at that exact place.
   */
  read(position: LogPosition, durableSeq: bigint, maxRecords: number, maxBytes: number): LogRecord[] {
    const ring = this.#ring
    if (ring.size === 0 || position.seq >= durableSeq) return []
    // the frame holding position.seq: binary search over the (seq-ordered) cached frames
    let lo = 0
    let hi = ring.size - 1
    while (lo < hi) {
      const mid = (lo + hi + 1) >> 1
      if ((ring.at(mid) as RingEntry<CachedFrame>).value.firstSeq <= position.seq) lo = mid
      else hi = mid - 1
    }
    const out: LogRecord[] = []
    let bytes = 0
    let at = position
    for (let index = lo; index < ring.size; index++) {
      // the reader is at the frame's start (positions inside a frame stay at its start)
      const { view: frame, value: c } = ring.at(index) as RingEntry<CachedFrame>
      if (c.segment !== at.segment || at.offset !== c.offset) break
      const count = frameRecordCount(frame)
      const timestamp = frameTimestamp(frame)
      const end: LogPosition = { seq: c.endSeq, segment: c.segment, offset: c.offset + frame.length }
      let o = FRAME_HEADER_BYTES
      let seq = c.firstSeq
      for (let i = 0; i < count; i++) {
        const size = entrySize(frame, o)
        // one bigint per record: each is allocated on the heap
        const following = seq + 1n
        o += ENTRY_HEADER_BYTES
        if (seq >= at.seq) {
          if (seq !== at.seq || seq >= durableSeq || out.length >= maxRecords || bytes >= maxBytes)
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
    this.served += records.length
    return records
  }

  /** Delivered frames (every record before `seq`) leave the cache, and their space is taken again. */
  release(seq: bigint): void {
    const ring = this.#ring
    while (ring.size > 0 && (ring.at(0) as RingEntry<CachedFrame>).value.endSeq <= seq) ring.releaseOldest()
  }

  /** The append time of the oldest cached frame when it lies at exactly this place on disk. */
  oldestTimestampAt(segment: bigint, offset: number): number | undefined {
    const oldest = this.#ring.at(0)
    if (oldest && oldest.value.segment === segment && oldest.value.offset === offset)
      return frameTimestamp(oldest.view)
    return undefined
  }
}
