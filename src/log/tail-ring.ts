/**
 * The memory behind the log's tail cache: one buffer, allocated once, handed out first-in first-out.
 *
 * Copies of just-written chunks live here until delivery commits past them. Keeping the chunks
 * themselves would leave a stream of large buffers to die only at a full garbage collection, and the
 * process's RSS would climb by tens of MB between collections. Regions are freed in the order they
 * were taken, so the live bytes are one run that may wrap around the end:
 *
 *   [ free | oldest … newest | free ]       or       [ … newest | free | oldest … ]
 */
export interface RingRegion {
  readonly start: number
  readonly length: number
}

/** A live region: where it lies, a view of its bytes, and what its owner keeps with it. */
export interface RingEntry<T> {
  readonly region: RingRegion
  readonly view: Buffer
  readonly value: T
}

export class TailRing<T> {
  readonly capacity: number
  #buffer: Buffer | undefined
  /** Live entries, oldest at #first. */
  #entries: (RingEntry<T> | undefined)[] = []
  #first = 0
  #used = 0

  constructor(capacity: number) {
    this.capacity = capacity
  }

  /** Bytes held by live regions. */
  get used(): number {
    return this.#used
  }

  /** Number of live entries. */
  get size(): number {
    return this.#entries.length - this.#first
  }

  /** The i-th live entry, oldest first. */
  at(i: number): RingEntry<T> | undefined {
    return this.#entries[this.#first + i]
  }

  /** Copies `bytes` in and returns the entry, or undefined when there is no room for them now. */
  take(bytes: Buffer, value: T): RingEntry<T> | undefined {
    const entry = this.reserve(bytes.length, value)
    if (entry) bytes.copy(entry.view)
    return entry
  }

  /** Reserves `length` bytes for the caller to fill in place, or undefined when there is no room now. */
  reserve(length: number, value: T): RingEntry<T> | undefined {
    if (length === 0 || length > this.capacity) return undefined
    let start: number
    const oldest = this.at(0)
    if (!oldest) start = 0
    else {
      const head = oldest.region.start
      const newest = (this.#entries.at(-1) as RingEntry<T>).region
      const tail = newest.start + newest.length
      // live bytes are never empty here, so tail === head means wrapped and full
      if (tail > head) {
        // not wrapped: room after the newest, or else at the very beginning, before the oldest
        if (this.capacity - tail >= length) start = tail
        else if (head >= length) start = 0
        else return undefined
      } else {
        // wrapped: room between the newest and the oldest
        if (head - tail >= length) start = tail
        else return undefined
      }
    }
    this.#buffer ??= Buffer.allocUnsafeSlow(this.capacity)
    const entry = { region: { start, length }, view: this.#buffer.subarray(start, start + length), value }
    this.#entries.push(entry)
    this.#used += length
    return entry
  }

  /** Gives back the newest region: one just reserved that will not be used after all. */
  releaseNewest(): void {
    if (this.size === 0) return
    const newest = this.#entries.pop() as RingEntry<T>
    this.#used -= newest.region.length
    if (this.#first === this.#entries.length) {
      this.#entries = []
      this.#first = 0
    }
  }

  /** Frees the oldest region; regions go back in the order they were taken. */
  releaseOldest(): void {
    const oldest = this.at(0)
    if (!oldest) return
    this.#entries[this.#first] = undefined
    this.#first++
    this.#used -= oldest.region.length
    if (this.#first === this.#entries.length) {
      this.#entries = []
      this.#first = 0
    } else if (this.#first > 1024 && this.#first * 2 > this.#entries.length) {
      this.#entries = this.#entries.slice(this.#first)
      this.#first = 0
    }
  }
}
