/**
 * Holds a retry tier's fetched records until they are due. Records leave in offset order: the first
 * record not yet due holds back the ones after it (a tier's delay is the same for all its records, so
 * later ones are due later anyway). While a partition holds records it is paused, so nothing more is
 * fetched for it and its buffer stays bounded; a timer wakes it at its first record's due time. No
 * handler ever sleeps.
 */
import type { FetchedRecord } from '../../transport/cluster.ts'
import type { PartitionWork } from '../partition.ts'
import { RETRY_HEADERS } from './headers.ts'

interface Held {
  readonly records: FetchedRecord[]
  head: number
  timer: NodeJS.Timeout | undefined
}

export function dueAt(record: FetchedRecord): number {
  for (const [name, value] of record.headers) {
    if (name === RETRY_HEADERS.due) {
      const due = Number(value.toString('latin1'))
      return Number.isFinite(due) ? due : 0
    }
  }
  return 0
}

export class DueGate {
  readonly #held = new Map<PartitionWork, Held>()
  readonly #release: (work: PartitionWork, records: readonly FetchedRecord[]) => void
  readonly #hold: (work: PartitionWork, holding: boolean) => void
  readonly #now: () => number

  /**
   * `release` hands due records on; `hold` pauses or resumes fetching of a partition; `now` is the wall
   * clock (due times are wall-clock ms, written by whichever process forwarded the record).
   */
  constructor(
    release: (work: PartitionWork, records: readonly FetchedRecord[]) => void,
    hold: (work: PartitionWork, holding: boolean) => void,
    now: () => number = Date.now,
  ) {
    this.#release = release
    this.#hold = hold
    this.#now = now
  }

  /** Records of one tier partition, in offset order. */
  add(work: PartitionWork, records: readonly FetchedRecord[]): void {
    let held = this.#held.get(work)
    if (!held) {
      held = { records: [], head: 0, timer: undefined }
      this.#held.set(work, held)
    }
    held.records.push(...records)
    this.#pump(work, held)
  }

  /** Records held now, over all partitions. */
  get size(): number {
    let n = 0
    for (const h of this.#held.values()) n += h.records.length - h.head
    return n
  }

  /** When the partition's next held record is due (ms since the epoch), if it holds any. */
  nextDue(work: PartitionWork): number | undefined {
    const held = this.#held.get(work)
    const head = held?.records[held.head]
    return head ? dueAt(head) : undefined
  }

  #pump(work: PartitionWork, held: Held): void {
    clearTimeout(held.timer)
    held.timer = undefined
    const now = this.#now()
    const start = held.head
    while (held.head < held.records.length && dueAt(held.records[held.head] as FetchedRecord) <= now)
      held.head++
    const due = held.records.slice(start, held.head)
    if (held.head >= held.records.length) {
      this.#held.delete(work)
      this.#hold(work, false)
    } else {
      if (held.head > 0) {
        held.records.splice(0, held.head)
        held.head = 0
      }
      this.#hold(work, true)
      const wait = Math.max(1, dueAt(held.records[0] as FetchedRecord) - now)
      held.timer = setTimeout(
        () => {
          if (this.#held.get(work) === held) this.#pump(work, held)
        },
        Math.min(wait, 2 ** 31 - 1),
      )
    }
    if (due.length > 0) this.#release(work, due)
  }

  /** Forgets a revoked partition's held records: returns their bytes. */
  drop(work: PartitionWork): number {
    const held = this.#held.get(work)
    if (!held) return 0
    clearTimeout(held.timer)
    this.#held.delete(work)
    let bytes = 0
    for (let i = held.head; i < held.records.length; i++) bytes += (held.records[i] as FetchedRecord).size
    return bytes
  }

  close(): void {
    for (const held of this.#held.values()) clearTimeout(held.timer)
    this.#held.clear()
  }
}
