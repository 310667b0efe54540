/**
 * `spillway serve`: the HTTP ingestion gateway. The only place that knows HTTP. Every request is
 * answered only once its events are safe under the ack mode, or refused as a whole with a coded error;
 * nothing here waits on the Kafka client.
 *
 * This file builds the Fastify instance and wires the parts: each route family is a plugin with its own
 * error handler (routes/segment.ts, routes/rest-proxy.ts, routes/operations.ts), readiness is one sampled
 * value (readiness.ts), and the HTTP metrics live in telemetry.ts.
 */
import { readFileSync } from 'node:fs'
import Fastify, { type FastifyInstance, type FastifyReply, type FastifyRequest } from 'fastify'
import pino, { type Logger } from 'pino'
import { SpillwayError } from '../errors.ts'
import { createProducer, type SpillwayProducer } from '../producer/producer.ts'
import { Registry } from '../telemetry/metrics.ts'
import { KeyRing } from './auth.ts'
import type { GatewayConfig } from './config.ts'
import type { GatewayContext } from './context.ts'
import { decodeBody, decoderFor } from './encoding.ts'
import { clientErrorHandler, errorHandler, routeKind, sendError, toSpillwayError } from './http-errors.ts'
import { Readiness } from './readiness.ts'
import { operationsRoutes } from './routes/operations.ts'
import { restProxyRoutes } from './routes/rest-proxy.ts'
import { segmentRoutes } from './routes/segment.ts'
import { HttpTelemetry } from './telemetry.ts'

export interface Gateway {
  readonly app: FastifyInstance
  readonly producer: SpillwayProducer
  readonly config: GatewayConfig
  readonly logger: Logger
  /** Starts listening; resolves with the base URL. */
  listen(): Promise<string>
  /** The operations listener's base URL (ops.port), once listening. */
  readonly opsUrl: string | undefined
  /** Stops accepting, finishes in-flight requests, delivers what it can, leaves the rest in the log. */
  close(timeoutMs?: number): Promise<void>
}

/**
 * The producer names a field as `events[3].id`; a client knows it as `$.batch[3].messageId`. Errors
 * that name a field are restated in the request's terms (the item's own path and field names).
 */
