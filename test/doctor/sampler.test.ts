import assert from 'node:assert/strict'
import { test } from 'node:test'
import { eventId, TopicSample } from '../../src/doctor/sampler.ts'
import type { FetchedRecord } from '../../src/transport/cluster.ts'

function record(offset: number, key: string | null, id?: string, value = '{}'): FetchedRecord {
  return {
    offset: BigInt(offset),
    timestamp: 0,
    key: key === null ? null : Buffer.from(key),
    value: Buffer.from(value),
    headers: id === undefined ? [] : [['spillway-id', Buffer.from(id)]],
    size: (key?.length ?? 0) + value.length,
  }
}

test('copies of a selected id are all counted, across partitions', () => {
  const s = new TopicSample('t', 1000)
  s.add(0, record(0, 'k', 'a'), 'a')
  s.add(0, record(1, 'k', 'a'), 'a')
  s.add(1, record(0, 'j', 'a'), 'a')
  s.add(1, record(1, 'j', 'b'), 'b')
  assert.deepEqual(s.ids.get('a'), { count: 3, partitions: [0, 1] })
  assert.equal(s.ids.get('b')?.count, 1)
  assert.equal(s.recordsWithId, 4)
})

test('past maxIds the modulus doubles and keeps whole ids: every kept id still has all its copies', () => {
  const s = new TopicSample('t', 100)
  for (let copy = 0; copy < 3; copy++)
    for (let i = 0; i < 1000; i++) s.add(0, record(i, null, `id-${i}`), `id-${i}`)
  assert.ok(s.idModulus > 1)
  assert.ok(s.ids.size <= 100)
  assert.ok(s.ids.size > 0)
  // M only doubles, so an id kept by the final M was kept by every earlier one: all its copies counted
  assert.deepEqual(new Set([...s.ids.values()].map((c) => c.count)), new Set([3]))
})

test('the longest run of one key back to back is found per partition', () => {
  const s = new TopicSample('t', 1000)
  let offset = 0
  for (let i = 0; i < 5; i++) s.add(0, record(offset++, 'a'), undefined)
  s.add(1, record(0, 'hot'), undefined) // another partition does not break partition 0's run
  for (let i = 0; i < 7; i++) s.add(0, record(offset++, 'hot'), undefined)
  s.add(0, record(offset++, null), undefined)
  s.add(0, record(offset++, 'hot'), undefined)
  assert.equal(s.longestRun?.key, 'hot')
  assert.equal(s.longestRun?.length, 7)
  assert.equal(s.longestRun?.partition, 0)
  assert.equal(s.longestRun?.startOffset, 5n)
  assert.equal(s.nullKeys, 1)
})

test('an event id comes from the spillway-id header, or from a JSON path of the value', () => {
  assert.equal(eventId(record(0, null, 'x1'), null), 'x1')
  assert.equal(eventId(record(0, null), null), undefined)
  assert.equal(eventId(record(0, null, undefined, '{"meta":{"id":42}}'), ['meta', 'id']), '42')
  assert.equal(eventId(record(0, null, undefined, 'not json'), ['id']), undefined)
})
