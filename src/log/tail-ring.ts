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

export class TailRing {
  readonly capacity: number
  #buffer: Buffer | undefined
  readonly #regions: RingRegion[] = []
  #first = 0
  #used = 0

  constructor(capacity: number) {
    this.capacity = capacity
  }

  /** Bytes held by live regions. */
  get used(): number {
    return this.#used
  }

  /** Copies `bytes` in and returns the view, or undefined when there is no room for them now. */
  take(bytes: Buffer): { region: RingRegion; view: Buffer } | undefined {
    const length = bytes.length
    if (length === 0 || length > this.capacity) return undefined
    let start: number
    if (this.#first === this.#regions.length) start = 0
    else {
      const head = (this.#regions[this.#first] as RingRegion).start
      const newest = this.#regions.at(-1) as RingRegion
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
    const region = { start, length }
    this.#regions.push(region)
    this.#used += length
    bytes.copy(this.#buffer, start)
    return { region, view: this.#buffer.subarray(start, start + length) }
  }

  /** Frees the oldest region; regions go back in the order they were taken. */
  releaseOldest(): void {
    const oldest = this.#regions[this.#first]
    if (!oldest) return
    this.#regions[this.#first] = undefined as unknown as RingRegion
    this.#first++
    this.#used -= oldest.length
    if (this.#first === this.#regions.length) {
      this.#regions.length = 0
      this.#first = 0
      return
    }
    if (this.#first > 1024 && this.#first * 2 > this.#regions.length) {
      this.#regions.splice(0, this.#first)
      this.#first = 0
    }
  }
}
