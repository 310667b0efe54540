/** The tail cache's ring: first-in first-out regions of one buffer that never overlap while live. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { TailRing } from '../../src/log/tail-ring.ts'

const step = fc.oneof(
  fc.record({ op: fc.constant('take' as const), length: fc.integer({ min: 1, max: 300 }) }),
  fc.record({ op: fc.constant('release' as const) }),
  fc.record({ op: fc.constant('undo' as const) }),
)

test('live regions never overlap, keep their bytes, and an empty ring takes anything that fits', () => {
  fc.assert(
    fc.property(fc.integer({ min: 64, max: 1024 }), fc.array(step, { maxLength: 200 }), (capacity, steps) => {
      const ring = new TailRing(capacity)
      const live: { start: number; length: number; view: Buffer; fill: number }[] = []
      let fill = 0
      for (const s of steps) {
        if (s.op === 'release') {
          ring.releaseOldest()
          live.shift()
        } else if (s.op === 'undo') {
          ring.releaseNewest()
          live.pop()
        } else {
          fill = (fill + 1) % 256
          const wasEmpty = live.length === 0
          const taken = ring.take(Buffer.alloc(s.length, fill), undefined)
          if (!taken) {
            assert.ok(!wasEmpty || s.length > capacity, 'an empty ring takes anything up to its capacity')
            continue
          }
          const { start, length } = taken.region
          assert.ok(start >= 0 && start + length <= capacity, 'inside the buffer')
          for (const other of live) {
            assert.ok(start + length <= other.start || other.start + other.length <= start, 'no overlap')
          }
          live.push({ start, length, view: taken.view, fill })
        }
        for (const r of live)
          assert.ok(
            r.view.every((b) => b === r.fill),
            'a live region keeps its bytes',
          )
        assert.equal(
          ring.used,
          live.reduce((n, r) => n + r.length, 0),
        )
      }
    }),
  )
})

test('freed space is used again: a full ring takes more once its oldest regions are released', () => {
  const ring = new TailRing(100)
  assert.ok(ring.take(Buffer.alloc(40), undefined))
  assert.ok(ring.take(Buffer.alloc(40), undefined))
  assert.equal(ring.take(Buffer.alloc(30), undefined), undefined, 'only 20 bytes left')
  ring.releaseOldest()
  const wrapped = ring.take(Buffer.alloc(30), undefined)
  assert.equal(wrapped?.region.start, 0, 'wraps to the start, before the oldest live region')
  assert.equal(
    ring.take(Buffer.alloc(11), undefined),
    undefined,
    'the 10 bytes before the oldest are too few',
  )
  assert.equal(ring.take(Buffer.alloc(101), undefined), undefined, 'larger than the ring: never')
})
