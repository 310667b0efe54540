/** The records and outcomes that cross between the main thread and the transport's worker. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { SpillwayError } from '../../src/errors.ts'
import type { OutboundRecord, RecordOutcome } from '../../src/transport/transport.ts'
import { TransportError } from '../../src/transport/transport.ts'
import {
  errorFromWire,
  errorToWire,
  packOutcomes,
  packRecords,
  unpackOutcomes,
  unpackRecords,
} from '../../src/transport/wire.ts'
import { outbound } from '../helpers/outbound.ts'

const bytes = fc.uint8Array({ maxLength: 64 }).map((a) => Buffer.from(a))
const record: fc.Arbitrary<OutboundRecord> = fc
  .record({
    topic: fc.constantFrom('orders', 'clicks', 'ünïcode-topic'),
    partition: fc.integer({ min: 0, max: 1000 }),
    key: fc.option(bytes, { nil: undefined }),
    value: bytes,
    headers: fc.array(fc.tuple(fc.string({ maxLength: 12 }), bytes), { maxLength: 4 }),
    timestamp: fc.integer({ min: 0, max: 2 ** 47 }),
  })
  .map(outbound)

test('packed records unpack to the same records, in order', () => {
  fc.assert(
    fc.property(fc.array(record, { maxLength: 30 }), (records) => {
      const packed = packRecords(records)
      // what the worker sees: a structured clone of the message
      const copy = structuredClone(packed)
      assert.deepEqual(unpackRecords(copy), records)
    }),
  )
})

test('a packed buffer that does not match its count is refused, not misread', () => {
  const packed = packRecords([outbound({ topic: 't', partition: 0, value: Buffer.from('v'), timestamp: 1 })])
  assert.throws(() => unpackRecords({ ...packed, count: 0 }), RangeError)
  assert.throws(() => unpackRecords({ ...packed, count: 2 }), RangeError)
  assert.throws(() => unpackRecords({ ...packed, names: [] }), RangeError)
})

test('outcomes keep their per-record value; a late outcome follows its ticket', async () => {
  const late = Promise.resolve<RecordOutcome>({ kind: 'ok' })
  const ok: RecordOutcome = { kind: 'ok' }
  const slow: RecordOutcome = {
    kind: 'error',
    errorClass: 'retriable',
    reason: 'deadline',
    ambiguous: true,
    late,
  }
  const poison: RecordOutcome = { kind: 'error', errorClass: 'poison', reason: 'too large', ambiguous: false }
  const tickets: Promise<RecordOutcome>[] = []
  const wire = packOutcomes([ok, slow, slow, poison, ok], (p) => tickets.push(p) - 1)
  assert.equal(wire.distinct.length, 3, 'one entry per distinct outcome')
  assert.equal(tickets.length, 1, 'one ticket for the request cut short')
  const back = unpackOutcomes(structuredClone(wire), (ticket) => tickets[ticket] as Promise<RecordOutcome>)
  assert.deepEqual(back[0], ok)
  assert.deepEqual(back[3], poison)
  assert.equal(back[1], back[2], 'records of one request share one outcome')
  const cut = back[1]
  assert.ok(cut?.kind === 'error' && cut.ambiguous && cut.late)
  assert.deepEqual(await cut.late, { kind: 'ok' })
})

test('errors keep their class or code across the thread', () => {
  const transport = errorFromWire(
    structuredClone(errorToWire(new TransportError('no topic', 'poison', false))),
  )
  assert.ok(transport instanceof TransportError && transport.errorClass === 'poison' && !transport.ambiguous)
  const timeout = errorFromWire(structuredClone(errorToWire(new SpillwayError('SPW_ERR_TIMEOUT', 'late'))))
  assert.ok(timeout instanceof SpillwayError && timeout.code === 'SPW_ERR_TIMEOUT')
  const other = errorFromWire(structuredClone(errorToWire(new Error('boom'))))
  assert.equal(other.message, 'boom')
})
