/** The commit tracker: watermark, completions beyond it, restore after a restart (no broker). */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { CommitTracker } from '../../src/consumer/commit-tracker.ts'
import { decodeCompleted } from '../../src/consumer/offset-encoding.ts'

test('only the contiguous prefix is committed; what lies beyond travels in the metadata', () => {
  const tracker = new CommitTracker(100n, null)
  tracker.complete(101n)
  tracker.complete(103n)
  assert.equal(tracker.watermark, 100n, '100 is still in flight')
  const point = tracker.commitPoint()
  assert.equal(point?.offset, 100n)
  assert.notEqual(point?.metadata, '')
  tracker.complete(100n)
  assert.equal(tracker.watermark, 102n)
  tracker.complete(102n)
  assert.equal(tracker.watermark, 104n)
  assert.deepEqual(tracker.commitPoint(), { offset: 104n, metadata: '' })
})

test('a restart from a commit point skips exactly what the previous owner completed', () => {
  const before = new CommitTracker(0n, null)
  for (const o of [1n, 2n, 5n, 9n]) before.complete(o)
  const point = before.commitPoint()
  assert.ok(point)
  before.committed(point)
  assert.equal(before.commitPoint(), undefined, 'nothing new to commit')
  const after = new CommitTracker(point.offset, point.metadata)
  const skipped = [...Array(12).keys()].map(BigInt).filter((o) => after.alreadyDone(o))
  assert.deepEqual(skipped, [1n, 2n, 5n, 9n])
  // handling the rest completes the partition
  for (const o of [0n, 3n, 4n, 6n, 7n, 8n, 10n]) after.complete(o)
  assert.equal(after.watermark, 11n)
})

test('any completion order ends with the watermark past everything, never moving back', () => {
  fc.assert(
    fc.property(fc.shuffledSubarray([...Array(60).keys()], { minLength: 60, maxLength: 60 }), (order) => {
      const tracker = new CommitTracker(1000n, null)
      let last = tracker.watermark
      for (const i of order) {
        tracker.complete(1000n + BigInt(i))
        assert.ok(tracker.watermark >= last)
        last = tracker.watermark
        const point = tracker.commitPoint()
        if (point) {
          const restored = new CommitTracker(point.offset, point.metadata)
          for (const j of order.slice(0, order.indexOf(i) + 1))
            assert.ok(restored.alreadyDone(1000n + BigInt(j)), 'every completion survives a restart')
        }
      }
      assert.equal(tracker.watermark, 1060n)
    }),
    { numRuns: 100 },
  )
})

test('metadata pressure grows with scattered completions and falls when the watermark catches up', () => {
  const tracker = new CommitTracker(0n, null, 200)
  for (let i = 1; i < 400; i += 2) tracker.complete(BigInt(i))
  assert.ok(tracker.metadataPressure() > 0.75, `pressure ${tracker.metadataPressure()}`)
  for (let i = 0; i < 400; i += 2) tracker.complete(BigInt(i))
  assert.equal(tracker.metadataPressure(), 0)
})

test('commitPointWith: the point as if some offsets were done, leaving the tracker as it was', () => {
  const tracker = new CommitTracker(10n, null)
  tracker.complete(12n)
  const point = tracker.commitPointWith([10n, 11n, 14n])
  assert.equal(point.offset, 13n)
  assert.deepEqual([...decodeCompleted(point.offset, point.metadata)], [14n])
  assert.equal(tracker.watermark, 10n, 'nothing was completed')
  assert.equal(tracker.commitPointWith([]).offset, 10n)
})

test('skipped offsets (transaction markers, aborted or compacted records) count as done', () => {
  const tracker = new CommitTracker(0n, null)
  tracker.complete(0n)
  tracker.skip(1n, 2n) // a commit marker
  assert.equal(tracker.watermark, 2n)
  // a record still running before a long gap holds the watermark; once done, it jumps the gap
  tracker.skip(3n, 1000n)
  tracker.complete(1000n)
  assert.equal(tracker.watermark, 2n)
  tracker.complete(2n)
  assert.equal(tracker.watermark, 1001n)
  const point = tracker.commitPoint()
  assert.equal(point?.offset, 1001n)
  assert.deepEqual([...decodeCompleted(1001n, point?.metadata)], [], 'nothing left beyond it')
  tracker.skip(500n, 900n)
  assert.equal(tracker.watermark, 1001n, 'a range below the watermark changes nothing')
})
