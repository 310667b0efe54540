import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import {
  decodeEnvelope,
  type Envelope,
  encodeEnvelope,
  envelopeSize,
  readStoredEvent,
} from '../../src/producer/envelope.ts'
import { encodeRecordBody } from '../../src/transport/record-batch.ts'

const bytes = fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a))
const envelope: fc.Arbitrary<Envelope> = fc.record({
  id: fc.string({ minLength: 1, maxLength: 60 }),
  topic: fc.stringMatching(/^[a-zA-Z0-9._-]{1,40}$/),
  key: fc.option(bytes, { nil: undefined }),
  value: bytes,
  headers: fc.array(fc.tuple(fc.string({ maxLength: 20 }), bytes), { maxLength: 5 }),
  timestamp: fc.integer({ min: 0, max: 2 ** 50 }),
  partition: fc.option(fc.integer({ min: 0, max: 10_000 }), { nil: undefined }),
})

/** The documented version-1 layout (written by 0.1), built by hand. */
function encodeVersion1(e: Envelope): Buffer {
  const u16 = (n: number) => Buffer.from([n >> 8, n & 0xff])
  const i32 = (n: number) => {
    const b = Buffer.alloc(4)
    b.writeInt32BE(n)
    return b
  }
  const u64 = (n: number) => {
    const b = Buffer.alloc(8)
    b.writeBigUInt64BE(BigInt(n))
    return b
  }
  const id = Buffer.from(e.id)
  const topic = Buffer.from(e.topic)
  return Buffer.concat([
    Buffer.from([1, id.length]),
    id,
    u16(topic.length),
    topic,
    i32(e.key === undefined ? -1 : e.key.length),
    e.key ?? Buffer.alloc(0),
    i32(e.value.length),
    e.value,
    u64(e.timestamp),
    i32(e.partition ?? -1),
    u16(e.headers.length),
    ...e.headers.flatMap(([name, value]) => [
      u16(Buffer.byteLength(name)),
      Buffer.from(name),
      i32(value.length),
      value,
    ]),
  ])
}

const kept = (e: Envelope) => e.headers.filter(([name]) => name !== 'spillway-id')

test('envelope: encode then decode is the identity, and the size is exact', () => {
  fc.assert(
    fc.property(envelope, (e: Envelope) => {
      const encoded = encodeEnvelope(e)
      assert.equal(encoded.length, envelopeSize(e))
      const decoded = decodeEnvelope(encoded)
      assert.equal(decoded.id, e.id)
      assert.equal(decoded.topic, e.topic)
      assert.deepEqual(decoded.key, e.key)
      assert.deepEqual(decoded.value, e.value)
      assert.deepEqual(
        decoded.headers.map(([k, v]) => [k, Buffer.from(v)]),
        kept(e).map(([k, v]) => [k, Buffer.from(v)]),
      )
      assert.equal(decoded.timestamp, e.timestamp)
      assert.equal(decoded.partition, e.partition)
    }),
    { numRuns: 500 },
  )
})

test('delivery reads the route and a ready Kafka record body, with the id as the first header', () => {
  fc.assert(
    fc.property(envelope, (e) => {
      const stored = readStoredEvent(encodeEnvelope(e))
      assert.equal(stored.topic, e.topic)
      assert.equal(stored.partition, e.partition)
      assert.equal(stored.timestamp, e.timestamp)
      const key = stored.keyStart < 0 ? undefined : stored.body.subarray(stored.keyStart, stored.keyEnd)
      assert.deepEqual(key, e.key)
      assert.deepEqual(
        stored.body,
        encodeRecordBody(e.key, e.value, [['spillway-id', Buffer.from(e.id)], ...kept(e)]),
      )
    }),
    { numRuns: 300 },
  )
})

test('a caller header named spillway-id is not kept: the id takes its place', () => {
  const e: Envelope = {
    id: 'real',
    topic: 't',
    key: undefined,
    value: Buffer.from('v'),
    headers: [
      ['a', Buffer.from('1')],
      ['spillway-id', Buffer.from('forged')],
    ],
    timestamp: 5,
  }
  const decoded = decodeEnvelope(encodeEnvelope(e))
  assert.equal(decoded.id, 'real')
  assert.deepEqual(decoded.headers, [['a', Buffer.from('1')]])
})

test('a version-1 envelope (written by 0.1) still decodes, and is delivered with the same body', () => {
  fc.assert(
    fc.property(envelope, (e) => {
      const old = encodeVersion1(e)
      const decoded = decodeEnvelope(old)
      assert.equal(decoded.id, e.id)
      assert.equal(decoded.topic, e.topic)
      assert.deepEqual(decoded.key, e.key)
      assert.deepEqual(decoded.value, e.value)
      assert.deepEqual(decoded.headers, kept(e))
      assert.equal(decoded.timestamp, e.timestamp)
      assert.equal(decoded.partition, e.partition)
      assert.deepEqual(readStoredEvent(old), readStoredEvent(encodeEnvelope(e)))
    }),
    { numRuns: 300 },
  )
})

test('an unknown envelope version is refused', () => {
  assert.throws(() => decodeEnvelope(Buffer.from([9, 0, 0])), /unknown envelope version 9/)
  assert.throws(() => readStoredEvent(Buffer.from([9, 0, 0])), /unknown envelope version 9/)
})

test('a truncated envelope is refused, never misread', () => {
  const e = encodeEnvelope({
    id: 'x',
    topic: 't',
    key: Buffer.from('k'),
    value: Buffer.from('v'),
    headers: [['h', Buffer.from('1')]],
    timestamp: 1,
  })
  for (let cut = 0; cut < e.length; cut++) {
    assert.throws(() => decodeEnvelope(e.subarray(0, cut)))
    assert.throws(() => readStoredEvent(e.subarray(0, cut)))
  }
})
