/**
 * Readiness, sampled: one value, recomputed on a timer and read by /readyz, the status page and the
 * `spillway_ready` gauge alike, so they never disagree. The budget in use (the log's disk budget, or the
 * memory budget) has hysteresis: unready at `high` of it, ready again only at `low`, so a gateway near
 * its limit does not flap in and out of a load balancer. A log that is not open, a producer that is not
 * running, or (in `kafka` ack mode) a breaker that is not closed make it unready at once.
 */
import type { SpillwayProducer } from '../producer/producer.ts'

export interface ReadinessOptions {
  readonly high: number
  readonly low: number
  /** `kafka` ack mode needs Kafka to answer: an open breaker is unready. */
  readonly needsKafka: boolean
}

export class Readiness {
  readonly #producer: SpillwayProducer
  readonly #options: ReadinessOptions
  /** Below the budget's high-water mark (with hysteresis). */
  #withinBudget = true
  #ready = true

  constructor(producer: SpillwayProducer, options: ReadinessOptions) {
    this.#producer = producer
    this.#options = options
    this.sample()
  }

  /** The last sampled value. */
  get ready(): boolean {
    return this.#ready
  }

  /** Recomputes readiness from the producer's stats now. */
  sample(): boolean {
    const producer = this.#producer
    if (!producer.lifecycle.is('running')) {
      this.#ready = false
      return false
    }
    const s = producer.stats()
    const usage = s.log ? s.log.diskBytes / s.log.maxBytes : s.memory ? s.memory.bytes / s.memory.maxBytes : 0
    if (this.#withinBudget && usage >= this.#options.high) this.#withinBudget = false
    else if (!this.#withinBudget && usage <= this.#options.low) this.#withinBudget = true
    const logOpen = !s.log || s.log.state === 'open'
    const kafkaOk = !this.#options.needsKafka || s.breaker === 'closed'
    this.#ready = this.#withinBudget && logOpen && kafkaOk
    return this.#ready
  }
}
