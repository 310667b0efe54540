/** A partition's waiting records: sizes come back once, in any finishing order, as a Map would give them. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { WaitingRecords } from '../../src/consumer/waiting-records.ts'

test('records finished in order: the oldest waiting moves on, and the queue empties', () => {
  const w = new WaitingRecords()
  for (let o = 10n; o < 15n; o++) assert.equal(w.add(o, Number(o) * 1000, Number(o)), 0)
  assert.equal(w.size, 5)
  assert.equal(w.oldestTimestamp(), 10_000)
  assert.equal(w.finish(10n), 10)
  assert.equal(w.oldestTimestamp(), 11_000)
  assert.equal(w.finish(10n), -1, 'a record finishes once')
  for (let o = 11n; o < 15n; o++) assert.equal(w.finish(o), Number(o))
  assert.equal(w.size, 0)
  assert.equal(w.oldestTimestamp(), undefined)
  // and it takes new records after emptying
  w.add(15n, 1, 7)
  assert.equal(w.finish(15n), 7)
})

test('out of order, gaps in offsets, a record fetched again, and offsets it never had', () => {
  const w = new WaitingRecords()
  for (const o of [3n, 5n, 9n, 10n]) w.add(o, Number(o), 100)
  assert.equal(w.finish(9n), 100)
  assert.equal(w.oldestTimestamp(), 3)
  assert.equal(w.finish(4n), -1, 'an offset in a gap was never waiting')
  assert.equal(w.finish(99n), -1)
  assert.equal(w.add(5n, 5, 150), 100, 'fetched again: the bytes it replaces come back')
  assert.equal(w.finish(3n), 100)
  assert.equal(w.oldestTimestamp(), 5)
  assert.equal(w.finish(5n), 150)
  assert.equal(w.size, 1)
  assert.equal(w.add(7n, 7, 20), 0, 'one before the last is put in its place')
  assert.equal(w.oldestTimestamp(), 7)
  assert.equal(w.finish(10n), 100)
  assert.equal(w.finish(7n), 20)
  assert.equal(w.size, 0)
  w.add(1n, 1, 1)
  w.clear()
  assert.equal(w.size, 0)
  assert.equal(w.finish(1n), -1)
})

test('against a Map over many random adds and finishes', () => {
  let seed = 7
  const next = (): number => {
    seed = (seed * 1103515245 + 12345) % 2147483648
    return seed / 2147483648
  }
  const w = new WaitingRecords()
  const model = new Map<bigint, number>()
  let offset = 0n
  for (let step = 0; step < 50_000; step++) {
    if (next() < 0.55) {
      offset += 1n + BigInt(Math.floor(next() * 3))
      const size = 1 + Math.floor(next() * 1000)
      assert.equal(w.add(offset, Number(offset), size), 0)
      model.set(offset, size)
    } else if (model.size > 0) {
      // mostly the oldest, sometimes any
      const keys = [...model.keys()].slice(0, 64)
      const pick = next() < 0.7 ? (keys[0] as bigint) : (keys[Math.floor(next() * keys.length)] as bigint)
      assert.equal(w.finish(pick), model.get(pick))
      model.delete(pick)
    }
    assert.equal(w.size, model.size)
    const first = model.keys().next()
    assert.equal(w.oldestTimestamp(), first.done ? undefined : Number(first.value))
  }
})
