/** The in-memory dedupe window: bounded by count, bytes and age (no broker). */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { DedupeWindow } from '../../src/consumer/dedupe.ts'

test('an id is seen once added, until it is older than the TTL', () => {
  let now = 0
  const window = new DedupeWindow({ ttlMs: 1000, now: () => now })
  assert.equal(window.has('a'), false)
  window.add('a')
  now = 999
  assert.equal(window.has('a'), true)
  now = 1001
  assert.equal(window.has('a'), false)
  assert.equal(window.size, 0)
})

test('past the count or the byte bound the oldest ids leave first', () => {
  const byCount = new DedupeWindow({ maxIds: 3 })
  for (const id of ['a', 'b', 'c', 'd']) byCount.add(id)
  assert.deepEqual(
    ['a', 'b', 'c', 'd'].map((id) => byCount.has(id)),
    [false, true, true, true],
  )
  const byBytes = new DedupeWindow({ maxBytes: 3 * (64 + 20) })
  for (let i = 0; i < 10; i++) byBytes.add(`id-${String(i).padStart(6, '0')}`)
  assert.ok(byBytes.bytes <= 3 * (64 + 20))
  assert.equal(byBytes.size, 3)
  assert.equal(byBytes.has('id-000009'), true)
  assert.equal(byBytes.has('id-000000'), false)
})
