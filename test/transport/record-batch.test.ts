/** Kafka record batches written by spillway, read back by the client library's own decoder. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { crc32c, Reader, readRecordsBatch } from '@platformatic/kafka'
import fc from 'fast-check'
import { encodeRecordBatch } from '../../src/transport/record-batch.ts'
import type { OutboundRecord } from '../../src/transport/transport.ts'

const bytes = (maxLength: number) => fc.uint8Array({ maxLength }).map((a) => Buffer.from(a))
const record: fc.Arbitrary<OutboundRecord> = fc
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
      fc.array(record, { minLength: 1, maxLength: 20 }),
      fc.bigInt({ min: 0n, max: 2n ** 62n }),
      fc.integer({ min: 0, max: 32767 }),
      fc.integer({ min: 0, max: 2 ** 31 - 1 }),
      (records, producerId, producerEpoch, sequence) => {
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
        const first = records[0] as OutboundRecord
        assert.equal(batch.firstTimestamp, BigInt(first.timestamp))
        assert.equal(batch.maxTimestamp, BigInt(Math.max(...records.map((r) => r.timestamp))))
        assert.equal(batch.records.length, records.length)
        batch.records.forEach((decoded, i) => {
          const r = records[i] as OutboundRecord
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
    (v, i): OutboundRecord => ({
      topic: 't',
      partition: i % 2,
      key: undefined,
      value: Buffer.from(v),
      headers: [],
      timestamp: 1_700_000_000_000 + i,
    }),
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
      (timestamp): OutboundRecord => ({
        topic: 't',
        partition: 0,
        key: undefined,
        value: Buffer.from('v'),
        headers: [],
        timestamp,
      }),
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
