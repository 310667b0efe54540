/**
 * `ack: 'kafka'`: a send waits for Kafka's acknowledgement of its records. The records sit in the memory
 * backlog with seqs [start, end); the dispatcher reports how far delivery got (`delivered(next)`) and
 * which seqs were poison, and each waiting send settles once its whole range is behind the cursor, when
 * its deadline passes, or when the producer closes. The answer per event is honest: acked, poison,
 * timed out (it may still be delivered), or closed before delivery (it was not).
 */
import { SpillwayError } from '../errors.ts'

/** How one event of a waiting send ended. */
export type AckOutcome =
  | { readonly kind: 'acked' }
  | { readonly kind: 'refused'; readonly error: SpillwayError }

interface Waiter {
  readonly start: bigint
  readonly end: bigint
  readonly poisoned: Map<bigint, string>
  /** Events with a seq below `deliveredBelow` reached Kafka, the others did not. */
  readonly resolve: (deliveredBelow: bigint, why: 'acked' | 'timeout' | 'closed') => void
}

export class KafkaAcks {
  readonly #deadlineMs: number
  #waiters: Waiter[] = []

  constructor(deadlineMs: number) {
    this.#deadlineMs = deadlineMs
  }

  /** Waits for the acks of `count` events from `firstSeq`; `cursor` is how far delivery already got. */
  async wait(firstSeq: bigint, count: number, cursor: bigint): Promise<AckOutcome[]> {
    const end = firstSeq + BigInt(count)
    const poisoned = new Map<bigint, string>()
    let timer: NodeJS.Timeout | undefined
    const settled = await new Promise<{ below: bigint; why: 'acked' | 'timeout' | 'closed' }>((resolve) => {
      const waiter: Waiter = {
        start: firstSeq,
        end,
        poisoned,
        resolve: (below, why) => resolve({ below, why }),
      }
      this.#waiters.push(waiter)
      if (cursor >= end) this.delivered(cursor)
      timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter)
        resolve({ below: firstSeq, why: 'timeout' })
      }, this.#deadlineMs)
    })
    clearTimeout(timer)
    return Array.from({ length: count }, (_, i): AckOutcome => {
      const seq = firstSeq + BigInt(i)
      const reason = poisoned.get(seq)
      if (reason !== undefined) {
        const error = new SpillwayError('SPW_ERR_POISON', `Kafka will not take this event: ${reason}`, {
          details: { reason },
        })
        return { kind: 'refused', error }
      }
      if (seq < settled.below) return { kind: 'acked' }
      if (settled.why === 'closed') {
        const error = new SpillwayError(
          'SPW_ERR_CLOSED',
          'the producer closed before Kafka acknowledged this event; it was not delivered, send it again',
        )
        return { kind: 'refused', error }
      }
      const error = new SpillwayError(
        'SPW_ERR_TIMEOUT',
        `no ack from Kafka within ${this.#deadlineMs} ms; the event may still be delivered`,
        { details: { deadlineMs: this.#deadlineMs } },
      )
      return { kind: 'refused', error }
    })
  }

  /** Delivery reached `next`: every send whose range is behind it is acked. */
  delivered(next: bigint): void {
    if (this.#waiters.length === 0) return
    const keep: Waiter[] = []
    for (const w of this.#waiters) {
      if (w.end <= next) w.resolve(w.end, 'acked')
      else keep.push(w)
    }
    this.#waiters = keep
  }

  /** A record Kafka will never take: the send waiting for it answers SPW_ERR_POISON for that event. */
  poisoned(seq: bigint, reason: string): void {
    for (const w of this.#waiters) if (seq >= w.start && seq < w.end) w.poisoned.set(seq, reason)
  }

  /** The producer closes: what is behind `delivered` is acked, everything else refused as not delivered. */
  close(delivered: bigint): void {
    this.delivered(delivered)
    for (const w of this.#waiters) w.resolve(delivered, 'closed')
    this.#waiters = []
  }
}
