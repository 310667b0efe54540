/**
 * On-disk format of the durable log. docs/log-format.md says the same in prose.
 *
 *   segment file  = "seg-" base-seq(20 decimal digits) ".log"
 *   segment       = segment-header frame*
 *   segment-header= "SPWSEG01"            8 bytes, ASCII
 *                   base-seq   u64be      sequence number of the first record in this file
 *                   header-crc u32be      CRC32C of the 16 bytes above
 *   frame         = magic      u8         0xA7
 *                   crc        u32be      CRC32C of every byte of `body`
 *                   body
 *   body          = version    u8         2
 *                   length     u32be      bytes of `entries`
 *                   seq        u64be      seq of the first record; the others follow, +1 each
 *                   timestamp  u64be      wall-clock ms at append (for "oldest pending age" only)
 *                   count      u32be      records in the frame (at least 1)
 *                   entries    (size u32be, payload size bytes)*, `count` of them; payloads are opaque
 *
 * One frame holds one append, so an append is on disk whole or not at all, and its records share one
 * CRC. Seqs go +1 per record and are never reused. Version 1 (spillway 0.1) held one record per frame,
 * `body = version(1) length(u32be) seq(u64be) timestamp(u64be) payload`; it is still read.
 *
 * All integers are big-endian. The CRC covers the length, so a damaged length is caught rather than
 * followed. After damage, a reader resynchronises by looking for the next offset that starts a
 * well-formed frame whose CRC matches and whose seq is plausible (see `plausibleSeq`).
 */
import { crc32c } from '@node-rs/crc32'

export const SEGMENT_MAGIC = Buffer.from('SPWSEG01', 'ascii')
export const SEGMENT_HEADER_BYTES = 20
export const RECORD_MAGIC = 0xa7
/** Version 1: one record per frame (written by spillway 0.1, still read). */
export const RECORD_VERSION = 1
export const RECORD_HEADER_BYTES = 26
export const FRAME_VERSION = 2
export const FRAME_HEADER_BYTES = 30
/** The size prefix of each record in a frame. */
export const ENTRY_HEADER_BYTES = 4

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

/** Bytes of a frame holding payloads of these sizes. */
export function frameSize(sizes: readonly number[]): number {
  let size = FRAME_HEADER_BYTES
  for (const length of sizes) size += ENTRY_HEADER_BYTES + length
  return size
}

/**
 * Writes a frame's header at `offset` for `count` records taking `size` bytes in all (frameSize). The
 * caller writes the entries after it, each a u32be size and the payload, then calls sealFrame().
 */
export function writeFrameHeader(
  target: Buffer,
  offset: number,
  firstSeq: bigint,
  timestamp: number,
  count: number,
  size: number,
): void {
  target[offset] = RECORD_MAGIC
  target[offset + 5] = FRAME_VERSION
  target.writeUInt32BE(size - FRAME_HEADER_BYTES, offset + 6)
  target.writeBigUInt64BE(firstSeq, offset + 10)
  writeMillis(target, timestamp, offset + 18)
  target.writeUInt32BE(count, offset + 26)
}

/** Writes the CRC of the frame of `size` bytes at `offset`; returns its end. */
export function sealFrame(target: Buffer, offset: number, size: number): number {
  const end = offset + size
  target.writeUInt32BE(crc32c(target.subarray(offset + 5, end)), offset + 1)
  return end
}

/** One frame holding `payloads`. */
export function encodeFrame(firstSeq: bigint, timestamp: number, payloads: readonly Buffer[]): Buffer {
  const size = frameSize(payloads.map((p) => p.length))
  const out = Buffer.allocUnsafe(size)
  writeFrameHeader(out, 0, firstSeq, timestamp, payloads.length, size)
  let o = FRAME_HEADER_BYTES
  for (const p of payloads) {
    out.writeUInt32BE(p.length, o)
    o += ENTRY_HEADER_BYTES + p.copy(out, o + ENTRY_HEADER_BYTES)
  }
  sealFrame(out, 0, size)
  return out
}

/** A version-1 record (spillway 0.1's format, for tests of reading it). */
export function encodeRecord(seq: bigint, timestamp: number, payload: Buffer): Buffer {
  const out = Buffer.allocUnsafe(RECORD_HEADER_BYTES + payload.length)
  out[0] = RECORD_MAGIC
  out[5] = RECORD_VERSION
  out.writeUInt32BE(payload.length, 6)
  out.writeBigUInt64BE(seq, 10)
  writeMillis(out, timestamp, 18)
  payload.copy(out, RECORD_HEADER_BYTES)
  sealFrame(out, 0, out.length)
  return out
}

