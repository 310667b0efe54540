/** Table mappings: record fields and JSON paths to column text, and readable errors for bad mappings. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { ConsumedRecord } from '../../src/consumer/types.ts'
import { DEFAULT_COLUMNS, mapRecord, readMapping } from '../../src/sinks/mapping.ts'

const record = (
  value: string | null,
  extra: Partial<ConsumedRecord<Buffer | null>> = {},
): ConsumedRecord<Buffer | null> => ({
  topic: 'orders',
  partition: 2,
  offset: 41n,
  timestamp: Date.UTC(2026, 11, 7, 10, 0, 0),
  key: Buffer.from('customer-9'),
  value: value === null ? null : Buffer.from(value),
  headers: [
    ['spillway-id', Buffer.from('0190-abc')],
    ['source', Buffer.from('web')],
    ['source', Buffer.from('batch')],
  ],
  id: '0190-abc',
  ...extra,
})

test('the default mapping gives every record field and the value as JSON', () => {
  const mapping = readMapping(undefined, 'columns')
  assert.deepEqual(
    mapping.columns.map((c) => c.name),
    Object.keys(DEFAULT_COLUMNS),
  )
  assert.equal(mapping.idColumn, 'id')
  assert.deepEqual(mapRecord(mapping, record('{"total": 12.5, "items": [1, 2]}')), [
    '0190-abc',
    'orders',
    '2',
    '41',
    '2026-12-07T10:00:00.000Z',
    'customer-9',
    '{"spillway-id":"0190-abc","source":["web","batch"]}',
    Buffer.from('{"total": 12.5, "items": [1, 2]}'),
  ])
})

test('$value is the record’s own bytes when they are UTF-8, and the decoded text when they are not; $timestamp as unix seconds on request', () => {
  const mapping = readMapping(
    { id: '$id', at: '$timestamp', value: '$value', headers: '$headers' },
    'columns',
  )
  const utf8 = mapRecord(
    mapping,
    // a consumed record's id is its spillway-id header's text
    record('{"name":"Zoë ✓"}', { headers: [['spillway-id', Buffer.from('x')]], id: 'x' }),
  )
  assert.ok(Buffer.isBuffer(utf8[2]))
  assert.equal((utf8[2] as Buffer).toString(), '{"name":"Zoë ✓"}')
  assert.equal(utf8[3], '{"spillway-id":"x"}', 'one header: the same JSON as for several')
  const latin1 = record('', { value: Buffer.from([0x7b, 0x22, 0x61, 0x22, 0x3a, 0x22, 0xe9, 0x22, 0x7d]) })
  assert.equal(mapRecord(mapping, latin1)[2], '{"a":"\ufffd"}')
  assert.equal(
    mapRecord(mapping, record('{}'), 'unix-seconds')[1],
    String(Date.UTC(2026, 11, 7, 10, 0, 0) / 1000),
  )
  assert.deepEqual(mapping.plain, [false, true, false, false])
})

test('paths read nested fields; objects become JSON text, missing fields null; $raw keeps the text', () => {
  const mapping = readMapping(
    { event_id: '$id', customer: 'customer.id', total: 'total', items: 'items', gone: 'a.b.c', raw: '$raw' },
    'columns',
  )
  const value = '{"customer": {"id": 7}, "total": "12.50", "items": {"n": 2}}'
  assert.deepEqual(mapRecord(mapping, record(value)), ['0190-abc', '7', '12.50', '{"n":2}', null, value])
})

test('a value that is not JSON is SPW_ERR_SINK_DECODE when a column needs JSON, and fine when none does', () => {
  const json = readMapping({ id: '$id', total: 'total' }, 'columns')
  assert.throws(
    () => mapRecord(json, record('not json')),
    (e: Error & { code?: string }) => e.code === 'SPW_ERR_SINK_DECODE',
  )
  const raw = readMapping({ id: '$id', body: '$raw', k: '$key' }, 'columns')
  assert.deepEqual(mapRecord(raw, record('not json')), ['0190-abc', 'not json', 'customer-9'])
  assert.deepEqual(mapRecord(json, record(null)), ['0190-abc', null])
})

test('bad mappings name the column and what is allowed', () => {
  assert.throws(() => readMapping({ total: 'total' }, 'columns'), /exactly one column mapped from \$id/)
  assert.throws(() => readMapping({ id: '$id', x: '$nope' }, 'columns'), /columns\.x.*one of \$id/)
  assert.throws(
    () => readMapping({ id: '$id', 'Bad-Name': 'a' }, 'columns'),
    /a column name of lower-case letters/,
  )
  assert.throws(() => readMapping({ id: '$id', x: 'a..b' }, 'columns'), /a dotted path/)
  assert.throws(() => readMapping({ id: '$id', x: 3 }, 'columns'), /columns\.x/)
})
