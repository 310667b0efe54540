/**
 * `spillway serve`: the HTTP ingestion gateway. The only place that knows HTTP. Every request is
 * answered only once its events are safe under the ack mode, or refused as a whole with a coded error;
 * nothing here waits on the Kafka client.
 */
import { readFileSync } from 'node:fs'
import Fastify, {
  type FastifyError,
  type FastifyInstance,
  type FastifyReply,
  type FastifyRequest,
} from 'fastify'
import pino, { type Logger } from 'pino'
import { isSpillwayError, SpillwayError } from '../errors.ts'
import { createProducer, type SpillwayProducer } from '../producer/producer.ts'
import { Counter, Gauge, Registry } from '../telemetry/metrics.ts'
import { isTopicName, TOPIC_NAME_RULE } from '../topic-name.ts'
import { closeAllTransports } from '../transport/registry.ts'
import { basicAuth, charge, KeyRing, mayWrite } from './auth.ts'
import { parseJson, parseJsonStream } from './body.ts'
import type { GatewayConfig } from './config.ts'
import { restError, restRecord, restSuccess } from './rest-proxy.ts'
import { SEGMENT_TYPES, type SegmentType, segmentItems } from './segment.ts'
import { statusPage } from './status-page.ts'

export interface Gateway {
  readonly app: FastifyInstance
  readonly producer: SpillwayProducer
  readonly config: GatewayConfig
  readonly logger: Logger
  /** Starts listening; resolves with the base URL. */
  listen(): Promise<string>
  /** Stops accepting, finishes in-flight requests, delivers what it can, leaves the rest in the log. */
  close(timeoutMs?: number): Promise<void>
}

type RouteKind = 'segment' | 'rest' | 'ops'

function routeKind(url: string | undefined): RouteKind {
  if (url?.startsWith('/v1/')) return 'segment'
  if (url?.startsWith('/v3/')) return 'rest'
  return 'ops'
}

function toSpillwayError(error: unknown): SpillwayError {
  if (isSpillwayError(error)) return error
  const e = error as FastifyError
  switch (e.code) {
    case 'FST_ERR_CTP_INVALID_MEDIA_TYPE':
      return new SpillwayError(
        'SPW_ERR_UNSUPPORTED_MEDIA_TYPE',
        'send application/json (or text/plain holding JSON)',
      )
    case 'FST_ERR_CTP_BODY_TOO_LARGE':
      return new SpillwayError('SPW_ERR_PAYLOAD_TOO_LARGE', 'the request body is over the size limit')
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new SpillwayError('SPW_ERR_BAD_REQUEST', e.message)
    default:
      if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
        return new SpillwayError('SPW_ERR_BAD_REQUEST', e.message)
      }
      return new SpillwayError('SPW_ERR_LOG_IO', `internal error: ${(error as Error).message}`, {
        cause: error,
      })
  }
}

