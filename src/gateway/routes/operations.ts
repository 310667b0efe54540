/**
 * Operations as a Fastify plugin: the probes (/healthz, /readyz) and the views (/metrics, /status.json,
 * the status page). With `ops.port` the views live on a listener of their own; with `ops.key` they ask
 * for it. Absolute paths are shown only to a trusted caller (the ops port, or the ops key).
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import type { FastifyInstance, FastifyRequest } from 'fastify'
import { SpillwayError } from '../../errors.ts'
import type { GatewayContext } from '../context.ts'
import { errorHandler } from '../http-errors.ts'
import { statusPage } from '../status-page.ts'

export interface OperationsScope {
  /** /healthz and /readyz. */
  readonly probes: boolean
  /** /metrics, /status.json and the status page. */
  readonly views: boolean
  /** Every caller of this listener is trusted (the ops port). */
  readonly trusted: boolean
}

const digest = (value: string): Buffer => createHash('sha256').update(value).digest()

export function operationsRoutes(context: GatewayContext, scope: OperationsScope) {
  const { config, producer, keys, logger, registry, readiness, telemetry } = context
  const opsKey = config.ops.key === undefined ? undefined : digest(config.ops.key)
  /** The ops key, from `Authorization: Bearer …` or `?key=…` (the status page passes its own query on). */
  const presentsKey = (request: FastifyRequest): boolean => {
    if (!opsKey) return false
    const header = request.headers.authorization
    const bearer = header?.toLowerCase().startsWith('bearer ') ? header.slice(7).trim() : undefined
    const query = (request.query as Record<string, unknown> | undefined)?.key
    const given = bearer ?? (typeof query === 'string' ? query : undefined)
    return given !== undefined && timingSafeEqual(digest(given), opsKey)
  }
  const trusted = (request: FastifyRequest): boolean => scope.trusted || presentsKey(request)
  return async (app: FastifyInstance): Promise<void> => {
    if (scope.views && opsKey) {
      app.addHook('onRequest', async (request) => {
        const url = request.routeOptions.url
        if (url !== '/healthz' && url !== '/readyz' && !presentsKey(request))
          throw new SpillwayError('SPW_ERR_UNAUTHORIZED', 'this view needs the ops key (ops.key)')
      })
    }
    app.setErrorHandler(errorHandler('ops', logger, () => undefined))
    if (scope.probes) registerProbes(app)
    if (scope.views) registerViews(app)
  }

  function registerProbes(app: FastifyInstance): void {
    // alive unless the log has been unable to write for longer than health.logFailureMs: a restart is
    // then the way out (a removed directory, a volume gone read-only), and a supervisor acts on this
    app.get('/healthz', async (_request, reply) => {
      const log = producer.stats().log
      if (log && log.faultyForMs > config.health.logFailureMs) {
        return reply.code(503).send({
          status: 'failing',
          reason: `the local log has been unable to write for ${Math.round(log.faultyForMs / 1000)} s: ${log.fault}`,
        })
      }
      return { status: 'ok' }
    })
    app.get('/readyz', async (_request, reply) => {
      // a probe asking is a moment to sample; the value is the one the gauge and the page show
      const ok = readiness.sample()
      return reply.code(ok ? 200 : 503).send({ ready: ok })
    })
  }

  function registerViews(app: FastifyInstance): void {
    app.get('/metrics', async (_request, reply) => {
      return reply.type(registry.contentType).send(await registry.metrics())
    })
    app.get('/status.json', async (request) => {
      const s = producer.stats()
      return {
        mode: config.kafka ? 'kafka' : 'embedded',
        brokers: config.kafka?.brokers ?? [],
        ack: config.ack,
        // a path on this machine is for its operators only
        logDir: trusted(request) ? config.log.dir : null,
        openAuth: keys.open,
        ready: readiness.ready,
        breaker: { state: s.breaker, transitions: telemetry.transitions },
        log: {
          bytes: s.log?.diskBytes ?? s.memory?.bytes ?? 0,
          maxBytes: s.log?.maxBytes ?? s.memory?.maxBytes ?? 0,
          records: Number(s.log?.pendingRecords ?? s.memory?.records ?? 0),
          oldestPendingSeconds:
            s.log?.oldestPendingTimestamp === undefined
              ? null
              : Math.max(0, (Date.now() - s.log.oldestPendingTimestamp) / 1000),
        },
        rates: telemetry.rates,
        accepted: s.accepted,
        delivered: s.delivered,
        refusals: telemetry.refusals,
        // events are safe in both cases, but someone has to act: create the topic, or fix and replay
        waiting: s.waiting,
        deadLetters: { total: s.deadLettered, byTopic: s.deadLettersByTopic },
      }
    })
    app.get('/favicon.ico', async (_request, reply) => reply.code(204).send())
    app.get('/', async (_request, reply) => reply.type('text/html; charset=utf-8').send(statusPage))
    app.get('/status', async (_request, reply) => reply.type('text/html; charset=utf-8').send(statusPage))
  }
}
