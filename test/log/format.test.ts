/** The record framing's number encodings. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { readMillis, writeMillis } from '../../src/log/format.ts'

test('millisecond timestamps are the same bytes as a u64be BigInt write, and read back exactly', () => {
  fc.assert(
    fc.property(fc.integer({ min: 0, max: Number.MAX_SAFE_INTEGER }), (value) => {
      const ours = Buffer.alloc(8)
      writeMillis(ours, value, 0)
      const reference = Buffer.alloc(8)
      reference.writeBigUInt64BE(BigInt(value), 0)
      assert.deepEqual(ours, reference)
      assert.equal(readMillis(ours, 0), value)
    }),
  )
  const edge = Buffer.alloc(8)
  writeMillis(edge, 2 ** 32, 0)
  assert.equal(edge.readBigUInt64BE(0), 2n ** 32n)
})
