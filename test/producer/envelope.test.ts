import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { decodeEnvelope, type Envelope, encodeEnvelope, envelopeSize } from '../../src/producer/envelope.ts'
import { uuidv7 } from '../../src/producer/uuidv7.ts'

const bytes = fc.uint8Array({ maxLength: 200 }).map((a) => Buffer.from(a))

test('envelope: encode then decode is the identity, and the size is exact', () => {
  fc.assert(
    fc.property(
      fc.record({
        id: fc.string({ minLength: 1, maxLength: 60 }),
        topic: fc.stringMatching(/^[a-zA-Z0-9._-]{1,40}$/),
        key: fc.option(bytes, { nil: undefined }),
        value: bytes,
        headers: fc.array(fc.tuple(fc.string({ maxLength: 20 }), bytes), { maxLength: 5 }),
        timestamp: fc.integer({ min: 0, max: 2 ** 50 }),
        partition: fc.option(fc.integer({ min: 0, max: 10_000 }), { nil: undefined }),
      }),
      (e: Envelope) => {
        const encoded = encodeEnvelope(e)
        assert.equal(encoded.length, envelopeSize(e))
        const decoded = decodeEnvelope(encoded)
        assert.equal(decoded.id, e.id)
        assert.equal(decoded.topic, e.topic)
        assert.deepEqual(decoded.key, e.key)
        assert.deepEqual(decoded.value, e.value)
        assert.deepEqual(
          decoded.headers.map(([k, v]) => [k, Buffer.from(v)]),
          e.headers.map(([k, v]) => [k, Buffer.from(v)]),
        )
        assert.equal(decoded.timestamp, e.timestamp)
        assert.equal(decoded.partition, e.partition)
      },
    ),
    { numRuns: 500 },
  )
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
  for (let cut = 0; cut < e.length; cut++) assert.throws(() => decodeEnvelope(e.subarray(0, cut)))
})

test('uuidv7: version 7, RFC 9562 variant, strictly increasing within a millisecond', () => {
  const ids = Array.from({ length: 5000 }, () => uuidv7(1_700_000_000_000))
  for (const id of ids)
    assert.match(id, /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/)
  for (let i = 1; i < ids.length; i++)
    assert.ok((ids[i] as string) > (ids[i - 1] as string), 'sorted by admission')
  assert.equal(new Set(ids).size, ids.length)
})
