/**
 * Kafka's record batch (magic v2, uncompressed), written in one pass into one buffer.
 *
 * The client library builds each record from several small buffers and joins them twice (once for the
 * CRC, once for the socket); for a durable producer that re-sends what its log already holds, that
 * per-record work was the largest single cost of delivery. Here a batch is sized first, then written
 * with plain stores, and checksummed with one native CRC32C call.
 *
 * Layout (https://kafka.apache.org/documentation/#recordbatch):
 *   baseOffset int64 | batchLength int32 | partitionLeaderEpoch int32 | magic int8 | crc uint32 |
 *   attributes int16 | lastOffsetDelta int32 | baseTimestamp int64 | maxTimestamp int64 |
 *   producerId int64 | producerEpoch int16 | baseSequence int32 | recordCount int32 | records…
 * and each record:
 *   length varint | attributes int8 | timestampDelta varlong | offsetDelta varint |
 *   keyLength varint | key | valueLength varint | value | headerCount varint | (keyLength key valueLength value)…
 * All varints are zig-zag encoded. Everything from keyLength on is the record's body: it does not depend on
 * the batch, so the durable log stores it ready-made (src/producer/envelope.ts) and a batch copies it.
 */
import { crc32c } from '@node-rs/crc32'
import type { OutboundRecord } from './transport.ts'

/** Bytes before the first record. */
export const BATCH_HEADER_BYTES = 61
/** Offset of the first byte the CRC covers (attributes). */
const CRC_START = 21

export interface ProducerIdentity {
  readonly producerId: bigint
  readonly producerEpoch: number
}

/** Topic and header names repeat on every record: encode each once (bounded, in case names are unbounded). */
const headerNames = new Map<string, Buffer>()
export function headerNameBytes(name: string): Buffer {
  let bytes = headerNames.get(name)
  if (bytes === undefined) {
    bytes = Buffer.from(name)
    if (headerNames.size >= 1024) headerNames.clear()
    headerNames.set(name, bytes)
  }
  return bytes
}

/** Zig-zag of a safe integer, as a non-negative number (exact up to 2^53). */
function zigzag(n: number): number {
  return n >= 0 ? n * 2 : -n * 2 - 1
}

/** Bytes a zig-zag varint of `n` takes. */
export function varintSize(n: number): number {
  if (n >= -64 && n < 64) return 1
  if (n >= -8192 && n < 8192) return 2
  let z = zigzag(n)
  let size = 1
  while (z >= 0x80) {
    z = Math.floor(z / 128)
    size++
  }
  return size
}

export function writeVarint(buffer: Buffer, offset: number, n: number): number {
  if (n >= 0 && n < 64) {
    buffer[offset] = n * 2
    return offset + 1
  }
  let z = zigzag(n)
  while (z >= 0x80) {
    buffer[offset++] = (z % 128) | 0x80
    z = Math.floor(z / 128)
  }
  buffer[offset++] = z
  return offset
}

/** Where nextVarint reads: one object reused, so walking a record's varints allocates nothing. */
const scan = { at: 0 }

/** Reads the zig-zag varint at `scan.at` and moves past it; throws when it runs past `end` or past 2^53. */
function nextVarint(buffer: Buffer, end: number): number {
  const offset = scan.at
  let z = 0
  let scale = 1
  let at = offset
  for (;;) {
    if (at >= end) throw new RangeError(`varint at byte ${offset} runs past the end`)
    const byte = buffer[at++] as number
    z += (byte & 0x7f) * scale
    if (byte < 0x80) break
    scale *= 128
    if (scale > 2 ** 49) throw new RangeError(`varint at byte ${offset} is too long`)
  }
  scan.at = at
  return z % 2 === 0 ? z / 2 : -(z + 1) / 2
}

/** Reads the zig-zag varint at `offset`; throws when it runs past `end` or past 2^53. */
export function readVarint(buffer: Buffer, offset: number, end: number): { value: number; next: number } {
  scan.at = offset
  const value = nextVarint(buffer, end)
  return { value, next: scan.at }
}

