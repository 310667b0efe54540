/**
 * Segment HTTP Tracking API: POST /v1/batch, /v1/track, /v1/identify, /v1/page, /v1/screen, /v1/group,
 * /v1/alias. Turns a request into events for the producer, or throws an error naming the JSON path.
 * The event id is the message's `messageId` (filled when absent), so an SDK retry with the same
 * messageId carries the same id downstream and can be deduplicated there.
 */
import { SpillwayError } from '../errors.ts'
import type { EventInput } from '../producer/producer.ts'
import { uuidv7 } from '../producer/uuidv7.ts'
import { mayWrite, type Principal } from './auth.ts'
import { fieldError } from './body.ts'
import type { GatewayConfig } from './config.ts'

export const SEGMENT_TYPES = ['track', 'identify', 'page', 'screen', 'group', 'alias'] as const
export type SegmentType = (typeof SEGMENT_TYPES)[number]

export interface IngestItem {
  readonly topic: string
  readonly event: EventInput
  /** The bytes it writes: value and headers. */
  readonly bytes: number
  /** Where it is in the request (`$.batch[3]`), to name a field the producer refuses in request terms. */
  readonly path: string
}

/**
 * Counts what a request writes as its items are built, and refuses it with 413 the moment it passes
 * `limits.maxRequestWriteBytes`: batch-level `context` merged into every message can make a small body
 * write hundreds of times its size.
 */
export class WriteBudget {
  #bytes = 0
  readonly #max: number

  constructor(max: number) {
    this.#max = max
  }

  get bytes(): number {
    return this.#bytes
  }

