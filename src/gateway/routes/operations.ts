/**
 * Operations as a Fastify plugin: /healthz, /readyz, /metrics, /status.json and the status page.
 */
import type { FastifyInstance } from 'fastify'
import type { GatewayContext } from '../context.ts'
import { errorHandler } from '../http-errors.ts'
import { statusPage } from '../status-page.ts'

export function operationsRoutes(context: GatewayContext) {
  const { config, producer, keys, logger, registry, readiness, telemetry } = context
  return async (app: FastifyInstance): Promise<void> => {
    app.setErrorHandler(errorHandler('ops', logger, () => undefined))
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
    app.get('/metrics', async (_request, reply) => {
      return reply.type(registry.contentType).send(await registry.metrics())
    })
    app.get('/status.json', async () => {
      const s = producer.stats()
      return {
        mode: config.kafka ? 'kafka' : 'embedded',
        brokers: config.kafka?.brokers ?? [],
        ack: config.ack,
        logDir: config.log.dir,
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
      }
    })
    app.get('/favicon.ico', async (_request, reply) => reply.code(204).send())
    app.get('/', async (_request, reply) => reply.type('text/html; charset=utf-8').send(statusPage))
    app.get('/status', async (_request, reply) => reply.type('text/html; charset=utf-8').send(statusPage))
  }
}
