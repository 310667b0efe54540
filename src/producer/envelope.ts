/**
 * The envelope: one event as spillway stores it in the local log and hands it to Kafka.
 * `id` is assigned once at admission and never changes; it travels as the `spillway-id` header.
 *
 *   envelope = version u8 (1)
 *              id-length u8       id        utf-8
 *              topic-length u16be topic     utf-8
 *              key-length i32be   key       bytes; -1 = no key
 *              value-length u32be value     bytes
 *              timestamp u64be    wall-clock ms given by the caller or taken at admission
 *              partition i32be    explicit partition; -1 = choose from the key
 *              header-count u16be header*
 *   header   = name-length u16be name utf-8, value-length u32be value bytes
 */
import { readMillis, writeMillis } from '../log/format.ts'
import { headerNameBytes as nameBytes } from '../transport/record-batch.ts'

export const ID_HEADER = 'spillway-id'

export interface Envelope {
  readonly id: string
  readonly topic: string
  readonly key: Buffer | undefined
  readonly value: Buffer
  readonly headers: readonly (readonly [string, Buffer])[]
  readonly timestamp: number
  /** An explicit partition, or undefined to choose one from the key. */
  readonly partition?: number | undefined
}

const VERSION = 1

/**
 * Topic and header names repeat on nearly every envelope: their encoded bytes come from the one bounded
 * cache the Kafka record batches use, and decoding reuses the last topic's text when the bytes match.
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

export function envelopeSize(e: Envelope): number {
  let size =
    1 +
    1 +
    Buffer.byteLength(e.id) +
    2 +
    nameBytes(e.topic).length +
    4 +
    (e.key?.length ?? 0) +
    4 +
    e.value.length +
    8 +
    4 +
    2
  for (const [name, value] of e.headers) size += 2 + nameBytes(name).length + 4 + value.length
  return size
}

export function encodeEnvelope(e: Envelope): Buffer {
  const out = Buffer.allocUnsafe(envelopeSize(e))
  let o = 0
  out[o++] = VERSION
  const idLength = out.write(e.id, o + 1, 'utf8')
  out[o] = idLength
  o += 1 + idLength
  const topic = nameBytes(e.topic)
  out.writeUInt16BE(topic.length, o)
  out.set(topic, o + 2)
  o += 2 + topic.length
  if (e.key === undefined) {
    out.writeInt32BE(-1, o)
    o += 4
  } else {
    out.writeInt32BE(e.key.length, o)
    e.key.copy(out, o + 4)
    o += 4 + e.key.length
  }
  out.writeUInt32BE(e.value.length, o)
  e.value.copy(out, o + 4)
  o += 4 + e.value.length
  writeMillis(out, e.timestamp, o)
  o += 8
  out.writeInt32BE(e.partition ?? -1, o)
  o += 4
  out.writeUInt16BE(e.headers.length, o)
  o += 2
  for (const [name, value] of e.headers) {
    const nameBuffer = nameBytes(name)
    out.writeUInt16BE(nameBuffer.length, o)
    out.set(nameBuffer, o + 2)
    o += 2 + nameBuffer.length
    out.writeUInt32BE(value.length, o)
    value.copy(out, o + 4)
    o += 4 + value.length
  }
  return out
}

/** The bytes of an envelope's id, as a view (the id sits at a fixed place: after version and length). */
export function envelopeIdBytes(bytes: Buffer): Buffer {
  return bytes.subarray(2, 2 + (bytes[1] ?? 0))
}

/** Decodes an envelope; throws on anything malformed (the log's CRC already vouched for the bytes). */
export function decodeEnvelope(bytes: Buffer): Envelope {
  let o = 0
  const need = (n: number): void => {
    if (o + n > bytes.length) throw new Error(`envelope truncated at byte ${o}`)
  }
  need(2)
  if (bytes[o++] !== VERSION) throw new Error(`unknown envelope version ${bytes[0]}`)
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
    headers.push([name, bytes.subarray(o, o + valueLen)])
    o += valueLen
  }
  return { id, topic, key, value, headers, timestamp, partition: partition < 0 ? undefined : partition }
}