/**
 * The bytes of a Kafka record from its key on, which is everything about a record that does not depend
 * on the batch it goes into:
 *
 *   keyLength varint | key | valueLength varint | value | headerCount varint | (nameLength name valueLength value)…
 *
 * The durable log stores events in this form, so delivering one copies it into a batch as it is.
 */
export function recordBodySize(
  key: Buffer | undefined,
  value: Buffer,
  headers: readonly (readonly [string, Buffer])[],
): number {
  let size = keyValueSize(key, value) + varintSize(headers.length)
  for (const [name, headerValue] of headers) size += headerSize(name, headerValue.length)
  return size
}

/** Writes a record body (see recordBodySize) at `at`; returns the offset after it. */
export function writeRecordBody(
  buffer: Buffer,
  at: number,
  key: Buffer | undefined,
  value: Buffer,
  headers: readonly (readonly [string, Buffer])[],
): number {
  let o = writeVarint(buffer, writeKeyValue(buffer, at, key, value), headers.length)
  for (const [name, headerValue] of headers) o = writeHeader(buffer, o, name, headerValue)
  return o
}

/** A varint length, then the bytes: how Kafka writes keys, values, header names and header values. */
function writeSized(buffer: Buffer, at: number, bytes: Uint8Array): number {
  const o = writeVarint(buffer, at, bytes.length)
  buffer.set(bytes, o)
  return o + bytes.length
}

/** Bytes of a record's key (or its absence) and value. */
export function keyValueSize(key: Buffer | undefined, value: Buffer): number {
  return (
    (key === undefined ? 1 : varintSize(key.length) + key.length) + varintSize(value.length) + value.length
  )
}

/** Writes a record's key (or its absence) and value at `at`; returns the offset after them. */
export function writeKeyValue(buffer: Buffer, at: number, key: Buffer | undefined, value: Buffer): number {
  if (key !== undefined) return writeSized(buffer, writeSized(buffer, at, key), value)
  buffer[at] = 1 // zig-zag -1: no key
  return writeSized(buffer, at + 1, value)
}

/** Bytes of one header with a value of `valueLength` bytes. */
export function headerSize(name: string, valueLength: number): number {
  const nameLength = headerNameBytes(name).length
  return varintSize(nameLength) + nameLength + varintSize(valueLength) + valueLength
}

/** Writes one header at `at`; returns the offset after it. */
export function writeHeader(buffer: Buffer, at: number, name: string, value: Uint8Array): number {
  return writeSized(buffer, writeSized(buffer, at, headerNameBytes(name)), value)
}

export function encodeRecordBody(
  key: Buffer | undefined,
  value: Buffer,
  headers: readonly (readonly [string, Buffer])[],
): Buffer {
  const out = Buffer.allocUnsafe(recordBodySize(key, value, headers))
  writeRecordBody(out, 0, key, value, headers)
  return out
}

export interface RecordBodyView {
  /** A view of the key, or undefined for a record without one. */
  readonly key: Buffer | undefined
  /** A view of the value. */
  readonly value: Buffer
  /** Header names and views of their values. */
  readonly headers: [string, Buffer][]
}

/**
 * Checks every length of a record body against the bytes there are, without making views of its parts;
 * throws on anything malformed. Returns where the key's bytes start, or -1 for a record without a key.
 */
export function checkRecordBody(body: Buffer): number {
  const end = body.length
  scan.at = 0
  const keyLength = nextVarint(body, end)
  const keyAt = keyLength >= 0 ? scan.at : -1
  if (keyLength >= 0) {
    if (scan.at + keyLength > end) throw new RangeError('record key runs past the end')
    scan.at += keyLength
  } else if (keyLength !== -1) throw new RangeError(`record key length ${keyLength}`)
  const valueLength = nextVarint(body, end)
  if (valueLength < 0 || scan.at + valueLength > end) throw new RangeError('record value runs past the end')
  scan.at += valueLength
  const count = nextVarint(body, end)
  if (count < 0) throw new RangeError(`record header count ${count}`)
  for (let h = 0; h < count; h++) {
    const nameLength = nextVarint(body, end)
    if (nameLength < 0 || scan.at + nameLength > end) throw new RangeError('header name runs past the end')
    scan.at += nameLength
    const valueLen = nextVarint(body, end)
    if (valueLen < 0 || scan.at + valueLen > end) throw new RangeError('header value runs past the end')
    scan.at += valueLen
  }
  if (scan.at !== end) throw new RangeError(`record body has ${end - scan.at} bytes after its last header`)
  return keyAt
}

