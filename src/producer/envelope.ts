/**
 * The envelope: one event as spillway stores it in the local log and hands it to Kafka.
 * `id` is assigned once at admission and never changes; it travels as the `spillway-id` header.
 *
 * Version 2 (written since 0.2) keeps the event in Kafka's own record encoding, so delivering it copies
 * bytes instead of decoding and encoding it again:
 *
 *   envelope = version u8 (2)
 *              topic-length u16be topic utf-8
 *              timestamp u64be    wall-clock ms given by the caller or taken at admission
 *              partition i32be    explicit partition; -1 = choose from the key
 *              body               Kafka's record from the key on (record-batch.ts): key, value, headers;
 *                                 its first header is always spillway-id, the event's id
 *
 * Version 1 (0.1) is still read, so a log written by 0.1 is delivered after an upgrade:
 *
 *   envelope = version u8 (1)
 *              id-length u8       id        utf-8
 *              topic-length u16be topic     utf-8
 *              key-length i32be   key       bytes; -1 = no key
 *              value-length u32be value     bytes
 *              timestamp u64be
 *              partition i32be
 *              header-count u16be header*
 *   header   = name-length u16be name utf-8, value-length u32be value bytes
 */
import { readMillis, writeMillis } from '../log/format.ts'
import {
  checkRecordBody,
  encodeRecordBody,
  headerSize,
  keyValueSize,
  headerNameBytes as nameBytes,
  readRecordBody,
  readVarint,
  varintSize,
  writeHeader,
  writeKeyValue,
  writeVarint,
} from '../transport/record-batch.ts'

export const ID_HEADER = 'spillway-id'
type Header = readonly [string, Buffer]
const ID_HEADER_BYTES = nameBytes(ID_HEADER)

export interface Envelope {
  readonly id: string
  readonly topic: string
  readonly key: Buffer | undefined
  readonly value: Buffer
  /** The caller's headers; a header of its own named spillway-id is not kept (the id takes its place). */
  readonly headers: readonly (readonly [string, Buffer])[]
  readonly timestamp: number
  /** An explicit partition, or undefined to choose one from the key. */
  readonly partition?: number | undefined
}

/** What delivery needs of a stored envelope: where it goes, and its Kafka record body as a view. */
export interface StoredEvent {
  readonly topic: string
  readonly partition: number | undefined
  readonly timestamp: number
  /** Kafka's record from the key on, with the spillway-id header first. */
  readonly body: Buffer
  /** Where the key is in `body`, [keyStart, keyEnd), for choosing the partition; -1 for no key. */
  readonly keyStart: number
  readonly keyEnd: number
}

const VERSION_1 = 1
const VERSION = 2
/** version, topic length, timestamp, partition (without the topic itself). */
const FIXED_BYTES = 1 + 2 + 8 + 4

/**
 * Topic names repeat on nearly every envelope: their encoded bytes come from the one bounded cache the
 * Kafka record batches use, and decoding reuses the last topic's text when the bytes match.
 */
let lastTopic = ''
let lastTopicBytes: Buffer = Buffer.alloc(0)
/** The topic stored at bytes[start, end): the previous one when the bytes are the same (a short loop). */
function topicAt(bytes: Buffer, start: number, end: number): string {
  const length = end - start
  const last = lastTopicBytes
  if (last.length === length) {
    let i = 0
    while (i < length && bytes[start + i] === last[i]) i++
    if (i === length) return lastTopic
  }
  lastTopic = bytes.toString('utf8', start, end)
  lastTopicBytes = Buffer.from(bytes.subarray(start, end))
  return lastTopic
}

/** The caller's headers that are kept: all but one named spillway-id. */
function keptHeaders(e: Envelope): number {
  let count = 0
  // indexed loops: destructuring each header in a for…of allocates an iterator per event
  const headers = e.headers
  for (let i = 0; i < headers.length; i++) if ((headers[i] as Header)[0] !== ID_HEADER) count++
  return count
}

export function envelopeSize(e: Envelope): number {
  let size = FIXED_BYTES + nameBytes(e.topic).length + keyValueSize(e.key, e.value)
  size += varintSize(keptHeaders(e) + 1) + headerSize(ID_HEADER, Buffer.byteLength(e.id))
  const headers = e.headers
  for (let i = 0; i < headers.length; i++) {
    const [name, value] = headers[i] as Header
    if (name !== ID_HEADER) size += headerSize(name, value.length)
  }
  return size
}

export function encodeEnvelope(e: Envelope): Buffer {
  const out = Buffer.allocUnsafe(envelopeSize(e))
  writeEnvelope(e, out, 0, out.length)
  return out
}

/** Writes an envelope of `size` bytes (its envelopeSize) into `out` at `start`. */
export function writeEnvelope(e: Envelope, out: Buffer, start: number, size: number): void {
  out[start] = VERSION
  const topic = nameBytes(e.topic)
  out.writeUInt16BE(topic.length, start + 1)
  out.set(topic, start + 3)
  let o = start + 3 + topic.length
  writeMillis(out, e.timestamp, o)
  out.writeInt32BE(e.partition ?? -1, o + 8)
  o = writeKeyValue(out, o + 12, e.key, e.value)
  o = writeVarint(out, o, keptHeaders(e) + 1)
  // the id header first, its value written as text straight into place
  out[o++] = ID_HEADER_BYTES.length * 2
  out.set(ID_HEADER_BYTES, o)
  o = writeVarint(out, o + ID_HEADER_BYTES.length, Buffer.byteLength(e.id))
  o += out.write(e.id, o, 'utf8')
  const headers = e.headers
  for (let i = 0; i < headers.length; i++) {
    const [name, value] = headers[i] as Header
    if (name !== ID_HEADER) o = writeHeader(out, o, name, value)
  }
  if (o !== start + size) throw new Error(`envelope size mismatch: wrote ${o - start} of ${size} bytes`)
}

