/**
 * What may be committed for one partition. Records are handed out in offset order and may complete in
 * any order (different keys run in parallel). Only the contiguous prefix of completed offsets is
 * committed: the watermark, the offset of the first record not yet completed. Offsets completed beyond it
 * travel in the commit's metadata (offset-encoding.ts), so after a crash or a rebalance the next owner
 * skips them instead of handling them again; what is handled twice is then bounded by what was in flight.
 *
 * Invariants:
 *   - watermark <= every offset in `completedBeyond`; the watermark never moves back.
 *   - an offset is completed at most once; completing one below the watermark is a no-op.
 *   - offsets the previous owner completed (restored from metadata) are never handed to the handler.
 */
import { decodeCompleted, encodeCompleted } from './offset-encoding.ts'

export interface CommitPoint {
  /** The offset to commit: everything before it is done. */
  readonly offset: bigint
  /** Completed offsets beyond it, encoded (empty when none). */
  readonly metadata: string
}

export class CommitTracker {
  #watermark: bigint
  /** Completed offsets above the watermark. */
  readonly #completedBeyond = new Set<bigint>()
  /** Offsets restored from metadata: done by a previous owner, to be skipped when fetched again. */
  readonly #restored = new Set<bigint>()
  /**
   * Ranges [from, to) of offsets that hold no record to hand out: transaction markers, aborted records,
   * offsets compaction removed, records retention deleted. The watermark passes them as if done; they
   * need no metadata (a later fetch skips them again).
   */
  #skipped: [bigint, bigint][] = []
  #lastCommitted: CommitPoint | undefined
  readonly #maxMetadataBytes: number

  /**
   * `committed` is where the group's committed offset says to start; `metadata` its completed offsets
   * beyond, as this class encodes them (anything else is ignored).
   */
  constructor(committed: bigint, metadata: string | null | undefined, maxMetadataBytes = 4096) {
    this.#watermark = committed
    this.#maxMetadataBytes = maxMetadataBytes
    for (const offset of decodeCompleted(committed, metadata)) {
      this.#restored.add(offset)
      this.#completedBeyond.add(offset)
    }
    this.#advance()
  }

  get watermark(): bigint {
    return this.#watermark
  }

  /** Completed offsets above the watermark, waiting for the ones before them. */
  get pendingCompletions(): number {
    return this.#completedBeyond.size
  }

  /** True when the previous owner already handled this offset: skip it (and it counts as completed). */
  alreadyDone(offset: bigint): boolean {
    return offset < this.#watermark || this.#restored.has(offset)
  }

  complete(offset: bigint): void {
    if (offset < this.#watermark) return
    // in order, with nothing waiting beyond: the usual case, and no set to touch
    if (offset === this.#watermark && this.#completedBeyond.size === 0 && this.#skipped.length === 0) {
      this.#watermark = offset + 1n
      return
    }
    this.#completedBeyond.add(offset)
    this.#advance()
  }

  /** Offsets [from, to) hold no record for the handler: they count as done. */
  skip(from: bigint, to: bigint): void {
    if (to <= from || to <= this.#watermark) return
    this.#skipped.push([from, to])
    this.#advance()
  }

  #advance(): void {
    for (;;) {
      if (this.#completedBeyond.has(this.#watermark)) {
        this.#completedBeyond.delete(this.#watermark)
        this.#restored.delete(this.#watermark)
        this.#watermark++
        continue
      }
      const range = this.#skipped.find(([from, to]) => from <= this.#watermark && this.#watermark < to)
      if (!range) break
      for (const offset of this.#completedBeyond) if (offset < range[1]) this.#completedBeyond.delete(offset)
      this.#watermark = range[1]
    }
    if (this.#skipped.length > 0) this.#skipped = this.#skipped.filter(([, to]) => to > this.#watermark)
  }

  /** What to commit now, or undefined when it would repeat the last commit. */
  commitPoint(): CommitPoint | undefined {
    const point = {
      offset: this.#watermark,
      metadata: encodeCompleted(this.#watermark, this.#completedBeyond),
    }
    const last = this.#lastCommitted
    if (last && last.offset === point.offset && last.metadata === point.metadata) return undefined
    return point
  }

  /**
   * What to commit if `extra` offsets were completed too, without completing them: a transaction that
   * forwards records commits this, and completes them only once it has committed.
   */
  commitPointWith(extra: Iterable<bigint>): CommitPoint {
    const beyond = new Set(this.#completedBeyond)
    for (const offset of extra) if (offset >= this.#watermark) beyond.add(offset)
    let watermark = this.#watermark
    while (beyond.has(watermark)) {
      beyond.delete(watermark)
      watermark++
    }
    return { offset: watermark, metadata: encodeCompleted(watermark, beyond) }
  }

  /** Records that `point` was committed (so commitPoint() does not offer it again). */
  committed(point: CommitPoint): void {
    this.#lastCommitted = point
  }

  /**
   * How full the metadata is, 0…1 (and beyond). Past 0.75 the consumer stops fetching more for this
   * partition until the watermark moves, rather than losing track of completions it could not encode.
   */
  metadataPressure(): number {
    if (this.#completedBeyond.size === 0) return 0
    return encodeCompleted(this.#watermark, this.#completedBeyond).length / this.#maxMetadataBytes
  }
}