export interface DecodedFrame {
  /** Seq of the first record. */
  readonly seq: bigint
  readonly timestamp: number
  /** Views into the scanned buffer; copy one if it must outlive the next read. */
  readonly payloads: readonly Buffer[]
  /** Total size of the frame. */
  readonly size: number
}

export type DecodeResult =
  | { readonly kind: 'frame'; readonly frame: DecodedFrame }
  /** Not enough bytes in the buffer to decide; `need` is the total the frame would take. */
  | { readonly kind: 'short'; readonly need: number }
  | { readonly kind: 'invalid'; readonly reason: string }

/**
 * Decodes the frame (or version-1 record) that starts at `offset`, without trusting anything the CRC has
 * not confirmed. A record larger than `maxPayload` is refused.
 */
export function decodeFrameAt(buffer: Buffer, offset: number, maxPayload: number): DecodeResult {
  const available = buffer.length - offset
  if (available < RECORD_HEADER_BYTES) {
    if (available >= 1 && buffer[offset] !== RECORD_MAGIC) return { kind: 'invalid', reason: 'bad magic' }
    return { kind: 'short', need: RECORD_HEADER_BYTES }
  }
  if (buffer[offset] !== RECORD_MAGIC) return { kind: 'invalid', reason: 'bad magic' }
  const version = buffer[offset + 5]
  if (version !== RECORD_VERSION && version !== FRAME_VERSION)
    return { kind: 'invalid', reason: `unknown version ${version}` }
  const length = buffer.readUInt32BE(offset + 6)
  const header = version === FRAME_VERSION ? FRAME_HEADER_BYTES : RECORD_HEADER_BYTES
  if (version === RECORD_VERSION && length > maxPayload)
    return { kind: 'invalid', reason: `length ${length} exceeds the maximum ${maxPayload}` }
  const size = header + length
  if (available < size) return { kind: 'short', need: size }
  const expected = buffer.readUInt32BE(offset + 1)
  if (crc32c(buffer.subarray(offset + 5, offset + size)) !== expected)
    return { kind: 'invalid', reason: 'crc mismatch' }
  const seq = buffer.readBigUInt64BE(offset + 10)
  const timestamp = readMillis(buffer, offset + 18)
  if (version === RECORD_VERSION) {
    const payloads = [buffer.subarray(offset + RECORD_HEADER_BYTES, offset + size)]
    return { kind: 'frame', frame: { seq, timestamp, payloads, size } }
  }
  // the CRC vouches for these bytes; the entries must still add up exactly
  const count = buffer.readUInt32BE(offset + 26)
  const end = offset + size
  const payloads: Buffer[] = []
  let o = offset + FRAME_HEADER_BYTES
  while (payloads.length < count && o + ENTRY_HEADER_BYTES <= end) {
    const entry = buffer.readUInt32BE(o)
    o += ENTRY_HEADER_BYTES
    if (entry > maxPayload)
      return { kind: 'invalid', reason: `a record of ${entry} bytes exceeds the maximum ${maxPayload}` }
    if (o + entry > end) break
    payloads.push(buffer.subarray(o, o + entry))
    o += entry
  }
  if (count === 0 || payloads.length !== count || o !== end)
    return { kind: 'invalid', reason: `frame entries do not add up to its ${count} records` }
  return { kind: 'frame', frame: { seq, timestamp, payloads, size } }
}

/**
 * After damage, a candidate frame must start past the last good seq, and no further past it than the
 * skipped bytes could have held (each record takes at least ENTRY_HEADER_BYTES in a frame). This keeps a
 * well-formed frame *embedded in a payload* from being taken for a real one.
 */
export function plausibleSeq(candidate: bigint, lastGood: bigint | undefined, skippedBytes: number): boolean {
  if (lastGood === undefined) return true
  if (candidate <= lastGood) return false
  return candidate - lastGood <= BigInt(Math.floor(skippedBytes / ENTRY_HEADER_BYTES) + 1)
}

/** The wall-clock ms a frame (or a version-1 record) was appended at, from its header at `offset`. */
export function frameTimestamp(header: Buffer, offset = 0): number {
  return readMillis(header, offset + 18)
}

/** How many records a version-2 frame at `offset` holds. */
export function frameRecordCount(frame: Buffer, offset = 0): number {
  return frame.readUInt32BE(offset + 26)
}

/** The payload size in the entry header at `offset` of a frame. */
export function entrySize(frame: Buffer, offset: number): number {
  return frame.readUInt32BE(offset)
}

/** Writes the size prefix of an entry at `offset` of a frame (the payload follows it). */
export function writeEntryHeader(frame: Buffer, offset: number, size: number): void {
  frame.writeUInt32BE(size, offset)
}
