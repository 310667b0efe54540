/**
 * Every error spillway raises is a SpillwayError with a stable `code`. The table below is the single
 * source of truth: docs/errors.md lists the same codes and a test keeps the two in step.
 *
 * `retriable` answers the caller's one question: "may I send this again later and expect it to work?"
 * `status` is the HTTP status the gateway answers with.
 */
export const errorCodes = {
  SPW_ERR_INVALID_OPTION: {
    retriable: false,
    status: 500,
    summary: 'An option is missing, of the wrong type or out of range.',
  },
  SPW_ERR_LOG_FULL: {
    retriable: true,
    status: 503,
    summary: "The local log's disk budget (log.maxBytes) is exhausted.",
  },
  SPW_ERR_LOG_IO: {
    retriable: true,
    status: 503,
    summary: 'A write or fsync of the local log failed; the log refuses further appends.',
  },
  SPW_ERR_LOG_CLOSED: { retriable: true, status: 503, summary: 'The local log is closed or closing.' },
  SPW_ERR_LOG_LOCKED: {
    retriable: false,
    status: 500,
    summary: 'Another live process owns this log directory.',
  },
  SPW_ERR_RECORD_TOO_LARGE: {
    retriable: false,
    status: 413,
    summary: 'One record is larger than the configured maximum.',
  },
  SPW_ERR_BACKPRESSURE: {
    retriable: true,
    status: 503,
    summary: 'A memory or disk budget is full; try again shortly.',
  },
  SPW_ERR_UNAVAILABLE: {
    retriable: true,
    status: 503,
    summary: 'Kafka is unavailable (the breaker is not closed) and the ack mode needs it.',
  },
  SPW_ERR_TIMEOUT: {
    retriable: true,
    status: 503,
    summary: 'A call to Kafka did not finish within its deadline.',
  },
  SPW_ERR_CLOSED: {
    retriable: true,
    status: 503,
    summary: 'The producer is closed or closing and takes no new events.',
  },
  SPW_ERR_ILLEGAL_TRANSITION: {
    retriable: false,
    status: 500,
    summary: 'A state machine was asked to make a move its table forbids.',
  },
  SPW_ERR_POISON: {
    retriable: false,
    status: 422,
    summary:
      'Kafka can never accept this record (too large, invalid topic, not authorized); it was dead-lettered.',
  },
  SPW_ERR_BAD_REQUEST: {
    retriable: false,
    status: 400,
    summary: 'The request is malformed: bad JSON, invalid UTF-8, a missing or wrong field.',
  },
  SPW_ERR_UNSUPPORTED_MEDIA_TYPE: {
    retriable: false,
    status: 415,
    summary: 'The request has a content-type the endpoint does not accept.',
  },
  SPW_ERR_PAYLOAD_TOO_LARGE: {
    retriable: false,
    status: 413,
    summary: 'The request body, or one event in it, is over the size limit.',
  },
  SPW_ERR_UNAUTHORIZED: {
    retriable: false,
    status: 401,
    summary: 'The write key or API key is missing or unknown.',
  },
  SPW_ERR_FORBIDDEN_TOPIC: { retriable: false, status: 403, summary: 'The key may not write to this topic.' },
  SPW_ERR_UNKNOWN_TOPIC: {
    retriable: false,
    status: 404,
    summary: 'No route maps this request to a configured topic.',
  },
  SPW_ERR_FORBIDDEN_ORIGIN: {
    retriable: false,
    status: 403,
    summary: 'A browser request from an origin not in cors.origins.',
  },
  SPW_ERR_RATE_LIMITED: { retriable: true, status: 429, summary: "The key's rate limit is exceeded." },
  SPW_ERR_NOT_FOUND: { retriable: false, status: 404, summary: 'No such route.' },
  SPW_ERR_REQUEST_TIMEOUT: {
    retriable: true,
    status: 408,
    summary: 'The client took longer than limits.requestTimeoutMs to send its request.',
  },
  SPW_ERR_URI_TOO_LONG: { retriable: false, status: 414, summary: 'A path segment is too long.' },
  SPW_ERR_HEADERS_TOO_LARGE: {
    retriable: false,
    status: 431,
    summary: "The request's headers are larger than the server takes.",
  },
  SPW_ERR_INTERNAL: {
    retriable: false,
    status: 500,
    summary: 'A bug in spillway: the request failed in a way it should not have. Logged with its stack.',
  },
  SPW_ERR_KAFKA_AUTH: {
    retriable: false,
    status: 503,
    summary: 'The brokers refused the SASL credentials (wrong user, password or mechanism).',
  },
  SPW_ERR_KAFKA_DENIED: {
    retriable: false,
    status: 503,
    summary: "Kafka's ACLs deny this client the operation (a topic, group or cluster authorization failure).",
  },
  SPW_ERR_TOPIC_MISSING: {
    retriable: true,
    status: 503,
    summary: 'The topic does not exist in Kafka (yet).',
  },
  SPW_ERR_KAFKA_UNSUPPORTED: {
    retriable: false,
    status: 503,
    summary: 'The brokers do not support a request this operation needs (too old a Kafka version).',
  },
  SPW_ERR_GROUP_FENCED: {
    retriable: true,
    status: 503,
    summary:
      "The consumer group moved on without this member (fenced or stale epoch): its partitions' work is not committed; it rejoins.",
  },
  SPW_ERR_HANDLER_FAILED: {
    retriable: true,
    status: 500,
    summary: "A consumer's handler (or its decoder) threw for a record; the record went through onError.",
  },
  SPW_ERR_HANDLER_TIMEOUT: {
    retriable: true,
    status: 500,
    summary:
      "A consumer's handler did not finish within handlerTimeoutMs; the record went through onHandlerTimeout.",
  },
  SPW_ERR_RETRY_TRANSACTION: {
    retriable: true,
    status: 503,
    summary:
      'Forwarding records to a retry tier or the dead-letter topic, with their source offsets, in one Kafka transaction failed or its outcome was unknown; the transaction was aborted and is tried again, so no tier gets a second copy.',
  },
  SPW_ERR_SINK_UNAVAILABLE: {
    retriable: true,
    status: 503,
    summary:
      "A sink's database cannot be reached, is restarting or failed the batch for a passing reason; the sink holds the partition and retries with back-off.",
  },
  SPW_ERR_SINK_REFUSED: {
    retriable: false,
    status: 422,
    summary:
      "The database refused a row (a wrong type, a constraint); the record went to its dead-letter topic with the database's message.",
  },
  SPW_ERR_SINK_DECODE: {
    retriable: false,
    status: 422,
    summary:
      "A record's value is not the JSON its table mapping needs; the record went to its dead-letter topic.",
  },
} as const

