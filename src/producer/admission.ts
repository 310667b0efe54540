/**
 * Admission: turns what a caller hands to send() into envelopes, or into a refusal that names the bad
 * field (`events[3].timestamp`). Nothing here touches the log or Kafka; an event that passes is exactly
 * what will be stored and delivered, with its size already known.
 */
import { SpillwayError } from '../errors.ts'
import { isTopicName, TOPIC_NAME_RULE } from '../topic-name.ts'
import { type Envelope, envelopeSize } from './envelope.ts'
import type { EventInput } from './types.ts'
import { uuidv7 } from './uuidv7.ts'

/** An admitted event: its envelope, with the size of its encoding, written straight into the log. */
export interface Prepared extends Envelope {
  /** Set once the envelope exists: its size is computed from it. */
  size: number
}

/** An event refused at admission, with the id it came with (if any). */
export interface Invalid {
  readonly error: SpillwayError
  readonly id: string | undefined
}

function badEvent(e: EventInput | null | undefined, index: number, name: string, message: string): Invalid {
  const field = name ? `events[${index}].${name}` : `events[${index}]`
  return {
    id: typeof e?.id === 'string' ? e.id : undefined,
    error: new SpillwayError('SPW_ERR_BAD_REQUEST', `${field} ${message}`, { details: { field } }),
  }
}

const utf8 = new TextEncoder()
/** Most events carry no headers: they share one empty list. */
const NO_HEADERS: readonly [string, Buffer][] = Object.freeze([])

function toBuffer(value: EventInput['value']): Buffer {
  if (Buffer.isBuffer(value)) return value
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength)
  if (typeof value === 'string') return Buffer.from(utf8.encode(value))
  return Buffer.from(JSON.stringify(value))
}

export class Admission {
  readonly #maxEventBytes: number
  /** The last topic name that passed validation: a request's events nearly always share one. */
  #validTopic = ''

  constructor(maxEventBytes: number) {
    this.#maxEventBytes = maxEventBytes
  }

  /** Validates one event and builds its envelope, or says which field is wrong. */
  prepare(topic: string, e: EventInput, index: number, now: number): Prepared | Invalid {
    if (topic !== this.#validTopic) {
      if (!isTopicName(topic)) {
        return {
          id: typeof e?.id === 'string' ? e.id : undefined,
          error: new SpillwayError(
            'SPW_ERR_BAD_REQUEST',
            `topic ${JSON.stringify(topic)} is not ${TOPIC_NAME_RULE}`,
            { details: { field: 'topic' } },
          ),
        }
      }
      this.#validTopic = topic
    }
    if (typeof e !== 'object' || e === null) return badEvent(e, index, '', 'must be an object')
    if (e.value === undefined) return badEvent(e, index, 'value', 'is required')
    if (
      e.id !== undefined &&
      (typeof e.id !== 'string' || e.id.length === 0 || Buffer.byteLength(e.id) > 200)
    ) {
      return badEvent(e, index, 'id', 'must be a string of 1 to 200 bytes')
    }
    if (e.key !== undefined && typeof e.key !== 'string' && !Buffer.isBuffer(e.key))
      return badEvent(e, index, 'key', 'must be a string or bytes')
    let headers: [string, Buffer][] | undefined
    if (e.headers !== undefined) {
      if (typeof e.headers !== 'object' || e.headers === null)
        return badEvent(e, index, 'headers', 'must be an object or a list of [name, value]')
      if (Array.isArray(e.headers)) {
        const list = e.headers as readonly (readonly [string, string | Buffer])[]
        for (let h = 0; h < list.length; h++) {
          const pair = list[h]
          const name = pair?.[0]
          const value = pair?.[1]
          if (
            !Array.isArray(pair) ||
            typeof name !== 'string' ||
            (typeof value !== 'string' && !Buffer.isBuffer(value))
          )
            return badEvent(e, index, `headers[${h}]`, 'must be [name, string or bytes]')
          headers ??= []
          headers.push([name, typeof value === 'string' ? Buffer.from(value) : value])
        }
      } else {
        const record = e.headers as Readonly<Record<string, string | Buffer>>
        for (const name in record) {
          if (!Object.hasOwn(record, name)) continue
          const value = record[name]
          if (typeof value !== 'string' && !Buffer.isBuffer(value))
            return badEvent(e, index, `headers.${name}`, 'must be a string or bytes')
          headers ??= []
          headers.push([name, typeof value === 'string' ? Buffer.from(value) : value])
        }
      }
    }
    let timestamp = now
    if (e.timestamp !== undefined) {
      timestamp = e.timestamp instanceof Date ? e.timestamp.getTime() : e.timestamp
      if (!Number.isFinite(timestamp) || timestamp < 0)
        return badEvent(e, index, 'timestamp', 'must be a non-negative number of ms or a Date')
    }
    if (
      e.partition !== undefined &&
      (!Number.isInteger(e.partition) || e.partition < 0 || e.partition > 0x7fffffff)
    ) {
      return badEvent(e, index, 'partition', 'must be a non-negative integer')
    }
    let value: Buffer
    try {
      value = toBuffer(e.value)
    } catch (error) {
      return badEvent(e, index, 'value', `cannot be serialised: ${(error as Error).message}`)
    }
    // one object per event: the envelope, and then its encoded size, which decides here
    const envelope: Prepared = {
      id: e.id ?? uuidv7(now),
      topic,
      key: e.key === undefined ? undefined : typeof e.key === 'string' ? Buffer.from(e.key) : e.key,
      value,
      headers: headers ?? NO_HEADERS,
      timestamp: Math.floor(timestamp),
      partition: e.partition,
      size: 0,
    }
    const size = envelopeSize(envelope)
    envelope.size = size
    if (size > this.#maxEventBytes) {
      const field = `events[${index}].value`
      return {
        id: envelope.id,
        error: new SpillwayError(
          'SPW_ERR_RECORD_TOO_LARGE',
          `${field}: the event is ${size} bytes, over maxEventBytes (${this.#maxEventBytes})`,
          { details: { field, bytes: size, max: this.#maxEventBytes } },
        ),
      }
    }
    return envelope
  }
}
