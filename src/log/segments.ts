/**
 * The log's segment files, oldest first; the last is the active one being appended to. The list is
 * the one place that knows which segments a reader may enter: a segment is readable up to the durable
 * end, and a reader moves on to the next one only once the durable end lies beyond it.
 */
import type { LogPosition } from './checkpoint.ts'
import { SEGMENT_HEADER_BYTES } from './format.ts'

export interface Segment {
  readonly base: bigint
  readonly path: string
  size: number
}

export class SegmentList {
  readonly #segments: Segment[]

  constructor(segments: Segment[]) {
    this.#segments = segments
  }

  get length(): number {
    return this.#segments.length
  }

  get first(): Segment | undefined {
    return this.#segments[0]
  }

  get active(): Segment {
    return this.#segments.at(-1) as Segment
  }

  push(segment: Segment): void {
    this.#segments.push(segment)
  }

  /** Drops the oldest segment (after retention removed its file). */
  shift(): Segment | undefined {
    return this.#segments.shift()
  }

  totalBytes(): number {
    return this.#segments.reduce((sum, s) => sum + s.size, 0)
  }

  /** The segment with this base, and how far it may be read given the durable end. */
  locate(base: bigint, durable: LogPosition): { segment: Segment; end: number } | undefined {
    const index = this.#segments.findIndex((s) => s.base === base)
    if (index < 0) return undefined
    const segment = this.#segments[index] as Segment
    const active = index === this.#segments.length - 1
    const end =
      durable.segment === segment.base ? durable.offset : active ? SEGMENT_HEADER_BYTES : segment.size
    return { segment, end }
  }

  /** The segment after `base`, once everything up to the durable end lies beyond it. */
  next(base: bigint, durable: LogPosition): Segment | undefined {
    const index = this.#segments.findIndex((s) => s.base === base)
    const next = this.#segments[index + 1]
    return next && durable.segment >= next.base ? next : undefined
  }

  /** The first segment whose records start at or after `seq` (else the active one). */
  firstAtOrAfter(seq: bigint): Segment | undefined {
    return this.#segments.find((s) => s.base >= seq) ?? this.#segments.at(-1)
  }
}
