/**
 * The gateway's own telemetry: HTTP metrics (requests by route family and status, the body limit and the
 * largest body seen, readiness), refusals by code as clients saw them, the breaker's recent transitions,
 * and ingest/delivery rates sampled once a second for the status page.
 */
import type { Logger } from 'pino'
import type { SpillwayProducer } from '../producer/producer.ts'
import { Counter, Gauge, type Registry } from '../telemetry/metrics.ts'
import type { Readiness } from './readiness.ts'

export interface BreakerTransition {
  readonly from: string
  readonly to: string
  readonly reason: string
  readonly at: string
}

export class HttpTelemetry {
  readonly requests: Counter
  /** Requests refused, by error code. */
  readonly refusals: Record<string, number> = {}
  readonly transitions: BreakerTransition[] = []
  readonly rates = { ingest: 0, delivery: 0 }
  #largestBody = 0
  readonly #sampler: NodeJS.Timeout

  constructor(
    registry: Registry,
    producer: SpillwayProducer,
    readiness: Readiness,
    bodyLimit: number,
    logger: Logger,
  ) {
    this.requests = new Counter({
      name: 'spillway_http_requests_total',
      help: 'HTTP requests by route kind and status',
      labelNames: ['route', 'status'],
      registers: [registry],
    })
    const self = this
    new Gauge({
      name: 'spillway_http_body_limit_bytes',
      help: 'Request body limit (limits.maxBodyBytes)',
      registers: [registry],
      collect() {
        this.set(bodyLimit)
      },
    })
    new Gauge({
      name: 'spillway_http_largest_body_bytes',
      help: 'Largest request body accepted so far',
      registers: [registry],
      collect() {
        this.set(self.#largestBody)
      },
    })
    new Gauge({
      name: 'spillway_ready',
      help: '1 when /readyz answers 200',
      registers: [registry],
      collect() {
        this.set(readiness.ready ? 1 : 0)
      },
    })
    producer.breaker.machine.on('transition', (t) => {
      this.transitions.push({ from: t.from, to: t.to, reason: t.reason, at: new Date().toISOString() })
      if (this.transitions.length > 50) this.transitions.shift()
      logger.warn({ from: t.from, to: t.to, reason: t.reason }, 'breaker transition')
    })
    let last = { accepted: 0, delivered: 0, at: performance.now() }
    // the log's faults, once per episode: when it stops writing, and when it writes again
    producer.on('status', (status) => {
      if (status.type === 'waiting') {
        if (status.change === 'started')
          logger.warn(
            { topic: status.topic },
            'events wait for a topic that does not exist; create it and they are delivered, in order',
          )
        else logger.info({ topic: status.topic }, 'no events wait for this topic any more')
        return
      }
      if (status.type !== 'log') return
      readiness.sample()
      if (status.to === 'open') logger.info({ from: status.from }, 'the local log writes again')
      else if (status.to !== 'closing' && status.to !== 'closed')
        logger.error({ state: status.to, err: status.reason }, 'the local log cannot write; requests get 503')
    })
    this.#sampler = setInterval(() => {
      readiness.sample()
      const s = producer.stats()
      const now = performance.now()
      const seconds = (now - last.at) / 1000
      this.rates.ingest = (s.accepted - last.accepted) / seconds
      this.rates.delivery = (s.delivered - last.delivered) / seconds
      last = { accepted: s.accepted, delivered: s.delivered, at: now }
    }, 1000)
    this.#sampler.unref()
  }

  body(bytes: number): void {
    if (bytes > this.#largestBody) this.#largestBody = bytes
  }

  refused(code: string): void {
    this.refusals[code] = (this.refusals[code] ?? 0) + 1
  }

  stop(): void {
    clearInterval(this.#sampler)
  }
}
