/**
 * The records a partition fetched and has not finished, in offset order: appended as they are fetched,
 * finished in any order. Parallel arrays behind a moving head rather than a Map keyed by bigint: no entry
 * object per record, nothing to hash, and a record finishing in order (the usual case) is found at the
 * head; others by binary search, since offsets only grow.
 */
export class WaitingRecords {
  #offsets: bigint[] = []
  #timestamps: number[] = []
  /** Bytes per record; -1 once finished. */
  #sizes: number[] = []
  /** The first record not finished (or the end). */
  #head = 0
  #count = 0

  /** Records waiting. */
  get size(): number {
    return this.#count
  }

  /**
   * Adds a fetched record; returns the bytes of the one it replaces when that offset was waiting already
   * (0 otherwise), so the caller's byte count stays right.
   */
  add(offset: bigint, timestamp: number, size: number): number {
    const end = this.#offsets.length
    if (end === this.#head || (this.#offsets[end - 1] as bigint) < offset) {
      this.#offsets.push(offset)
      this.#timestamps.push(timestamp)
      this.#sizes.push(size)
      this.#count++
      return 0
    }
    // not after the last one: a record fetched again, or one out of order
    const at = this.#search(offset)
    if (this.#offsets[at] === offset) {
      const prior = this.#sizes[at] as number
      this.#timestamps[at] = timestamp
      this.#sizes[at] = size
      // still waiting: it is replaced; finished: it waits again
      if (prior >= 0) return prior
    } else {
      this.#offsets.splice(at, 0, offset)
      this.#timestamps.splice(at, 0, timestamp)
      this.#sizes.splice(at, 0, size)
    }
    this.#count++
    return 0
  }

  /** Finishes a record; returns its bytes, or -1 when it was not waiting. */
  finish(offset: bigint): number {
    let at = this.#head
    if (this.#offsets[at] !== offset) {
      at = this.#search(offset)
      if (this.#offsets[at] !== offset) return -1
    }
    const size = this.#sizes[at] as number
    if (size < 0) return -1
    this.#sizes[at] = -1
    this.#count--
    if (at === this.#head) this.#advance()
    return size
  }

  /** The timestamp of the oldest record still waiting, or undefined. */
  oldestTimestamp(): number | undefined {
    return this.#count === 0 ? undefined : this.#timestamps[this.#head]
  }

  clear(): void {
    this.#offsets.length = 0
    this.#timestamps.length = 0
    this.#sizes.length = 0
    this.#head = 0
    this.#count = 0
  }

  /** The index of `offset` among those not yet passed by the head, or where it would go. */
  #search(offset: bigint): number {
    let lo = this.#head
    let hi = this.#offsets.length
    while (lo < hi) {
      const mid = (lo + hi) >>> 1
      if ((this.#offsets[mid] as bigint) < offset) lo = mid + 1
      else hi = mid
    }
    return lo
  }

  /** Moves the head past finished records, and drops the finished front once it is most of the arrays. */
  #advance(): void {
    const sizes = this.#sizes
    let head = this.#head
    while (head < sizes.length && (sizes[head] as number) < 0) head++
    if (head === sizes.length) {
      // all finished (the count is 0): start over in the same arrays
      this.clear()
      return
    }
    if (head > 1024 && head * 2 > sizes.length) {
      this.#offsets = this.#offsets.slice(head)
      this.#timestamps = this.#timestamps.slice(head)
      this.#sizes = sizes.slice(head)
      head = 0
    }
    this.#head = head
  }
}
