import assert from 'node:assert/strict'
import { test } from 'node:test'
import { uuidv7 } from '../../src/producer/uuidv7.ts'

const SHAPE = /^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$/

/** The 48-bit ms an id carries, and its 12-bit counter. */
function parts(id: string): { ms: number; counter: number } {
  const hex = id.replaceAll('-', '')
  return { ms: Number.parseInt(hex.slice(0, 12), 16), counter: Number.parseInt(hex.slice(13, 16), 16) }
}

// Ids from one process never go back in time, so the cases run from the earliest ms to the latest.
test('uuidv7: the first 48 bits are the Unix ms, at every byte of it', () => {
  const moments = [
    0,
    1,
    0xff,
    0x100,
    0xffff,
    0x10000,
    0xffffff,
    2 ** 32 - 1,
    2 ** 32,
    1_700_000_000_123,
    2 ** 47 - 1,
  ]
  for (const ms of moments) {
    const id = uuidv7(ms)
    assert.match(id, SHAPE)
    assert.equal(parts(id).ms, ms, `${id} carries ${ms}`)
  }
})

test('uuidv7: version 7, RFC 9562 variant, strictly increasing within a millisecond', () => {
  const ms = 2 ** 47
  const ids = Array.from({ length: 6000 }, () => uuidv7(ms))
  for (const id of ids) assert.match(id, SHAPE)
  for (let i = 1; i < ids.length; i++)
    assert.ok((ids[i] as string) > (ids[i - 1] as string), 'sorted by admission')
  assert.equal(new Set(ids).size, ids.length)
  // the counter counts up within the ms; when it runs out the next ms is borrowed, never an id repeated
  const first = parts(ids[0] as string)
  assert.equal(first.ms, ms)
  assert.ok(first.counter <= 0x3ff, 'a new ms starts its counter low, leaving headroom')
  const borrowed = ids.filter((id) => parts(id).ms > ms)
  assert.equal(borrowed.length, 6000 - (0x1000 - first.counter))
  assert.ok(borrowed.every((id) => parts(id).ms === ms + 1))
})

test('uuidv7: a clock that goes back does not make ids go back', () => {
  const before = uuidv7(2 ** 47 + 5)
  const after = uuidv7(1000)
  assert.ok(after > before)
})