  add(bytes: number): void {
    this.#bytes += bytes
    if (this.#bytes > this.#max) {
      throw new SpillwayError(
        'SPW_ERR_PAYLOAD_TOO_LARGE',
        `the request writes more than ${this.#max} bytes once batch context is merged into each message (limits.maxRequestWriteBytes)`,
        { details: { path: '$', max: this.#max } },
      )
    }
  }
}

/** Bytes of an event's headers as stored: names and values. */
export function headerBytes(headers: Readonly<Record<string, string | Buffer>>): number {
  let n = 0
  for (const name in headers) {
    const value = headers[name] as string | Buffer
    n += Buffer.byteLength(name) + (typeof value === 'string' ? Buffer.byteLength(value) : value.length)
  }
  return n
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

function optionalString(
  message: Record<string, unknown>,
  name: string,
  path: string,
  max = 1000,
): string | undefined {
  const v = message[name]
  if (v === undefined || v === null) return undefined
  if (
    typeof v === 'number' &&
    (name === 'userId' || name === 'anonymousId' || name === 'groupId' || name === 'previousId')
  )
    return String(v)
  if (typeof v !== 'string') throw fieldError(`${path}.${name}`, 'must be a string')
  if (v.length > max) throw fieldError(`${path}.${name}`, `is longer than ${max} characters`)
  return v
}

/** A user identity: a non-empty string; a number is taken as its decimal text (SDKs send both). */
function identity(message: Record<string, unknown>, name: string, path: string): string | undefined {
  const v = message[name]
  if (v === undefined || v === null) return undefined
  if (typeof v === 'number') {
    if (!Number.isFinite(v))
      throw fieldError(`${path}.${name}`, 'must be a non-empty string (or a finite number)')
    return String(v)
  }
  if (typeof v !== 'string') throw fieldError(`${path}.${name}`, 'must be a non-empty string')
  if (v.length > 1000) throw fieldError(`${path}.${name}`, 'is longer than 1000 characters')
  // an empty id is no id: `userId: ""` beside an anonymousId keys the event by the anonymousId
  return v.length === 0 ? undefined : v
}

/**
 * ISO-8601 as Segment documents it: a calendar date, optionally with a time and a zone
 * (`2024-02-29`, `2024-02-29T10:00:00Z`, `2024-02-29T10:00:00.123+02:00`). `Date.parse` alone takes
 * "1" and "Tue March 5", and rolls "2024-02-30" over into March; the date must also exist.
 */
const ISO_8601 =
  /^(\d{4})-(\d{2})-(\d{2})(?:[T ](\d{2}):(\d{2})(?::(\d{2})(?:\.\d{1,9})?)?(Z|[+-]\d{2}:?\d{2})?)?$/

export function isIsoDate(value: string): boolean {
  const m = ISO_8601.exec(value)
  if (!m) return false
  const [year, month, day] = [Number(m[1]), Number(m[2]), Number(m[3])]
  if (month < 1 || month > 12 || day < 1) return false
  // the last day of that month: day 0 of the next one
  if (day > new Date(Date.UTC(year, month, 0)).getUTCDate()) return false
  const [hour, minute, second] = [Number(m[4] ?? 0), Number(m[5] ?? 0), Number(m[6] ?? 0)]
  return hour < 24 && minute < 60 && second < 60 && !Number.isNaN(Date.parse(value))
}

function checkDate(message: Record<string, unknown>, name: string, path: string): void {
  const v = message[name]
  if (v === undefined || v === null) return
  if (typeof v !== 'string' || !isIsoDate(v))
    throw fieldError(`${path}.${name}`, 'must be an ISO-8601 date (2024-02-29T10:00:00Z)')
}

/** Validates and completes one Segment message; returns it with messageId and receivedAt set. */
export function normaliseMessage(
  raw: unknown,
  type: SegmentType,
  path: string,
  shared: { context?: unknown; integrations?: unknown },
  receivedAt: string,
): { message: Record<string, unknown>; id: string; key: string } {
  if (!isObject(raw)) throw fieldError(path, 'must be an object')
  const userId = identity(raw, 'userId', path)
  const anonymousId = identity(raw, 'anonymousId', path)
  if (userId === undefined && anonymousId === undefined)
    throw fieldError(`${path}.userId`, 'or anonymousId is required (a non-empty string)')
  if (type === 'track') {
    const event = optionalString(raw, 'event', path)
    if (!event) throw fieldError(`${path}.event`, 'is required for track')
  }
  if (type === 'group' && optionalString(raw, 'groupId', path) === undefined)
    throw fieldError(`${path}.groupId`, 'is required for group')
  if (type === 'alias' && optionalString(raw, 'previousId', path) === undefined)
    throw fieldError(`${path}.previousId`, 'is required for alias')
  for (const name of ['properties', 'traits', 'context', 'integrations'] as const) {
    const v = raw[name]
    if (v !== undefined && v !== null && !isObject(v))
      throw fieldError(`${path}.${name}`, 'must be an object')
  }
  checkDate(raw, 'timestamp', path)
  checkDate(raw, 'sentAt', path)
  checkDate(raw, 'originalTimestamp', path)
  const given = raw.messageId
  if (
    given !== undefined &&
    given !== null &&
    (typeof given !== 'string' || given.length === 0 || Buffer.byteLength(given) > 200)
  )
    throw fieldError(`${path}.messageId`, 'must be a string of 1 to 200 bytes')
  const messageId = typeof given === 'string' ? given : uuidv7()
  const { writeKey: _secret, ...rest } = raw
  const message: Record<string, unknown> = { ...rest, type, messageId, receivedAt }
  if (userId !== undefined) message.userId = userId
  else delete message.userId
  if (anonymousId !== undefined) message.anonymousId = anonymousId
  else delete message.anonymousId
  if (isObject(shared.context))
    message.context = { ...shared.context, ...(isObject(raw.context) ? raw.context : {}) }
  if (isObject(shared.integrations))
    message.integrations = { ...shared.integrations, ...(isObject(raw.integrations) ? raw.integrations : {}) }
  return { message, id: messageId, key: userId ?? (anonymousId as string) }
}

export function segmentTopic(config: GatewayConfig, principal: Principal, type: SegmentType): string {
  return config.segment.byKey[principal.name] ?? config.segment.byType[type] ?? config.segment.defaultTopic
}

/** Builds the producer items for one request to `/v1/<route>`. */
export function segmentItems(
  route: 'batch' | SegmentType,
  body: unknown,
  principal: Principal,
  config: GatewayConfig,
): IngestItem[] {
  if (!isObject(body)) throw fieldError('$', 'must be a JSON object')
  const receivedAt = new Date().toISOString()
  const raw: { value: unknown; type: SegmentType; path: string }[] = []
  let shared: { context?: unknown; integrations?: unknown } = {}
  if (route === 'batch') {
    const batch = body.batch
    if (!Array.isArray(batch)) throw fieldError('$.batch', 'must be an array of messages')
    if (batch.length === 0) throw fieldError('$.batch', 'is empty')
    if (batch.length > config.limits.maxEvents) {
      throw new SpillwayError(
        'SPW_ERR_PAYLOAD_TOO_LARGE',
        `$.batch has ${batch.length} messages; at most ${config.limits.maxEvents} per request`,
        {
          details: { path: '$.batch', max: config.limits.maxEvents },
        },
      )
    }
    shared = { context: body.context, integrations: body.integrations }
    batch.forEach((m, i) => {
      const path = `$.batch[${i}]`
      const type = isObject(m) ? m.type : undefined
      if (typeof type !== 'string' || !(SEGMENT_TYPES as readonly string[]).includes(type)) {
        throw fieldError(`${path}.type`, `must be one of ${SEGMENT_TYPES.join(', ')}`)
      }
      raw.push({ value: m, type: type as SegmentType, path })
    })
  } else {
    raw.push({ value: body, type: route, path: '$' })
  }
  const budget = new WriteBudget(config.limits.maxRequestWriteBytes)
  const ids = new Map<string, string>()
  return raw.map(({ value, type, path }) => {
    const { message, id, key } = normaliseMessage(value, type, path, shared, receivedAt)
    const earlier = ids.get(id)
    if (earlier !== undefined) throw fieldError(`${path}.messageId`, `repeats the messageId of ${earlier}`)
    ids.set(id, path)
    const bytes = Buffer.from(JSON.stringify(message))
    const headers = { 'segment-type': type, 'content-type': 'application/json' }
    // the event as stored: the message with the gateway's messageId and receivedAt, and its headers
    const size = bytes.length + headerBytes(headers)
    if (size > config.limits.maxEventBytes) {
      throw new SpillwayError(
        'SPW_ERR_PAYLOAD_TOO_LARGE',
        `${path} is ${size} bytes as stored (headers and messageId/receivedAt included); at most ${config.limits.maxEventBytes} per event`,
        {
          details: { path, max: config.limits.maxEventBytes },
        },
      )
    }
    budget.add(size)
    const topic = segmentTopic(config, principal, type)
    if (!mayWrite(principal, topic)) {
      throw new SpillwayError(
        'SPW_ERR_FORBIDDEN_TOPIC',
        `key ${principal.name} may not write to topic ${topic}`,
        { details: { path, topic } },
      )
    }
    return {
      topic,
      event: {
        id: principal.dedupeScope === 'key' ? `${principal.name}:${id}` : id,
        key,
        value: bytes,
        headers,
      },
      bytes: size,
      path,
    }
  })
}
