/**
 * The `spillway sink` service: the configured sinks, one registry of metrics, a log line for every change
 * that matters (a database down or back, a refused row, a rebalance, a stall), and an HTTP listener for
 * operators: /healthz (the process is alive), /readyz (every sink runs and reaches its database),
 * /metrics, /status.json and the status page.
 */
import Fastify, { type FastifyInstance } from 'fastify'
import pino, { type Logger } from 'pino'
import { Registry } from '../telemetry/metrics.ts'
import { type ClickHouseSinkOptions, createClickHouseSink } from './clickhouse/index.ts'
import { type SinkServiceConfig, withSinkContext } from './config.ts'
import { registerSinkMetrics } from './metrics.ts'
import { createPostgresSink, type PostgresSinkOptions } from './postgres/index.ts'
import type { SpillwaySink } from './sink.ts'
import { sinkStatusPage } from './status-page.ts'

export interface SinkService {
  readonly logger: Logger
  readonly sinks: readonly { readonly name: string; readonly sink: SpillwaySink }[]
  /** Checks every sink's table and joins the groups, then listens. Resolves with the bound address. */
  start(): Promise<{ host: string; port: number }>
  /** The numbers behind the status page. */
  status(): SinkServiceStatus
  close(): Promise<void>
}

export interface SinkServiceStatus {
  readonly startedAt: string
  readonly uptimeSeconds: number
  readonly sinks: readonly {
    readonly name: string
    readonly kind: string
    readonly target: string
    readonly topics: readonly string[]
    readonly state: string
    readonly databaseUp: boolean
    readonly lastError: string | null
    readonly rowsWritten: number
    readonly rowsExisting: number
    readonly batches: number
    readonly refused: number
    readonly deadLettered: number
    readonly retries: number
    readonly lagRecords: string
    readonly rowsPerSecond: number
    readonly partitions: readonly {
      readonly topic: string
      readonly partition: number
      readonly state: string
      readonly lagRecords: string
      readonly lagSeconds: number
      readonly rowsWritten: number
      readonly lastBatchMs: number
      readonly retries: number
      readonly refused: number
      readonly lastError: string | null
    }[]
  }[]
}

