/** Kafka record batches written by spillway, read back by the client library's own decoder. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { crc32c, Reader, readRecordsBatch } from '@platformatic/kafka'
import fc from 'fast-check'
import {
  checkRecordBody,
  encodeRecordBatch,
  encodeRecordBody,
  readRecordBody,
  readVarint,
  varintSize,
  writeVarint,
} from '../../src/transport/record-batch.ts'
import type { OutboundRecord } from '../../src/transport/transport.ts'
import { outbound, type RecordFields } from '../helpers/outbound.ts'

const bytes = (maxLength: number) => fc.uint8Array({ maxLength }).map((a) => Buffer.from(a))
const fields: fc.Arbitrary<RecordFields & { headers: [string, Buffer][]; timestamp: number }> = fc
  .record({
    topic: fc.constant('t'),
    partition: fc.constant(0),
    key: fc.option(bytes(40), { nil: undefined }),
    // up to 20 KiB, so record lengths cross the one-, two- and three-byte varint widths
    value: fc.oneof(bytes(100), bytes(20_000)),
    headers: fc.array(fc.tuple(fc.string({ maxLength: 12 }), bytes(30)), { maxLength: 4 }),
    timestamp: fc.integer({ min: 1_600_000_000_000, max: 1_900_000_000_000 }),
  })
  .map((r) => ({ ...r }))

test('a batch decodes to the same records, sequence, producer and timestamps, with a valid CRC', () => {
  fc.assert(
    fc.property(
      fc.array(fields, { minLength: 1, maxLength: 20 }),
      fc.bigInt({ min: 0n, max: 2n ** 62n }),
      fc.integer({ min: 0, max: 32767 }),
      fc.integer({ min: 0, max: 2 ** 31 - 1 }),
      (given, producerId, producerEpoch, sequence) => {
        const records = given.map(outbound)
        const indexes = records.map((_, i) => i)
        const bytes = encodeRecordBatch(records, indexes, { producerId, producerEpoch }, sequence)
        const batch = readRecordsBatch(Reader.from(bytes))
        assert.equal(batch.length, bytes.length - 12, 'batch length covers everything after it')
        assert.equal(batch.magic, 2)
        assert.equal(batch.attributes, 0, 'uncompressed, create time, not transactional')
        assert.equal(batch.crc, crc32c(bytes.subarray(21)), 'CRC32C from the attributes to the end')
        assert.equal(batch.producerId, producerId)
        assert.equal(batch.producerEpoch, producerEpoch)
        assert.equal(batch.firstSequence, sequence)
        assert.equal(batch.lastOffsetDelta, records.length - 1)
        const first = given[0] as RecordFields & { timestamp: number }
        assert.equal(batch.firstTimestamp, BigInt(first.timestamp))
        assert.equal(batch.maxTimestamp, BigInt(Math.max(...given.map((r) => r.timestamp))))
        assert.equal(batch.records.length, records.length)
        batch.records.forEach((decoded, i) => {
          const r = given[i] as RecordFields & { headers: [string, Buffer][]; timestamp: number }
          assert.equal(decoded.offsetDelta, i)
          assert.equal(decoded.timestampDelta, BigInt(r.timestamp - first.timestamp))
          if (r.key === undefined) assert.ok(decoded.key === null || decoded.key.length === 0)
          else assert.deepEqual(decoded.key, r.key)
          assert.deepEqual(decoded.value, r.value)
          assert.deepEqual(
            decoded.headers.map(([k, v]) => [String(k), Buffer.from(v ?? [])]),
            r.headers.map(([k, v]) => [k, v]),
          )
        })
      },
    ),
    { numRuns: 200 },
  )
})

test('a batch can hold a subset of the records, in the order given', () => {
  const records = ['a', 'b', 'c', 'd'].map(
    (v, i): OutboundRecord =>
      outbound({ topic: 't', partition: i % 2, value: Buffer.from(v), timestamp: 1_700_000_000_000 + i }),
  )
  const batch = readRecordsBatch(
    Reader.from(encodeRecordBatch(records, [3, 1], { producerId: 1n, producerEpoch: 0 }, 5)),
  )
  assert.deepEqual(
    batch.records.map((r) => String(r.value)),
    ['d', 'b'],
  )
  assert.equal(batch.records[1]?.timestampDelta, -2n, 'timestamps need not rise')
})

test('timestamp deltas of every varint width, either sign, decode to what was written', () => {
  const deltas = [0, 63, 64, -64, -65, 8191, 8192, -8192, -8193, 2 ** 31, -(2 ** 31), 2 ** 40, -(2 ** 45)]
  const check = (delta: number) => {
    const base = 1_700_000_000_000
    const records = [base, base + delta].map(
      (timestamp): OutboundRecord =>
        outbound({ topic: 't', partition: 0, value: Buffer.from('v'), timestamp }),
    )
    const batch = readRecordsBatch(
      Reader.from(encodeRecordBatch(records, [0, 1], { producerId: 1n, producerEpoch: 0 }, 0)),
    )
    assert.equal(batch.records[1]?.timestampDelta, BigInt(delta), `delta ${delta}`)
  }
  for (const delta of deltas) check(delta)
  fc.assert(fc.property(fc.integer({ min: -(2 ** 46), max: 2 ** 46 }), check))
})

test('an empty batch is refused', () => {
  assert.throws(() => encodeRecordBatch([], [], { producerId: 1n, producerEpoch: 0 }, 0), RangeError)
})

test('a record body reads back as written', () => {
  fc.assert(
    fc.property(fields, (r) => {
      const body = encodeRecordBody(r.key, r.value, r.headers)
      const read = readRecordBody(body)
      assert.deepEqual(read.key, r.key)
      assert.deepEqual(read.value, r.value)
      assert.deepEqual(read.headers, r.headers)
      const keyAt = checkRecordBody(body)
      if (r.key === undefined) assert.equal(keyAt, -1)
      else assert.deepEqual(body.subarray(keyAt, keyAt + r.key.length), r.key, 'the key is found in place')
    }),
    { numRuns: 200 },
  )
})

test('a damaged record body is refused, never read past its end', () => {
  const body = encodeRecordBody(Buffer.from('key'), Buffer.from('value'), [['h', Buffer.from('1')]])
  for (let cut = 0; cut < body.length; cut++) {
    assert.throws(() => readRecordBody(body.subarray(0, cut)), RangeError, `cut at ${cut}`)
    assert.throws(() => checkRecordBody(body.subarray(0, cut)), RangeError, `cut at ${cut}`)
  }
  assert.throws(() => readRecordBody(Buffer.concat([body, Buffer.from([0])])), /after its last header/)
  assert.throws(() => readRecordBody(Buffer.from([3])), /key length -2/)
  assert.throws(() => readRecordBody(Buffer.alloc(10, 0xff)), /too long/)
  assert.throws(() => checkRecordBody(Buffer.concat([body, Buffer.from([0])])), /after its last header/)
  assert.throws(() => checkRecordBody(Buffer.from([3])), /key length -2/)
})

test('varints read back as written at every width and sign', () => {
  fc.assert(
    fc.property(fc.integer({ min: -(2 ** 46), max: 2 ** 46 }), (n) => {
      const buffer = Buffer.alloc(10)
      const end = writeVarint(buffer, 0, n)
      assert.equal(end, varintSize(n))
      assert.deepEqual(readVarint(buffer, 0, end), { value: n, next: end })
    }),
  )
})
