/** Admission: what send() turns into envelopes, and the field it names when it refuses (no broker). */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Admission, type Invalid, type Prepared } from '../../src/producer/admission.ts'
import { decodeEnvelope, encodeEnvelope } from '../../src/producer/envelope.ts'

const NOW = 1_700_000_000_000

function refused(p: Prepared | Invalid): Invalid {
  assert.ok('error' in p, `expected a refusal, got ${JSON.stringify(p)}`)
  return p
}

test('a valid event becomes the envelope that will be stored: id, key, headers, timestamp, size', () => {
  const admission = new Admission(1024 * 1024)
  const p = admission.prepare(
    'orders',
    {
      id: 'order-1',
      key: 'c42',
      value: { total: 12.5 },
      headers: { source: 'web' },
      timestamp: new Date(NOW),
    },
    0,
    NOW + 5,
  )
  assert.ok(!('error' in p))
  assert.equal(p.id, 'order-1')
  assert.equal(p.timestamp, NOW)
  assert.equal(p.size, encodeEnvelope(p).length, 'the size is the encoded size')
  const stored = decodeEnvelope(encodeEnvelope(p))
  assert.deepEqual(
    [
      stored.topic,
      stored.key?.toString(),
      stored.value.toString(),
      stored.headers.map(([k, v]) => [k, v.toString()]),
    ],
    ['orders', 'c42', '{"total":12.5}', [['source', 'web']]],
  )
  const generated = admission.prepare('orders', { value: 'x' }, 1, NOW)
  assert.ok(!('error' in generated) && /^[0-9a-f-]{36}$/.test(generated.id), 'a UUIDv7 when no id is given')
})

test('each bad field is named with its index, and the id it came with is kept', () => {
  const admission = new Admission(1024 * 1024)
  const cases: [unknown, string][] = [
    [null, 'events[3] must be an object'],
    [{}, 'events[3].value is required'],
    [{ value: 1, id: '' }, 'events[3].id must be a string of 1 to 200 bytes'],
    [{ value: 1, key: 5 }, 'events[3].key must be a string or bytes'],
    [{ value: 1, headers: { a: 1 } }, 'events[3].headers.a must be a string or bytes'],
    [{ value: 1, timestamp: -1 }, 'events[3].timestamp must be a non-negative number of ms or a Date'],
    [{ value: 1, partition: 1.5 }, 'events[3].partition must be a non-negative integer'],
  ]
  for (const [event, message] of cases) {
    const r = refused(admission.prepare('orders', event as never, 3, NOW))
    assert.equal(r.error.code, 'SPW_ERR_BAD_REQUEST')
    assert.equal(r.error.message, message)
  }
  const withId = refused(admission.prepare('orders', { id: 'keep-me', value: 1, key: 5 } as never, 0, NOW))
  assert.equal(withId.id, 'keep-me')
})

test("Kafka's topic rule, and the size limit counted on the encoded event", () => {
  const admission = new Admission(1000)
  for (const topic of ['.', '..', 'a b', 'x'.repeat(250)]) {
    assert.equal(refused(admission.prepare(topic, { value: 1 }, 0, NOW)).error.code, 'SPW_ERR_BAD_REQUEST')
  }
  assert.ok(!('error' in admission.prepare('a'.repeat(249), { value: 1 }, 0, NOW)))
  const big = refused(new Admission(200).prepare('orders', { value: 'x'.repeat(300) }, 2, NOW))
  assert.equal(big.error.code, 'SPW_ERR_RECORD_TOO_LARGE')
  assert.equal(big.error.details.field, 'events[2].value')
  assert.equal(big.error.details.max, 200)
})
