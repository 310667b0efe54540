/** The completed-offsets encoding carried in commit metadata: a property test and its size. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { decodeCompleted, encodeCompleted } from '../../src/consumer/offset-encoding.ts'

test('decode(encode(x)) gives back exactly the completed offsets beyond the committed one', () => {
  fc.assert(
    fc.property(
      fc.bigInt({ min: 0n, max: 2n ** 40n }),
      fc.array(fc.integer({ min: 0, max: 5000 }), { maxLength: 400 }),
      (committed, deltas) => {
        const completed = deltas.map((d) => committed + BigInt(d))
        const expected = [...new Set(completed.filter((o) => o > committed))].sort((a, b) =>
          a < b ? -1 : a > b ? 1 : 0,
        )
        const metadata = encodeCompleted(committed, completed)
        assert.deepEqual(decodeCompleted(committed, metadata), expected)
        if (expected.length === 0) assert.equal(metadata, '')
      },
    ),
    { numRuns: 300 },
  )
})

test('runs keep it small: 10,000 completed offsets in 20 runs take about a hundred bytes', () => {
  const completed: bigint[] = []
  for (let run = 0; run < 20; run++)
    for (let i = 0; i < 500; i++) completed.push(BigInt(1000 + run * 1000 + i))
  const metadata = encodeCompleted(999n, completed)
  assert.ok(metadata.length < 150, `${metadata.length} characters`)
  assert.equal(decodeCompleted(999n, metadata).length, 10_000)
})

test("metadata that is not spillway's (another client's, empty, null) means nothing completed beyond", () => {
  assert.deepEqual(decodeCompleted(5n, ''), [])
  assert.deepEqual(decodeCompleted(5n, null), [])
  assert.deepEqual(decodeCompleted(5n, 'some other client wrote this'), [])
})
