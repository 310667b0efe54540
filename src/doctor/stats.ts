/**
 * Small streaming statistics for the doctor's samples: a bounded reservoir for percentiles, a Space-Saving
 * top-k, and a stable 32-bit hash for selecting event ids.
 */

/** The p-th percentile (0–100) of values, nearest rank; 0 for none. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return 0
  const sorted = [...values].sort((a, b) => a - b)
  const rank = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[rank] as number
}

export function median(values: readonly number[]): number {
  if (values.length === 0) return 0
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2 === 1
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
}

/**
 * Keeps a uniform sample of at most `capacity` values from a stream (Vitter's algorithm R) with a seeded
 * generator, so a run is repeatable.
 */
export class Reservoir {
  readonly values: number[] = []
  #seen = 0
  #seed = 0x2545f491

  readonly capacity: number

  constructor(capacity: number) {
    this.capacity = capacity
  }

  add(value: number): void {
    this.#seen++
    if (this.values.length < this.capacity) {
      this.values.push(value)
      return
    }
    const slot = Math.floor(this.#random() * this.#seen)
    if (slot < this.capacity) this.values[slot] = value
  }

  get seen(): number {
    return this.#seen
  }

  #random(): number {
    // xorshift32
    let x = this.#seed
    x ^= x << 13
    x ^= x >>> 17
    x ^= x << 5
    this.#seed = x >>> 0
    return this.#seed / 0x1_0000_0000
  }
}

/**
 * Space-Saving (Metwally et al.): the heaviest `k` items of a stream by weight, each with an upper bound on
 * its overcount. Exact while there are at most `k` distinct items.
 */
export class TopK {
  readonly #counts = new Map<string, { weight: number; error: number }>()

  readonly k: number

  constructor(k: number) {
    this.k = k
  }

  add(item: string, weight = 1): void {
    const entry = this.#counts.get(item)
    if (entry) {
      entry.weight += weight
      return
    }
    if (this.#counts.size < this.k) {
      this.#counts.set(item, { weight, error: 0 })
      return
    }
    let minItem = ''
    let min = Number.POSITIVE_INFINITY
    for (const [key, e] of this.#counts) {
      if (e.weight < min) {
        min = e.weight
        minItem = key
      }
    }
    this.#counts.delete(minItem)
    this.#counts.set(item, { weight: min + weight, error: min })
  }

  /** The items, heaviest first. */
  top(n = this.k): { item: string; weight: number; error: number }[] {
    return [...this.#counts]
      .map(([item, e]) => ({ item, weight: e.weight, error: e.error }))
      .sort((a, b) => b.weight - a.weight)
      .slice(0, n)
  }
}

/** FNV-1a, 32 bits, over the string's UTF-16 code units. */
export function hash32(text: string): number {
  let h = 0x811c9dc5
  for (let i = 0; i < text.length; i++) {
    h ^= text.charCodeAt(i)
    h = Math.imul(h, 0x01000193)
  }
  return h >>> 0
}