export function createSinkService(config: SinkServiceConfig, options: { logger?: Logger } = {}): SinkService {
  const logger =
    options.logger ??
    pino({
      level: config.logLevel,
      redact: { paths: ['*.password', '*.authorization'], censor: '[redacted]' },
    })
  const registry = new Registry()
  const started = Date.now()
  const sinks = config.sinks.map((entry, i) => {
    const sink = withSinkContext(i, entry.name, () => {
      const extras = { registry, metricLabels: { consumer: entry.name } }
      return entry.type === 'clickhouse'
        ? createClickHouseSink({ ...(entry.options as ClickHouseSinkOptions), ...extras })
        : createPostgresSink({ ...(entry.options as PostgresSinkOptions), ...extras })
    })
    registerSinkMetrics(registry, sink, entry.name)
    const log = logger.child({ sink: entry.name })
    sink.on('event', (event) => {
      if (event.type === 'database') {
        if (event.up) log.info(`${sink.stats().kind} is reachable again; writing resumes`)
        else
          log.warn(
            { reason: event.message },
            `${sink.stats().kind} is unavailable; partitions wait and retry`,
          )
      } else
        log.warn(
          {
            topic: event.topic,
            partition: event.partition,
            offset: String(event.offset),
            id: event.id,
            code: event.code,
          },
          `row refused, sent to the dead-letter topic: ${event.message}`,
        )
    })
    sink.consumer.on('status', (status) => {
      if (status.type === 'assigned' || status.type === 'revoked')
        log.info(
          { partitions: status.partitions.map((p) => `${p.topic}[${p.partition}]`) },
          `partitions ${status.type}`,
        )
      else if (status.type === 'stalled')
        log.warn(
          { topic: status.topic, partition: status.partition, forMs: status.forMs },
          'partition stalled',
        )
      else if (status.type === 'connection' && !status.ok)
        log.warn({ code: status.code }, `Kafka: ${status.message ?? 'unavailable'}`)
      else if (status.type === 'lifecycle')
        log.info(`consumer ${status.from} → ${status.to}: ${status.reason}`)
    })
    return { name: entry.name, sink, topics: entry.options.topics }
  })
  // rows per second over the last few seconds, per sink, for the status page
  const rates = new Map<string, { at: number; rows: number; rate: number }>()
  const rateOf = (name: string, rows: number): number => {
    const now = performance.now()
    const last = rates.get(name)
    if (!last || now - last.at >= 1000) {
      const rate = last ? ((rows - last.rows) * 1000) / (now - last.at) : 0
      rates.set(name, { at: now, rows, rate })
      return rate
    }
    return last.rate
  }

  const status = (): SinkServiceStatus => ({
    startedAt: new Date(started).toISOString(),
    uptimeSeconds: (Date.now() - started) / 1000,
    sinks: sinks.map(({ name, sink, topics }) => {
      const s = sink.stats()
      const c = sink.consumer.stats()
      const own = new Map(s.partitions.map((p) => [`${p.topic}[${p.partition}]`, p]))
      return {
        name,
        kind: s.kind,
        target: s.target,
        topics,
        state: c.state,
        databaseUp: s.databaseUp,
        lastError: s.lastError,
        rowsWritten: s.rowsWritten,
        rowsExisting: s.rowsExisting,
        batches: s.batches,
        refused: s.refused,
        deadLettered: c.deadLettered,
        retries: s.retries,
        lagRecords: c.lagRecords.toString(),
        rowsPerSecond: rateOf(name, s.rowsWritten),
        partitions: c.partitions.map((p) => {
          const mine = own.get(`${p.topic}[${p.partition}]`)
          return {
            topic: p.topic,
            partition: p.partition,
            state: mine && mine.state !== 'idle' ? mine.state : p.state,
            lagRecords: p.lagRecords.toString(),
            lagSeconds: p.lagSeconds,
            rowsWritten: mine?.rowsWritten ?? 0,
            lastBatchMs: mine?.lastBatchMs ?? 0,
            retries: mine?.retries ?? 0,
            refused: mine?.refused ?? 0,
            lastError: mine?.lastError ?? null,
          }
        }),
      }
    }),
  })

  const app: FastifyInstance = Fastify({ logger: false })
  app.get('/healthz', async () => ({ status: 'ok' }))
  app.get('/readyz', async (_request, reply) => {
    const problems: string[] = []
    for (const { name, sink } of sinks) {
      const s = sink.stats()
      if (!sink.consumer.lifecycle.is('running'))
        problems.push(`${name}: consumer is ${sink.consumer.stats().state}`)
      if (!s.databaseUp) problems.push(`${name}: ${s.kind} unavailable (${s.lastError ?? 'no answer'})`)
    }
    if (problems.length > 0) return reply.code(503).send({ status: 'not ready', problems })
    return { status: 'ready' }
  })
  app.get('/metrics', async (_request, reply) => {
    reply.header('content-type', registry.contentType)
    return await registry.metrics()
  })
  app.get('/status.json', async () => status())
  const page = async (_request: unknown, reply: { type(t: string): { send(b: string): unknown } }) =>
    reply.type('text/html; charset=utf-8').send(sinkStatusPage)
  app.get('/', page)
  app.get('/status', page)

  return {
    logger,
    sinks: sinks.map(({ name, sink }) => ({ name, sink })),
    status,
    async start() {
      // the listener first, so probes answer while the sinks check their tables and join
      const address = await app.listen({ host: config.host, port: config.port })
      const port = Number(new URL(address).port)
      logger.info({ address }, 'spillway sink listening: /healthz /readyz /metrics / (status page)')
      for (const { name, sink } of sinks) {
        await sink.run()
        logger.info({ sink: name }, `sink ${name} running: ${sink.stats().kind} table ${sink.stats().target}`)
      }
      return { host: config.host, port }
    },
    async close() {
      const deadline = setTimeout(() => {
        logger.warn(
          `shutdown took longer than ${config.shutdownTimeoutMs} ms; exiting with batches unfinished (they are written again on restart, once)`,
        )
        process.exit(1)
      }, config.shutdownTimeoutMs + 5000)
      deadline.unref()
      try {
        await Promise.all(sinks.map(({ sink }) => sink.close()))
        await app.close()
      } finally {
        clearTimeout(deadline)
      }
    },
  }
}
