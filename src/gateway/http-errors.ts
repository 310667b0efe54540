/**
 * Errors as HTTP clients see them. Fastify's own errors (a body over the limit, a content type no
 * parser takes) become SpillwayErrors with stable codes; each route family answers in its own shape:
 * the Segment and operations routes `{ success: false, code, message, retriable, path? }`, the REST Proxy
 * routes Confluent's `{ error_code, message }` plus `code`. Retriable refusals carry Retry-After.
 */
import type { FastifyError, FastifyReply, FastifyRequest } from 'fastify'
import type { Logger } from 'pino'
import { isSpillwayError, SpillwayError } from '../errors.ts'
import { restError } from './rest-proxy.ts'

export type RouteKind = 'segment' | 'rest' | 'ops'

export function routeKind(url: string | undefined): RouteKind {
  if (url?.startsWith('/v1/')) return 'segment'
  if (url?.startsWith('/v3/')) return 'rest'
  return 'ops'
}

export function toSpillwayError(error: unknown): SpillwayError {
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
    case 'FST_ERR_MAX_PARAM_LENGTH':
      return new SpillwayError('SPW_ERR_URI_TOO_LONG', 'a path segment is too long')
    case 'FST_ERR_CTP_EMPTY_JSON_BODY':
    case 'FST_ERR_CTP_INVALID_CONTENT_LENGTH':
      return new SpillwayError('SPW_ERR_BAD_REQUEST', e.message)
    default:
      if (typeof e.statusCode === 'number' && e.statusCode >= 400 && e.statusCode < 500) {
        return new SpillwayError('SPW_ERR_BAD_REQUEST', e.message)
      }
      // a bug, not a storage fault: a retriable 503 would make clients retry it forever
      return new SpillwayError('SPW_ERR_INTERNAL', `internal error: ${(error as Error).message}`, {
        cause: error,
      })
  }
}

/** Retry-After for a refusal the client may retry (503, 429). */
function retryAfter(reply: FastifyReply, error: SpillwayError): void {
  if (error.status === 503 || error.status === 429) {
    const ms = Number(error.details.retryAfterMs ?? 1000)
    reply.header('retry-after', String(Math.max(1, Math.ceil(ms / 1000))))
  }
}

/** The Segment and operations shape. */
export function sendJsonError(reply: FastifyReply, error: SpillwayError): FastifyReply {
  retryAfter(reply, error)
  const path = error.details.path ?? error.details.field
  return reply.code(error.status).send({
    success: false,
    code: error.code,
    message: error.message,
    retriable: error.retriable,
    ...(path !== undefined ? { path } : {}),
  })
}

/** Confluent REST Proxy v3's shape, plus spillway's code. */
export function sendRestError(reply: FastifyReply, error: SpillwayError): FastifyReply {
  retryAfter(reply, error)
  return reply.code(error.status).send({ ...restError(error.status, error.message), code: error.code })
}

export function sendError(reply: FastifyReply, kind: RouteKind, error: SpillwayError): FastifyReply {
  return kind === 'rest' ? sendRestError(reply, error) : sendJsonError(reply, error)
}

/**
 * A route family's error handler: answers in the family's shape, counts the refusal, and logs what is
 * not the client's doing (a bug, SPW_ERR_INTERNAL, with its stack; any other non-retriable 5xx).
 */
export function errorHandler(
  kind: RouteKind,
  logger: Logger,
  refused: (code: string) => void,
): (error: unknown, request: FastifyRequest, reply: FastifyReply) => FastifyReply {
  return (error, request, reply) => {
    const spw = toSpillwayError(error)
    if (spw.code === 'SPW_ERR_INTERNAL') {
      logger.error({ code: spw.code, url: request.url, err: spw.cause ?? spw }, 'request failed: a bug')
    } else if (spw.status >= 500 && !spw.retriable) {
      logger.error({ code: spw.code, err: spw.message }, 'request failed')
    }
    refused(spw.code)
    return sendError(reply, kind, spw)
  }
}

/**
 * Errors Node's HTTP parser raises before there is a request (a timeout, headers too large, garbage):
 * answered in the same JSON shape, with a code, then the connection is closed.
 */
export function clientErrorHandler(error: NodeJS.ErrnoException, socket: import('node:net').Socket): void {
  if (error.code === 'ECONNRESET' || socket.destroyed) return
  const spw =
    error.code === 'ERR_HTTP_REQUEST_TIMEOUT'
      ? new SpillwayError(
          'SPW_ERR_REQUEST_TIMEOUT',
          'the request was not sent in time (limits.requestTimeoutMs)',
        )
      : error.code === 'HPE_HEADER_OVERFLOW'
        ? new SpillwayError('SPW_ERR_HEADERS_TOO_LARGE', "the request's headers are too large")
        : new SpillwayError(
            'SPW_ERR_BAD_REQUEST',
            `the request cannot be parsed (${error.code ?? 'malformed'})`,
          )
  const body = JSON.stringify({
    success: false,
    code: spw.code,
    message: spw.message,
    retriable: spw.retriable,
  })
  if (socket.writable) {
    socket.write(
      `HTTP/1.1 ${spw.status} ${spw.code}\r\nContent-Length: ${Buffer.byteLength(body)}\r\n` +
        `Content-Type: application/json\r\nConnection: close\r\n\r\n${body}`,
    )
  }
  socket.destroy()
}