/** Reads a record body into views of its key, value and headers; throws on anything malformed. */
export function readRecordBody(body: Buffer): RecordBodyView {
  checkRecordBody(body)
  // every length is checked: read straight through
  const end = body.length
  const keyLength = readVarint(body, 0, end)
  let o = keyLength.next
  let key: Buffer | undefined
  if (keyLength.value >= 0) {
    key = body.subarray(o, o + keyLength.value)
    o += keyLength.value
  }
  const valueLength = readVarint(body, o, end)
  o = valueLength.next
  const value = body.subarray(o, o + valueLength.value)
  o += valueLength.value
  const count = readVarint(body, o, end)
  o = count.next
  const headers: [string, Buffer][] = []
  for (let h = 0; h < count.value; h++) {
    const nameLength = readVarint(body, o, end)
    const name = body.toString('utf8', nameLength.next, nameLength.next + nameLength.value)
    const valueLen = readVarint(body, nameLength.next + nameLength.value, end)
    o = valueLen.next + valueLen.value
    headers.push([name, body.subarray(valueLen.next, o)])
  }
  return { key, value, headers }
}

/**
 * Encodes `records[indexes[0]], records[indexes[1]], …` (all for one partition) as one batch whose
 * first record carries `baseSequence`.
 */
export function encodeRecordBatch(
  records: readonly OutboundRecord[],
  indexes: readonly number[],
  identity: ProducerIdentity,
  baseSequence: number,
): Buffer {
  const count = indexes.length
  if (count === 0) throw new RangeError('a record batch needs at least one record')
  const first = records[indexes[0] as number] as OutboundRecord
  const baseTimestamp = first.timestamp
  let maxTimestamp = baseTimestamp
  const lengths = new Array<number>(count)
  let size = BATCH_HEADER_BYTES
  for (let i = 0; i < count; i++) {
    const r = records[indexes[i] as number] as OutboundRecord
    if (r.timestamp > maxTimestamp) maxTimestamp = r.timestamp
    const length = 1 + varintSize(r.timestamp - baseTimestamp) + varintSize(i) + r.body.length
    lengths[i] = length
    size += varintSize(length) + length
  }

  const buffer = Buffer.allocUnsafe(size)
  buffer.writeBigInt64BE(0n, 0) // baseOffset: the broker assigns it
  buffer.writeInt32BE(size - 12, 8)
  buffer.writeInt32BE(-1, 12) // partitionLeaderEpoch: not known to producers
  buffer.writeInt8(2, 16)
  // crc at 17, written last
  buffer.writeInt16BE(0, 21) // attributes: no compression, create time, not transactional
  buffer.writeInt32BE(count - 1, 23)
  buffer.writeBigInt64BE(BigInt(baseTimestamp), 27)
  buffer.writeBigInt64BE(BigInt(maxTimestamp), 35)
  buffer.writeBigInt64BE(identity.producerId, 43)
  buffer.writeInt16BE(identity.producerEpoch, 51)
  buffer.writeInt32BE(baseSequence, 53)
  buffer.writeInt32BE(count, 57)

  let at = BATCH_HEADER_BYTES
  for (let i = 0; i < count; i++) {
    const r = records[indexes[i] as number] as OutboundRecord
    at = writeVarint(buffer, at, lengths[i] as number)
    buffer[at++] = 0
    at = writeVarint(buffer, at, r.timestamp - baseTimestamp)
    at = writeVarint(buffer, at, i)
    buffer.set(r.body, at)
    at += r.body.length
  }
  if (at !== size) throw new Error(`record batch size mismatch: wrote ${at} of ${size} bytes`)
  buffer.writeUInt32BE(crc32c(buffer.subarray(CRC_START)), 17)
  return buffer
}
