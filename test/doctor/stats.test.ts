import assert from 'node:assert/strict'
import { test } from 'node:test'
import { hash32, median, percentile, Reservoir, TopK } from '../../src/doctor/stats.ts'

test('percentile and median use nearest rank and the middle', () => {
  const values = Array.from({ length: 100 }, (_, i) => i + 1)
  assert.equal(percentile(values, 50), 50)
  assert.equal(percentile(values, 99), 99)
  assert.equal(percentile(values, 100), 100)
  assert.equal(percentile([], 50), 0)
  assert.equal(median([3, 1, 2]), 2)
  assert.equal(median([4, 1, 2, 3]), 2.5)
})

test('the reservoir keeps at most its capacity and counts everything seen', () => {
  const r = new Reservoir(100)
  for (let i = 0; i < 10_000; i++) r.add(i)
  assert.equal(r.values.length, 100)
  assert.equal(r.seen, 10_000)
  // a uniform sample of 0..9999 has its median far from either end
  const m = median(r.values)
  assert.ok(m > 2000 && m < 8000, `median ${m}`)
})

test('top-k finds the heavy item among many light ones and bounds its overcount', () => {
  const top = new TopK(10)
  for (let i = 0; i < 5000; i++) {
    top.add(`light-${i % 1000}`)
    if (i % 4 === 0) top.add('hot')
  }
  const [first] = top.top(1)
  assert.equal(first?.item, 'hot')
  assert.ok((first?.weight ?? 0) - (first?.error ?? 0) <= 1250)
  assert.ok((first?.weight ?? 0) >= 1250)
  const bytes = new TopK(2)
  bytes.add('a', 10)
  bytes.add('b', 500)
  bytes.add('a', 5)
  assert.deepEqual(
    bytes.top().map((x) => [x.item, x.weight]),
    [
      ['b', 500],
      ['a', 15],
    ],
  )
})

test('hash32 is stable and spreads ids', () => {
  assert.equal(hash32('abc'), hash32('abc'))
  assert.notEqual(hash32('abc'), hash32('abd'))
  const even = Array.from({ length: 10_000 }, (_, i) => hash32(`id-${i}`) % 2).filter((x) => x === 0).length
  assert.ok(even > 4500 && even < 5500, `${even} of 10000 even`)
})