export type ErrorCode = keyof typeof errorCodes

const brand = Symbol.for('spillway.error')

export interface SpillwayErrorOptions {
  readonly cause?: unknown
  /** Structured context for logs and HTTP bodies: the bad key, the JSON path, the position in the log… */
  readonly details?: Readonly<Record<string, unknown>>
}

/** The one error class spillway throws. Recognised across copies of the module by a global brand. */
export class SpillwayError extends Error {
  readonly code: ErrorCode
  readonly retriable: boolean
  readonly status: number
  readonly details: Readonly<Record<string, unknown>>

  constructor(code: ErrorCode, message: string, options: SpillwayErrorOptions = {}) {
    super(message, options.cause === undefined ? undefined : { cause: options.cause })
    this.name = 'SpillwayError'
    this.code = code
    this.retriable = errorCodes[code].retriable
    this.status = errorCodes[code].status
    this.details = options.details ?? {}
    Object.defineProperty(this, brand, { value: true })
  }

  static override [Symbol.hasInstance](value: unknown): boolean {
    return typeof value === 'object' && value !== null && (value as Record<symbol, unknown>)[brand] === true
  }

  toJSON(): Record<string, unknown> {
    return { code: this.code, message: this.message, retriable: this.retriable, ...this.details }
  }
}

export function isSpillwayError(value: unknown, code?: ErrorCode): value is SpillwayError {
  return value instanceof SpillwayError && (code === undefined || value.code === code)
}

/** `value` if it is a SpillwayError already, otherwise one with `code` that keeps `value` as its cause. */
export function asSpillwayError(value: unknown, code: ErrorCode = 'SPW_ERR_UNAVAILABLE'): SpillwayError {
  return isSpillwayError(value) ? value : new SpillwayError(code, String(value), { cause: value })
}
