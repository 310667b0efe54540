/**
 * On-disk format of the durable log. docs/log-format.md says the same in prose.
 *
 *   segment file  = "seg-" base-seq(20 decimal digits) ".log"
 *   segment       = segment-header record*
 *   segment-header= "SPWSEG01"            8 bytes, ASCII
 *                   base-seq   u64be      sequence number of the first record in this file
 *                   header-crc u32be      CRC32C of the 16 bytes above
 *   record        = magic      u8         0xA7
 *                   crc        u32be      CRC32C of every byte of `body`
 *                   body
 *   body          = version    u8         1
 *                   length     u32be      payload length in bytes
 *                   seq        u64be      position of the record in the log, +1 per record, never reused
 *                   timestamp  u64be      wall-clock ms at append (for "oldest pending age" only)
 *                   payload    length bytes, opaque
 *
 * All integers are big-endian. The CRC covers the length, so a damaged length is caught rather than
 * followed. After damage, a reader resynchronises by looking for the next offset that starts a
 * well-formed record whose CRC matches and whose seq is plausible (see `plausibleSeq`).
 */
import { crc32c } from '@node-rs/crc32'

export const SEGMENT_MAGIC = Buffer.from('SPWSEG01', 'ascii')
export const SEGMENT_HEADER_BYTES = 20
export const RECORD_MAGIC = 0xa7
export const RECORD_VERSION = 1
export const RECORD_HEADER_BYTES = 26

export function segmentFileName(baseSeq: bigint): string {
  return `seg-${baseSeq.toString().padStart(20, '0')}.log`
}

export function parseSegmentFileName(name: string): bigint | undefined {
  const match = /^seg-(\d{20})\.log$/.exec(name)
  return match?.[1] === undefined ? undefined : BigInt(match[1])
}

export function encodeSegmentHeader(baseSeq: bigint): Buffer {
  const header = Buffer.alloc(SEGMENT_HEADER_BYTES)
  SEGMENT_MAGIC.copy(header, 0)
  header.writeBigUInt64BE(baseSeq, 8)
  header.writeUInt32BE(crc32c(header.subarray(0, 16)), 16)
  return header
}

/** Returns the base seq, or undefined when the header is torn or damaged. */
export function decodeSegmentHeader(header: Buffer): bigint | undefined {
  if (header.length < SEGMENT_HEADER_BYTES) return undefined
  if (!header.subarray(0, 8).equals(SEGMENT_MAGIC)) return undefined
  if (crc32c(header.subarray(0, 16)) !== header.readUInt32BE(16)) return undefined
  return header.readBigUInt64BE(8)
}

/**
 * Millisecond timestamps as u64be without a BigInt per call: two u32 halves. Exact for every integer
 * a JavaScript number holds (below 2^53); the bytes are the same as writeBigUInt64BE's.
 */
export function writeMillis(target: Buffer, value: number, offset: number): void {
  target.writeUInt32BE(Math.floor(value / 0x1_0000_0000), offset)
  target.writeUInt32BE(value >>> 0, offset + 4)
}

export function readMillis(source: Buffer, offset: number): number {
  return source.readUInt32BE(offset) * 0x1_0000_0000 + source.readUInt32BE(offset + 4)
}

/**
 * Frames a record in place: writes its header at `offset` for a payload of `length` bytes, which the
 * caller writes at `offset + RECORD_HEADER_BYTES` before calling sealRecord().
 */
export function writeRecordHeader(
  target: Buffer,
  offset: number,
  seq: bigint,
  timestamp: number,
  length: number,
): void {
  target[offset] = RECORD_MAGIC
  const body = offset + 5
  target[body] = RECORD_VERSION
  target.writeUInt32BE(length, body + 1)
  target.writeBigUInt64BE(seq, body + 5)
  writeMillis(target, timestamp, body + 13)
}

/** Writes the CRC of the record framed at `offset` with a payload of `length` bytes; returns its end. */
export function sealRecord(target: Buffer, offset: number, length: number): number {
  const end = offset + RECORD_HEADER_BYTES + length
  target.writeUInt32BE(crc32c(target.subarray(offset + 5, end)), offset + 1)
  return end
}

/** Writes one framed record into `target` at `offset`; returns the offset after it. */
export function encodeRecordInto(
  target: Buffer,
  offset: number,
  seq: bigint,
  timestamp: number,
  payload: Buffer,
): number {
  writeRecordHeader(target, offset, seq, timestamp, payload.length)
  payload.copy(target, offset + RECORD_HEADER_BYTES)
  return sealRecord(target, offset, payload.length)
}

export function encodeRecord(seq: bigint, timestamp: number, payload: Buffer): Buffer {
  const out = Buffer.allocUnsafe(RECORD_HEADER_BYTES + payload.length)
  encodeRecordInto(out, 0, seq, timestamp, payload)
  return out
}

export interface DecodedRecord {
  readonly seq: bigint
  readonly timestamp: number
  /** A view into the scanned buffer; copy it if it must outlive the next read. */
  readonly payload: Buffer
  /** Total framed size. */
  readonly size: number
}

export type DecodeResult =
  | { readonly kind: 'record'; readonly record: DecodedRecord }
  /** Not enough bytes in the buffer to decide; `need` is the total the record would take. */
  | { readonly kind: 'short'; readonly need: number }
  | { readonly kind: 'invalid'; readonly reason: string }

/** Decodes the record that starts at `offset`, without trusting anything the CRC has not confirmed. */
export function decodeRecordAt(buffer: Buffer, offset: number, maxPayload: number): DecodeResult {
  const available = buffer.length - offset
  if (available < RECORD_HEADER_BYTES) {
    if (available >= 1 && buffer[offset] !== RECORD_MAGIC) return { kind: 'invalid', reason: 'bad magic' }
    return { kind: 'short', need: RECORD_HEADER_BYTES }
  }
  if (buffer[offset] !== RECORD_MAGIC) return { kind: 'invalid', reason: 'bad magic' }
  if (buffer[offset + 5] !== RECORD_VERSION)
    return { kind: 'invalid', reason: `unknown version ${buffer[offset + 5]}` }
  const length = buffer.readUInt32BE(offset + 6)
  if (length > maxPayload)
    return { kind: 'invalid', reason: `length ${length} exceeds the maximum ${maxPayload}` }
  const size = RECORD_HEADER_BYTES + length
  if (available < size) return { kind: 'short', need: size }
  const expected = buffer.readUInt32BE(offset + 1)
  if (crc32c(buffer.subarray(offset + 5, offset + size)) !== expected)
    return { kind: 'invalid', reason: 'crc mismatch' }
  return {
    kind: 'record',
    record: {
      seq: buffer.readBigUInt64BE(offset + 10),
      timestamp: readMillis(buffer, offset + 18),
      payload: buffer.subarray(offset + RECORD_HEADER_BYTES, offset + size),
      size,
    },
  }
}

/**
 * After damage, a candidate record must have a seq past the last good one, and no further past it than
 * the skipped bytes could have held (each record takes at least RECORD_HEADER_BYTES). This keeps a
 * well-formed record *embedded in a payload* from being taken for a real one.
 */
export function plausibleSeq(candidate: bigint, lastGood: bigint | undefined, skippedBytes: number): boolean {
  if (lastGood === undefined) return true
  if (candidate <= lastGood) return false
  return candidate - lastGood <= BigInt(Math.floor(skippedBytes / RECORD_HEADER_BYTES) + 1)
}
