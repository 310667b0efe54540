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
 * All varints are zig-zag encoded.
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

function writeVarint(buffer: Buffer, offset: number, n: number): number {
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

function recordBodySize(r: OutboundRecord, timestampDelta: number, offsetDelta: number): number {
  let size = 1 + varintSize(timestampDelta) + varintSize(offsetDelta)
  size += r.key === undefined ? 1 : varintSize(r.key.length) + r.key.length
  size += varintSize(r.value.length) + r.value.length
  size += varintSize(r.headers.length)
  for (const [name, value] of r.headers) {
    const nameLength = headerNameBytes(name).length
    size += varintSize(nameLength) + nameLength + varintSize(value.length) + value.length
  }
  return size
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
  const bodies = new Array<number>(count)
  let size = BATCH_HEADER_BYTES
  for (let i = 0; i < count; i++) {
    const r = records[indexes[i] as number] as OutboundRecord
    if (r.timestamp > maxTimestamp) maxTimestamp = r.timestamp
    const body = recordBodySize(r, r.timestamp - baseTimestamp, i)
    bodies[i] = body
    size += varintSize(body) + body
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
    at = writeVarint(buffer, at, bodies[i] as number)
    buffer[at++] = 0
    at = writeVarint(buffer, at, r.timestamp - baseTimestamp)
    at = writeVarint(buffer, at, i)
    if (r.key === undefined) {
      at = writeVarint(buffer, at, -1)
    } else {
      at = writeVarint(buffer, at, r.key.length)
      buffer.set(r.key, at)
      at += r.key.length
    }
    at = writeVarint(buffer, at, r.value.length)
    buffer.set(r.value, at)
    at += r.value.length
    at = writeVarint(buffer, at, r.headers.length)
    for (const [name, value] of r.headers) {
      const nameBytes = headerNameBytes(name)
      at = writeVarint(buffer, at, nameBytes.length)
      buffer.set(nameBytes, at)
      at += nameBytes.length
      at = writeVarint(buffer, at, value.length)
      buffer.set(value, at)
      at += value.length
    }
  }
  if (at !== size) throw new Error(`record batch size mismatch: wrote ${at} of ${size} bytes`)
  buffer.writeUInt32BE(crc32c(buffer.subarray(CRC_START)), 17)
  return buffer
}
