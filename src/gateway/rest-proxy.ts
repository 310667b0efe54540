/**
 * Confluent REST Proxy v3 produce: POST /v3/clusters/{cluster_id}/topics/{topic_name}/records.
 * One JSON record per request, or several concatenated (streaming mode) answered one JSON line each.
 * Schema-registry formats (AVRO, PROTOBUF, JSONSCHEMA) are refused with 400.
 */
import { SpillwayError } from '../errors.ts'
import type { EventInput } from '../producer/producer.ts'
import { fieldError } from './body.ts'

export interface RestRecord {
  readonly event: EventInput
  /** The bytes it writes: key, value and headers. */
  readonly bytes: number
  readonly keyInfo: { type: string; size: number } | null
  readonly valueInfo: { type: string; size: number } | null
  readonly partition: number | undefined
  readonly timestamp: string
}

function isObject(v: unknown): v is Record<string, unknown> {
  return typeof v === 'object' && v !== null && !Array.isArray(v)
}

const BASE64 = /^[A-Za-z0-9+/]*={0,2}$/

/** Strict base64: the alphabet, padding only at the end, and a length that is a multiple of 4. */
function isBase64(value: string): boolean {
  return BASE64.test(value) && value.length % 4 === 0
}

function readData(v: unknown, path: string): { bytes: Buffer; type: string } | undefined {
  if (v === undefined || v === null) return undefined
  if (!isObject(v)) throw fieldError(path, 'must be an object like { "type": "JSON", "data": … }')
  const type = v.type === undefined ? 'JSON' : v.type
  if (type === 'BINARY') {
    if (typeof v.data !== 'string' || !isBase64(v.data)) {
      throw fieldError(`${path}.data`, 'must be base64 for type BINARY')
    }
    return { bytes: Buffer.from(v.data, 'base64'), type }
  }
  if (type === 'STRING') {
    if (typeof v.data !== 'string') throw fieldError(`${path}.data`, 'must be a string for type STRING')
    return { bytes: Buffer.from(v.data), type }
  }
  if (type === 'JSON') {
    if (v.data === undefined) throw fieldError(`${path}.data`, 'is required')
    return { bytes: Buffer.from(JSON.stringify(v.data)), type }
  }
  if (typeof type === 'string' && ['AVRO', 'PROTOBUF', 'JSONSCHEMA'].includes(type)) {
    throw fieldError(
      `${path}.type`,
      `${type} needs a schema registry, which this endpoint does not use; send JSON, STRING or BINARY`,
    )
  }
  throw fieldError(`${path}.type`, 'must be one of JSON, STRING, BINARY')
}

export function restRecord(raw: unknown, path: string, maxEventBytes: number): RestRecord {
  if (!isObject(raw)) throw fieldError(path, 'must be a JSON object')
  const known = ['partition_id', 'headers', 'key', 'value', 'timestamp']
  for (const k of Object.keys(raw))
    if (!known.includes(k)) throw fieldError(`${path}.${k}`, `is not a known field (${known.join(', ')})`)
  let partition: number | undefined
  if (raw.partition_id !== undefined && raw.partition_id !== null) {
    if (typeof raw.partition_id !== 'number' || !Number.isInteger(raw.partition_id) || raw.partition_id < 0) {
      throw fieldError(`${path}.partition_id`, 'must be a non-negative integer')
    }
    partition = raw.partition_id
  }
  // a list, not an object: Kafka allows a name more than once, and any name (even "__proto__") is kept
  const headers: [string, Buffer][] = []
  let headerBytes = 0
  if (raw.headers !== undefined && raw.headers !== null) {
    if (!Array.isArray(raw.headers))
      throw fieldError(`${path}.headers`, 'must be an array of { name, value }')
    raw.headers.forEach((h, i) => {
      const hp = `${path}.headers[${i}]`
      if (!isObject(h) || typeof h.name !== 'string' || h.name.length === 0)
        throw fieldError(`${hp}.name`, 'must be a non-empty string')
      if (h.value !== undefined && h.value !== null && (typeof h.value !== 'string' || !isBase64(h.value))) {
        throw fieldError(`${hp}.value`, 'must be strict base64 (padded, no whitespace)')
      }
      const value = typeof h.value === 'string' ? Buffer.from(h.value, 'base64') : Buffer.alloc(0)
      headers.push([h.name, value])
      headerBytes += Buffer.byteLength(h.name) + value.length
    })
  }
  let timestamp = new Date()
  if (raw.timestamp !== undefined && raw.timestamp !== null) {
    if (typeof raw.timestamp !== 'string' || Number.isNaN(Date.parse(raw.timestamp))) {
      throw fieldError(`${path}.timestamp`, 'must be an ISO-8601 date string')
    }
    timestamp = new Date(raw.timestamp)
  }
  const key = readData(raw.key, `${path}.key`)
  const value = readData(raw.value, `${path}.value`)
  const size = (key?.bytes.length ?? 0) + (value?.bytes.length ?? 0) + headerBytes
  if (size > maxEventBytes) {
    throw new SpillwayError(
      'SPW_ERR_PAYLOAD_TOO_LARGE',
      `${path} is ${size} bytes (key, value and headers); at most ${maxEventBytes} per record`,
      {
        details: { path, max: maxEventBytes },
      },
    )
  }
  const event: EventInput = {
    value: value?.bytes ?? Buffer.alloc(0),
    headers,
    timestamp,
    ...(key ? { key: key.bytes } : {}),
    ...(partition !== undefined ? { partition } : {}),
  }
  return {
    event,
    bytes: size,
    keyInfo: key ? { type: key.type, size: key.bytes.length } : null,
    valueInfo: value ? { type: value.type, size: value.bytes.length } : null,
    partition,
    timestamp: timestamp.toISOString(),
  }
}

/** The success body of one record, in REST Proxy v3's shape. */
export function restSuccess(clusterId: string, topic: string, r: RestRecord): Record<string, unknown> {
  return {
    error_code: 200,
    cluster_id: clusterId,
    topic_name: topic,
    // answered from the local log before Kafka assigns them: the requested partition or -1, offset -1
    partition_id: r.partition ?? -1,
    offset: -1,
    timestamp: r.timestamp,
    key: r.keyInfo,
    value: r.valueInfo,
  }
}

export function restError(status: number, message: string): Record<string, unknown> {
  return { error_code: status, message }
}
