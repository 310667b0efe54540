/**
 * Which partitions go into the next fetch, and how many bytes each may bring. This is what keeps a
 * consumer from the lagging-partition incident: no partition waits behind another (only partitions with
 * buffer credit are asked for, and the order rotates after every response, the way the Java client moves
 * a partition that returned data to the end), and large records arrive several per fetch (a partition's
 * fetch size grows to the largest record batch it has seen).
 *
 * Budgets are in bytes: `maxBufferedBytes` for the process, shared evenly among the partitions that
 * have data (at least one fetch's worth each); an idle partition takes no share. A partition whose
 * buffer is full is left out of the next fetch (the fetch session forgets it) until the handlers drain
 * it. Pure: the fetch loop owns the I/O.
 */

export interface FetchPlanOptions {
  /** Bytes all partitions' buffers may hold together. */
  readonly maxBufferedBytes: number
  /** The smallest fetch size per partition. Default 1 MiB, Kafka's max.partition.fetch.bytes. */
  readonly minPartitionFetchBytes?: number
  /** The largest fetch size per partition, however large the records. Default 64 MiB. */
  readonly maxPartitionFetchBytes?: number
  /** How many of the largest batch seen one fetch should carry. Default 4. */
  readonly batchesPerFetch?: number
}

export interface PartitionRef {
  readonly topic: string
  readonly partition: number
}

interface PartitionState extends PartitionRef {
  buffered: number
  /** Its last fetch brought records, or it still holds some: it takes a share of the budget. */
  active: boolean
  largestBatch: number
  paused: boolean
}

/** From this size on a record batch counts as large (the lagging-partition incident's were ~800 KB). */
const LARGE_BATCH_BYTES = 512 * 1024

const key = (topic: string, partition: number): string => `${topic}\u0000${partition}`

export class FetchPlan {
  readonly #options: Required<FetchPlanOptions>
  /** In fetch order: the front goes first in the next request. */
  #order: PartitionState[] = []
  readonly #byKey = new Map<string, PartitionState>()

  constructor(options: FetchPlanOptions) {
    this.#options = {
      minPartitionFetchBytes: 1024 * 1024,
      maxPartitionFetchBytes: 64 * 1024 * 1024,
      batchesPerFetch: 4,
      ...options,
    }
  }

  /** The partitions assigned now; buffers of partitions no longer assigned are forgotten. */
  assign(partitions: readonly PartitionRef[]): void {
    const next: PartitionState[] = []
    const keep = new Map<string, PartitionState>()
    for (const p of partitions) {
      const k = key(p.topic, p.partition)
      const state = this.#byKey.get(k) ?? { ...p, buffered: 0, largestBatch: 0, paused: false, active: false }
      keep.set(k, state)
      next.push(state)
    }
    this.#byKey.clear()
    for (const [k, v] of keep) this.#byKey.set(k, v)
    // keep the existing rotation for partitions that stay; new ones go to the front (they have waited)
    const known = this.#order.filter((s) => keep.has(key(s.topic, s.partition)))
    const fresh = next.filter((s) => !known.includes(s))
    this.#order = [...fresh, ...known]
  }

  /**
   * Each active partition's share of the process budget. A partition whose last fetch brought nothing
   * and that holds nothing takes no share, so one backlogged partition beside idle ones may use the
   * whole budget. When idle partitions wake, the shares shrink; what the others already hold drains.
   */
  budget(): number {
    let count = 0
    for (const s of this.#order) if (s.active || s.buffered > 0) count++
    return Math.max(
      this.#options.minPartitionFetchBytes,
      Math.floor(this.#options.maxBufferedBytes / Math.max(1, count)),
    )
  }

  /**
   * How many bytes one fetch may bring for this partition: several of its largest batches (as many as
   * fit when they are large), but no more than half its budget (so the next fetch can go out while the
   * handlers work through this one), and always at least one of its largest batches.
   */
  fetchBytes(topic: string, partition: number): number {
    const state = this.#byKey.get(key(topic, partition))
    const largest = state?.largestBatch ?? 0
    // large batches: as much as half the share allows (the round trip is the cost); small ones: a few
    // batches (handling them is the cost, and a huge answer arrives as one lump of work)
    const few =
      largest >= LARGE_BATCH_BYTES ? Number.POSITIVE_INFINITY : largest * this.#options.batchesPerFetch
    const wanted = Math.max(largest, Math.min(few, this.budget() / 2))
    return Math.floor(
      Math.min(this.#options.maxPartitionFetchBytes, Math.max(this.#options.minPartitionFetchBytes, wanted)),
    )
  }

  /** Partitions left out of fetches for lack of buffer credit (not paused): their handlers are behind. */
  starved(leads: (p: PartitionRef) => boolean): PartitionRef[] {
    const budget = this.budget()
    return this.#order.filter((s) => leads(s) && !s.paused && s.buffered >= budget)
  }

  /**
   * The partitions of one broker to put in its next fetch, in order, with their fetch sizes: only those
   * with buffer credit and not paused.
   */
  next(leads: (p: PartitionRef) => boolean): { topic: string; partition: number; maxBytes: number }[] {
    const budget = this.budget()
    return this.#order
      .filter((s) => leads(s) && !s.paused && s.buffered < budget)
      .map((s) => ({
        topic: s.topic,
        partition: s.partition,
        maxBytes: this.fetchBytes(s.topic, s.partition),
      }))
  }

  /**
   * A fetch answered: each partition's bytes went into its buffer, and its largest record batch is
   * remembered. Partitions that returned data move to the end of the order.
   */
  received(
    results: readonly { topic: string; partition: number; bytes: number; largestBatch: number }[],
  ): void {
    const moved: PartitionState[] = []
    for (const r of results) {
      const state = this.#byKey.get(key(r.topic, r.partition))
      if (!state) continue
      state.buffered += r.bytes
      state.active = r.bytes > 0
      state.largestBatch = Math.max(state.largestBatch, r.largestBatch)
      if (r.bytes > 0) moved.push(state)
    }
    if (moved.length === 0) return
    this.#order = [...this.#order.filter((s) => !moved.includes(s)), ...moved]
  }

  /**
   * Handlers took `bytes` out of the partition's buffer (handled, or dropped on revocation). `partitionKey`
   * is `topic\u0000partition` when the caller has it already (it is called for every record done).
   */
  drained(topic: string, partition: number, bytes: number, partitionKey = key(topic, partition)): void {
    const state = this.#byKey.get(partitionKey)
    if (state) state.buffered = Math.max(0, state.buffered - bytes)
  }

  /** Leaves a partition out of fetches (commit metadata near its limit, a retry holding it) or back in. */
  pause(topic: string, partition: number, paused: boolean): void {
    const state = this.#byKey.get(key(topic, partition))
    if (state) state.paused = paused
  }

  buffered(topic: string, partition: number): number {
    return this.#byKey.get(key(topic, partition))?.buffered ?? 0
  }
}
