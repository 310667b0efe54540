/**
 * Event ids already handled, so a copy of an event (incident 4: the outbox that multiplied them) is
 * skipped. The default store is a window in memory bounded by count, bytes and age; the oldest ids leave
 * first. `DedupeStore` is the small interface a sink implements to make the window durable (for example,
 * the primary key of the table it writes).
 *
 * An id is remembered only once its handler completed: a record whose handler failed or was abandoned is
 * not a duplicate of itself when it comes again.
 */

export interface DedupeStore {
  /** True when `id` was handled within the window. */
  has(id: string): boolean | Promise<boolean>
  /** Remembers `id` as handled. */
  add(id: string): void | Promise<void>
}

export interface DedupeWindowOptions {
  /** Most ids kept. Default 100,000. */
  readonly maxIds?: number
  /** Most bytes of ids kept (their UTF-16 length × 2, plus 64 per entry). Default 16 MiB. */
  readonly maxBytes?: number
  /** How long an id is remembered, ms. Default 1 hour. */
  readonly ttlMs?: number
  /** Monotonic clock (injected in tests). */
  readonly now?: () => number
}

const ENTRY_OVERHEAD = 64

export class DedupeWindow implements DedupeStore {
  /** id → when it was added. */
  readonly #ids = new Map<string, number>()
  /**
   * The ids in the order they were added, oldest at `#head`. Eviction reads from the front here rather
   * than iterating the Map, whose iteration must skip every entry deleted at its front (slow once many
   * have left). An entry whose time no longer matches the Map's was added again later and is skipped.
   */
  #order: { id: string; at: number }[] = []
  #head = 0
  readonly #maxIds: number
  readonly #maxBytes: number
  readonly #ttlMs: number
  readonly #now: () => number
  #bytes = 0

  constructor(options: DedupeWindowOptions = {}) {
    this.#maxIds = options.maxIds ?? 100_000
    this.#maxBytes = options.maxBytes ?? 16 * 1024 * 1024
    this.#ttlMs = options.ttlMs ?? 60 * 60 * 1000
    this.#now = options.now ?? (() => performance.now())
  }

  get size(): number {
    return this.#ids.size
  }

  get bytes(): number {
    return this.#bytes
  }

  has(id: string): boolean {
    const at = this.#ids.get(id)
    if (at === undefined) return false
    if (this.#now() - at > this.#ttlMs) {
      this.#forget(id)
      return false
    }
    return true
  }

  add(id: string): void {
    const at = this.#now()
    if (this.#ids.has(id)) this.#forget(id)
    this.#ids.set(id, at)
    this.#order.push({ id, at })
    this.#bytes += id.length * 2 + ENTRY_OVERHEAD
    this.#evict(at)
  }

  #forget(id: string): void {
    if (this.#ids.delete(id)) this.#bytes -= id.length * 2 + ENTRY_OVERHEAD
  }

  /** The oldest leave first: past the count or byte bound, or older than the TTL. */
  #evict(now: number): void {
    const cutoff = now - this.#ttlMs
    while (this.#head < this.#order.length) {
      const oldest = this.#order[this.#head] as { id: string; at: number }
      const current = this.#ids.get(oldest.id)
      if (current === oldest.at) {
        if (this.#ids.size <= this.#maxIds && this.#bytes <= this.#maxBytes && oldest.at >= cutoff) break
        this.#forget(oldest.id)
      }
      this.#head++
    }
    // drop the consumed front now and then, so the array does not grow with every id ever added
    if (this.#head > 1024 && this.#head * 2 > this.#order.length) {
      this.#order = this.#order.slice(this.#head)
      this.#head = 0
    }
  }
}