/** Where a version-2 envelope's topic ends (its timestamp starts); throws when its fixed fields run past the end. */
function headEnd(bytes: Buffer): number {
  if (bytes.length < FIXED_BYTES) throw new Error(`envelope truncated: ${bytes.length} bytes`)
  const topicEnd = 3 + bytes.readUInt16BE(1)
  if (topicEnd + 12 > bytes.length) throw new Error('envelope truncated in its topic')
  return topicEnd
}

/** The fixed fields of a version-2 envelope; throws when they run past the end. */
function readHead(bytes: Buffer): { topic: string; timestamp: number; partition: number; bodyAt: number } {
  const topicEnd = headEnd(bytes)
  return {
    topic: topicAt(bytes, 3, topicEnd),
    timestamp: readMillis(bytes, topicEnd),
    partition: bytes.readInt32BE(topicEnd + 8),
    bodyAt: topicEnd + 12,
  }
}

/**
 * What delivery needs of a stored envelope, without decoding its value and headers: for version 2 the
 * body is a view of the stored bytes, and the key is found inside it (a view per part costs more than
 * reading the part). Throws on anything malformed.
 */
export function readStoredEvent(bytes: Buffer): StoredEvent {
  if (bytes[0] === VERSION_1) {
    const e = decodeEnvelope(bytes)
    return stored(
      e.topic,
      e.partition,
      e.timestamp,
      encodeRecordBody(e.key, e.value, [[ID_HEADER, Buffer.from(e.id)], ...e.headers]),
    )
  }
  if (bytes[0] !== VERSION) throw new Error(`unknown envelope version ${bytes[0]}`)
  const topicEnd = headEnd(bytes)
  const partition = bytes.readInt32BE(topicEnd + 8)
  return stored(
    topicAt(bytes, 3, topicEnd),
    partition < 0 ? undefined : partition,
    readMillis(bytes, topicEnd),
    bytes.subarray(topicEnd + 12),
  )
}

function stored(topic: string, partition: number | undefined, timestamp: number, body: Buffer): StoredEvent {
  const keyStart = checkRecordBody(body)
  const keyEnd = keyStart < 0 ? -1 : keyStart + readVarint(body, 0, body.length).value
  return { topic, partition, timestamp, body, keyStart, keyEnd }
}

/** Decodes an envelope of either version; throws on anything malformed. */
export function decodeEnvelope(bytes: Buffer): Envelope {
  if (bytes[0] === VERSION_1) return decodeVersion1(bytes)
  if (bytes[0] !== VERSION) throw new Error(`unknown envelope version ${bytes[0]}`)
  const head = readHead(bytes)
  const { key, value, headers } = readRecordBody(bytes.subarray(head.bodyAt))
  const first = headers[0]
  if (first?.[0] !== ID_HEADER) throw new Error(`envelope's first header is not ${ID_HEADER}`)
  return {
    id: first[1].toString('utf8'),
    topic: head.topic,
    key,
    value,
    headers: headers.slice(1),
    timestamp: head.timestamp,
    partition: head.partition < 0 ? undefined : head.partition,
  }
}

function decodeVersion1(bytes: Buffer): Envelope {
  let o = 1
  const need = (n: number): void => {
    if (o + n > bytes.length) throw new Error(`envelope truncated at byte ${o}`)
  }
  need(1)
  const idLength = bytes[o++] as number
  need(idLength + 2)
  const id = bytes.toString('utf8', o, o + idLength)
  o += idLength
  const topicLength = bytes.readUInt16BE(o)
  o += 2
  need(topicLength + 4)
  const topic = topicAt(bytes, o, o + topicLength)
  o += topicLength
  const keyLength = bytes.readInt32BE(o)
  o += 4
  let key: Buffer | undefined
  if (keyLength >= 0) {
    need(keyLength)
    key = bytes.subarray(o, o + keyLength)
    o += keyLength
  }
  need(4)
  const valueLength = bytes.readUInt32BE(o)
  o += 4
  need(valueLength + 14)
  const value = bytes.subarray(o, o + valueLength)
  o += valueLength
  const timestamp = readMillis(bytes, o)
  o += 8
  const partition = bytes.readInt32BE(o)
  o += 4
  const count = bytes.readUInt16BE(o)
  o += 2
  const headers: [string, Buffer][] = []
  for (let i = 0; i < count; i++) {
    need(2)
    const nameLength = bytes.readUInt16BE(o)
    o += 2
    need(nameLength + 4)
    const name = bytes.toString('utf8', o, o + nameLength)
    o += nameLength
    const valueLen = bytes.readUInt32BE(o)
    o += 4
    need(valueLen)
    if (name !== ID_HEADER) headers.push([name, bytes.subarray(o, o + valueLen)])
    o += valueLen
  }
  return { id, topic, key, value, headers, timestamp, partition: partition < 0 ? undefined : partition }
}