export async function createGateway(
  config: GatewayConfig,
  options: { logger?: Logger } = {},
): Promise<Gateway> {
  const logger =
    options.logger ??
    pino({
      level: config.logLevel,
      redact: {
        paths: ['*.authorization', '*.writeKey', '*.key', '*.secret', '*.password'],
        censor: '[redacted]',
      },
    })
  const registry = new Registry()
  const producer = await createProducer({
    ...(config.kafka
      ? {
          brokers: config.kafka.brokers,
          clientId: config.kafka.clientId,
          ...(config.kafka.tls ? { tls: config.kafka.tls } : {}),
          ...(config.kafka.sasl ? { sasl: config.kafka.sasl } : {}),
          deadLetterTopics: config.kafka.deadLetterTopics,
        }
      : {}),
    ack: config.ack,
    log: config.log,
    maxEventBytes: config.limits.maxEventBytes + 4096,
    deliveryTimeoutMs: config.deliveryTimeoutMs,
    registry,
  })
  const keys = new KeyRing(config.keys)
  // slow clients: Node enforces these deadlines, checking every connectionsCheckingInterval
  const slowClientLimits = {
    headersTimeout: config.limits.headersTimeoutMs,
    requestTimeout: config.limits.requestTimeoutMs,
    connectionsCheckingInterval: Math.min(1000, config.limits.headersTimeoutMs),
  }
  const app = Fastify({
    // Fastify's own per-request info logs are not wanted: operators get lifecycle logs and metrics.
    loggerInstance: logger.child({}, { level: logger.level === 'silent' ? 'silent' : 'warn' }),
    bodyLimit: config.limits.maxBodyBytes,
    requestTimeout: config.limits.requestTimeoutMs,
    keepAliveTimeout: 5000,
    return503OnClosing: true,
    forceCloseConnections: 'idle',
    ...(config.tls
      ? {
          https: {
            key: readFileSync(config.tls.key),
            cert: readFileSync(config.tls.cert),
            ...slowClientLimits,
          },
        }
      : { http: slowClientLimits }),
  } as Parameters<typeof Fastify>[0]) as unknown as FastifyInstance

  // ─── telemetry ────────────────────────────────────────────────────────────────────────────────
  const requests = new Counter({
    name: 'spillway_http_requests_total',
    help: 'HTTP requests by route kind and status',
    labelNames: ['route', 'status'],
    registers: [registry],
  })
  let largestBody = 0
  new Gauge({
    name: 'spillway_http_body_limit_bytes',
    help: 'Request body limit (limits.maxBodyBytes)',
    registers: [registry],
    collect() {
      this.set(config.limits.maxBodyBytes)
    },
  })
  new Gauge({
    name: 'spillway_http_largest_body_bytes',
    help: 'Largest request body accepted so far',
    registers: [registry],
    collect() {
      this.set(largestBody)
    },
  })
  let ready = true
  new Gauge({
    name: 'spillway_ready',
    help: '1 when /readyz answers 200',
    registers: [registry],
    collect() {
      this.set(readiness() ? 1 : 0)
    },
  })

  /** Requests refused, by error code, as clients saw them. */
  const refusals: Record<string, number> = {}
  const transitions: { from: string; to: string; reason: string; at: string }[] = []
  producer.breaker.machine.on('transition', (t) => {
    transitions.push({ from: t.from, to: t.to, reason: t.reason, at: new Date().toISOString() })
    if (transitions.length > 50) transitions.shift()
    logger.warn({ from: t.from, to: t.to, reason: t.reason }, 'breaker transition')
  })
  const rates = { ingest: 0, delivery: 0 }
  let last = { accepted: 0, delivered: 0, at: performance.now() }
  const sampler = setInterval(() => {
    const s = producer.stats()
    const now = performance.now()
    const seconds = (now - last.at) / 1000
    rates.ingest = (s.accepted - last.accepted) / seconds
    rates.delivery = (s.delivered - last.delivered) / seconds
    last = { accepted: s.accepted, delivered: s.delivered, at: now }
  }, 1000)
  sampler.unref()

  /** Hysteresis: unready above readiness.high of the budget, ready again only below readiness.low. */
  function readiness(): boolean {
    if (!producer.lifecycle.is('running')) return false
    const s = producer.stats()
    const usage = s.log ? s.log.diskBytes / s.log.maxBytes : s.memory ? s.memory.bytes / s.memory.maxBytes : 0
    if (ready && usage >= config.readiness.high) ready = false
    else if (!ready && usage <= config.readiness.low) ready = true
    if (s.log && s.log.state !== 'open') return false
    if (config.ack === 'kafka' && s.breaker !== 'closed') return false
    return ready
  }

  // ─── bodies, errors, CORS ─────────────────────────────────────────────────────────────────────
  app.removeAllContentTypeParsers()
  app.addContentTypeParser(
    ['application/json', 'text/plain', 'application/vnd.kafka.v3+json'],
    { parseAs: 'buffer' },
    (_req, body, done) => {
      done(null, body)
    },
  )

  app.setErrorHandler((error: unknown, request: FastifyRequest, reply: FastifyReply) => {
    const spw = toSpillwayError(error)
    if (spw.status >= 500 && spw.code !== 'SPW_ERR_BACKPRESSURE' && !spw.retriable) {
      logger.error({ code: spw.code, err: spw.message }, 'request failed')
    }
    return sendError(reply, routeKind(request.routeOptions.url ?? request.url), spw)
  })
  app.setNotFoundHandler((request, reply) => {
    return sendError(
      reply,
      routeKind(request.url),
      new SpillwayError('SPW_ERR_NOT_FOUND', `no route ${request.method} ${request.url}`),
    )
  })
  app.addHook('onResponse', async (request, reply) => {
    requests.inc({
      route: routeKind(request.routeOptions.url ?? request.url),
      status: String(reply.statusCode),
    })
  })
  if (config.cors.origins.length > 0) {
    app.addHook('onRequest', async (request, reply) => {
      const origin = request.headers.origin
      if (origin && (config.cors.origins.includes('*') || config.cors.origins.includes(origin))) {
        reply.header('access-control-allow-origin', origin)
        reply.header('vary', 'Origin')
        reply.header('access-control-allow-methods', 'POST, GET, OPTIONS')
        reply.header('access-control-allow-headers', 'content-type, authorization')
        reply.header('access-control-max-age', '600')
      }
    })
    app.options('/*', async (_request, reply) => reply.code(204).send())
  }

  function sendError(reply: FastifyReply, kind: RouteKind, error: SpillwayError): FastifyReply {
    const status = error.status
    refusals[error.code] = (refusals[error.code] ?? 0) + 1
    if (status === 503 || status === 429) {
      const ms = Number(error.details.retryAfterMs ?? 1000)
      reply.header('retry-after', String(Math.max(1, Math.ceil(ms / 1000))))
    }
    const path = error.details.path ?? error.details.field
    if (kind === 'rest') {
      return reply.code(status).send({ ...restError(status, error.message), code: error.code })
    }
    return reply.code(status).send({
      success: false,
      code: error.code,
      message: error.message,
      retriable: error.retriable,
      ...(path !== undefined ? { path } : {}),
    })
  }

  async function admit(items: Parameters<SpillwayProducer['sendTo']>[0]): Promise<void> {
    const results = await producer.sendTo(items, { atomic: true })
    const refused = results.find((r) => r.status === 'refused')
    if (refused && refused.status === 'refused') throw refused.error
  }

  // ─── Segment ──────────────────────────────────────────────────────────────────────────────────
  for (const route of ['batch', ...SEGMENT_TYPES] as const) {
    app.post(`/v1/${route}`, async (request, reply) => {
      const raw = request.body as Buffer | undefined
      if (!Buffer.isBuffer(raw))
        throw new SpillwayError('SPW_ERR_BAD_REQUEST', 'the request body is empty', {
          details: { path: '$' },
        })
      const body = parseJson(raw, config.limits.maxDepth)
      const credentials = basicAuth(request.headers.authorization)
      const bodyKey =
        typeof body === 'object' &&
        body !== null &&
        typeof (body as { writeKey?: unknown }).writeKey === 'string'
          ? (body as { writeKey: string }).writeKey
          : undefined
      const principal = keys.authenticate(credentials?.user || bodyKey)
      const items = segmentItems(route as 'batch' | SegmentType, body, principal, config)
      charge(principal, items.length)
      await admit(items)
      largestBody = Math.max(largestBody, raw.length)
      return reply.code(200).send({ success: true })
    })
  }

  // ─── Confluent REST Proxy v3 ──────────────────────────────────────────────────────────────────
  app.post('/v3/clusters/:cluster/topics/:topic/records', async (request, reply) => {
    const { cluster, topic } = request.params as { cluster: string; topic: string }
    if (cluster !== config.clusterId) {
      return reply
        .code(404)
        .send({ ...restError(404, `cluster ${cluster} not found`), code: 'SPW_ERR_NOT_FOUND' })
    }
    const credentials = basicAuth(request.headers.authorization)
    const principal = keys.authenticate(credentials?.user, credentials?.password ?? '')
    if (!isTopicName(topic))
      throw new SpillwayError(
        'SPW_ERR_BAD_REQUEST',
        `topic name ${JSON.stringify(topic)} is not ${TOPIC_NAME_RULE}`,
      )
    if (!config.restTopics.includes('*') && !config.restTopics.includes(topic)) {
      throw new SpillwayError('SPW_ERR_UNKNOWN_TOPIC', `topic ${topic} is not served by this gateway`, {
        details: { topic },
      })
    }
    if (!mayWrite(principal, topic))
      throw new SpillwayError('SPW_ERR_FORBIDDEN_TOPIC', `key ${principal.name} may not write to ${topic}`)
    const raw = request.body as Buffer | undefined
    if (!Buffer.isBuffer(raw) || raw.length === 0)
      throw new SpillwayError('SPW_ERR_BAD_REQUEST', 'the request body is empty')
    const docs = parseJsonStream(raw, config.limits.maxDepth)
    if (docs.length > config.limits.maxEvents) {
      throw new SpillwayError(
        'SPW_ERR_PAYLOAD_TOO_LARGE',
        `${docs.length} records in one request; at most ${config.limits.maxEvents}`,
      )
    }
    const records = docs.map((d, i) => {
      if ('error' in d) throw d.error
      return restRecord(d.value, docs.length > 1 ? `$[${i}]` : '$', config.limits.maxEventBytes)
    })
    if (records.length === 0) throw new SpillwayError('SPW_ERR_BAD_REQUEST', 'the request holds no record')
    charge(principal, records.length)
    await admit(records.map((r) => ({ topic, event: r.event })))
    largestBody = Math.max(largestBody, raw.length)
    const bodies = records.map((r) => restSuccess(config.clusterId, topic, r))
    if (bodies.length === 1) return reply.code(200).send(bodies[0])
    return reply
      .code(200)
      .type('application/json')
      .send(`${bodies.map((b) => JSON.stringify(b)).join('\n')}\n`)
  })

  // ─── operations ───────────────────────────────────────────────────────────────────────────────
  app.get('/healthz', async () => ({ status: 'ok' }))
  app.get('/readyz', async (_request, reply) => {
    const ok = readiness()
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
      ready: readiness(),
      breaker: { state: s.breaker, transitions },
      log: {
        bytes: s.log?.diskBytes ?? s.memory?.bytes ?? 0,
        maxBytes: s.log?.maxBytes ?? s.memory?.maxBytes ?? 0,
        records: Number(s.log?.pendingRecords ?? s.memory?.records ?? 0),
        oldestPendingSeconds:
          s.log?.oldestPendingTimestamp === undefined
            ? null
            : Math.max(0, (Date.now() - s.log.oldestPendingTimestamp) / 1000),
      },
      rates,
      accepted: s.accepted,
      delivered: s.delivered,
      refusals,
    }
  })
  app.get('/favicon.ico', async (_request, reply) => reply.code(204).send())
  app.get('/', async (_request, reply) => reply.type('text/html; charset=utf-8').send(statusPage))
  app.get('/status', async (_request, reply) => reply.type('text/html; charset=utf-8').send(statusPage))

  let closing: Promise<void> | undefined
  return {
    app,
    producer,
    config,
    logger,
    async listen() {
      const address = await app.listen({ host: config.host, port: config.port })
      logger.info(
        {
          address,
          mode: config.kafka ? 'kafka' : 'embedded',
          ack: config.ack,
          logDir: config.log.dir,
          keys: config.keys.map((k) => k.name),
        },
        config.kafka
          ? 'spillway gateway listening'
          : 'spillway gateway listening (embedded default: events stay in the local log)',
      )
      if (keys.open)
        logger.warn('no keys configured: any client may write; set keys[] before exposing this gateway')
      if (config.kafka) {
        // told at start, not found out from a stuck backlog: wrong credentials, no broker reachable
        producer.checkConnection().then(
          () => logger.info({ brokers: config.kafka?.brokers }, 'connected to Kafka'),
          (error: unknown) => {
            logger.error(
              {
                code: (error as { code?: string }).code,
                brokers: config.kafka?.brokers,
                err: (error as Error).message,
              },
              'cannot reach Kafka; events are kept in the local log until it can',
            )
          },
        )
      }
      return address
    },
    close(timeoutMs = config.shutdownTimeoutMs) {
      closing ??= (async () => {
        clearInterval(sampler)
        await app.close()
        await producer.close(timeoutMs)
        await closeAllTransports()
        logger.info(
          producer.stats().log ? { pending: String(producer.stats().log?.pendingRecords) } : {},
          'spillway gateway stopped',
        )
      })()
      return closing
    },
  }
}