function inRequestTerms(error: SpillwayError, path: string | undefined): SpillwayError {
  const field = error.details.field
  if (path === undefined || typeof field !== 'string' || !/^events\[\d+\]/.test(field)) return error
  const rest = field.replace(/^events\[\d+\]\.?/, '')
  const mapped =
    rest === '' || rest === 'value' ? path : rest === 'id' ? `${path}.messageId` : `${path}.${rest}`
  const message = error.message.replace(field, mapped)
  return new SpillwayError(error.code, message, {
    cause: error,
    details: { ...error.details, field: mapped, path: mapped },
  })
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
          metadataMaxAgeMs: config.kafka.metadataMaxAgeMs,
          ...(config.kafka.unknownTopicTimeoutMs === undefined
            ? {}
            : { unknownTopicTimeoutMs: config.kafka.unknownTopicTimeoutMs }),
        }
      : {}),
    ack: config.ack,
    log: config.log,
    maxEventBytes: config.limits.maxEventBytes + 4096,
    deliveryTimeoutMs: config.deliveryTimeoutMs,
    transportLingerMs: 0,
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
    // Kafka topic names run to 249 characters; longer path segments get 414
    routerOptions: { maxParamLength: 256 },
    clientErrorHandler,
    frameworkErrors: (error: unknown, request: FastifyRequest, reply: FastifyReply) =>
      sendError(reply, routeKind(request.url), toSpillwayError(error)),
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

  const readiness = new Readiness(producer, {
    high: config.readiness.high,
    low: config.readiness.low,
    needsKafka: config.ack === 'kafka',
  })
  const telemetry = new HttpTelemetry(registry, producer, readiness, config.limits.maxBodyBytes, logger)
  const context: GatewayContext = {
    config,
    producer,
    keys,
    logger,
    registry,
    readiness,
    telemetry,
    async admit(items) {
      const results = await producer.sendTo(items, { atomic: true })
      const index = results.findIndex((r) => r.status === 'refused')
      const refused = results[index]
      if (refused?.status === 'refused') throw inRequestTerms(refused.error, items[index]?.path)
    },
  }

  // ─── bodies, unknown routes, CORS ─────────────────────────────────────────────────────────────
  app.removeAllContentTypeParsers()
  app.addContentTypeParser(
    ['application/json', 'text/plain', 'application/vnd.kafka.v3+json'],
    { parseAs: 'buffer' },
    (_req, body, done) => {
      done(null, body)
    },
  )
  // compressed bodies are decoded before any parser sees them; the body limit applies to decoded bytes
  app.addHook('preParsing', async (request, _reply, payload) => {
    // JSON is UTF-8 (RFC 8259): a body declared in another charset would be misread, so it is refused
    const charset = /;\s*charset\s*=\s*"?([^";\s]+)/i.exec(request.headers['content-type'] ?? '')?.[1]
    if (charset && !/^utf-?8$/i.test(charset)) {
      throw new SpillwayError(
        'SPW_ERR_UNSUPPORTED_MEDIA_TYPE',
        `charset ${charset} is not supported; send UTF-8`,
        {
          details: { path: '$' },
        },
      )
    }
    const header = request.headers['content-encoding']
    const decoder = decoderFor(Array.isArray(header) ? header.join(',') : header)
    if (!decoder) return payload
    return decodeBody(payload, decoder(), config.limits.maxBodyBytes, String(header))
  })
  // routes registered here (CORS preflight) answer errors in the shape of the family their URL names
  app.setErrorHandler((error, request, reply) =>
    errorHandler(routeKind(request.url), logger, (code) => telemetry.refused(code))(error, request, reply),
  )
  app.setNotFoundHandler((request, reply) => {
    const error = new SpillwayError('SPW_ERR_NOT_FOUND', `no route ${request.method} ${request.url}`)
    telemetry.refused(error.code)
    return sendError(reply, routeKind(request.url), error)
  })
  app.addHook('onResponse', async (request, reply) => {
    telemetry.requests.inc({
      route: routeKind(request.routeOptions.url ?? request.url),
      status: String(reply.statusCode),
    })
  })
  // Browser requests (they carry an Origin) may send events only from the origins in cors.origins;
  // any other is refused, not merely left without CORS headers (the event would be stored all the same)
  const allowedOrigin = (origin: string): boolean =>
    config.cors.origins.includes('*') || config.cors.origins.includes(origin)
  app.addHook('onRequest', async (request, reply) => {
    const origin = request.headers.origin
    if (!origin || routeKind(request.url) === 'ops') return
    if (!allowedOrigin(origin)) {
      throw new SpillwayError(
        'SPW_ERR_FORBIDDEN_ORIGIN',
        `browser origin ${origin} may not send events here; add it to cors.origins`,
        { details: { origin } },
      )
    }
    reply.header('access-control-allow-origin', origin)
    reply.header('vary', 'Origin')
    reply.header('access-control-allow-methods', 'POST, GET, OPTIONS')
    reply.header('access-control-allow-headers', 'content-type, content-encoding, authorization')
    reply.header('access-control-max-age', '600')
  })
  if (config.cors.origins.length > 0) app.options('/*', async (_request, reply) => reply.code(204).send())

  // ─── route families, each with its own error handler ─────────────────────────────────────────
  await app.register(segmentRoutes(context))
  await app.register(restProxyRoutes(context))
  // with ops.port the views get a listener of their own; the main port keeps the probes
  await app.register(
    operationsRoutes(context, { probes: true, views: config.ops.port === undefined, trusted: false }),
  )
  const opsApp =
    config.ops.port === undefined
      ? undefined
      : (Fastify({ loggerInstance: app.log }) as unknown as FastifyInstance)
  await opsApp?.register(operationsRoutes(context, { probes: true, views: true, trusted: true }))

  let closing: Promise<void> | undefined
  let opsUrl: string | undefined
  return {
    get opsUrl() {
      return opsUrl
    },
    app,
    producer,
    config,
    logger,
    async listen() {
      const address = await app.listen({ host: config.host, port: config.port })
      if (opsApp) {
        opsUrl = await opsApp.listen({ host: config.host, port: config.ops.port ?? 0 })
        logger.info({ address: opsUrl }, 'operations views (metrics, status) listening')
      }
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
        telemetry.stop()
        // One deadline for the whole shutdown: stop accepting, give requests under way what is left of
        // it, then cut the connections still open (a stalled client must not hold the process). What
        // was acknowledged is in the log already; delivery gets the rest of the time.
        const deadline = performance.now() + timeoutMs
        let timer: NodeJS.Timeout | undefined
        const cut = new Promise<'cut'>((resolve) => {
          timer = setTimeout(() => resolve('cut'), timeoutMs)
        })
        const closed = Promise.all([app.close(), opsApp?.close()])
        if ((await Promise.race([closed.then(() => 'closed' as const), cut])) === 'cut') {
          logger.warn('shutdown deadline reached: closing the connections of requests still under way')
          app.server.closeAllConnections()
          await closed
        }
        clearTimeout(timer)
        // the gateway's own lease only (lingerMs 0): another component of this process keeps its own
        await producer.close(Math.max(0, deadline - performance.now()))
        logger.info(
          producer.stats().log ? { pending: String(producer.stats().log?.pendingRecords) } : {},
          'spillway gateway stopped',
        )
      })()
      return closing
    },
  }
}
