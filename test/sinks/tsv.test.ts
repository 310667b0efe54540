/** Tab-separated lines: tabs between columns, \N for null, escapes for the characters both readers treat specially. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { quoteName } from '../../src/sinks/postgres/names.ts'
import { type Cell, encodeRows, plainBytes, tsvLine, tsvValue } from '../../src/sinks/tsv.ts'

test('values are escaped and null is \\N', () => {
  assert.equal(tsvValue(null), '\\N')
  assert.equal(tsvValue('\\N'), '\\\\N', 'a literal \\N is not null')
  assert.equal(tsvValue('a\tb\nc\rd\\e'), 'a\\tb\\nc\\rd\\\\e')
  assert.equal(tsvLine(['1', null, 'x y']), '1\t\\N\tx y\n')
})

test('a batch is the same text whether a cell comes as text or as its checked UTF-8 bytes', () => {
  const texts: (string | null)[][] = [
    ['1', null, '{"a":"x y"}'],
    ['2', 'é ✓ 𝄞', '{"a":"tab\\there","b":"line\\nbreak"}'],
    ['3', 'raw\ttab', 'back\\slash\r\n'],
    ['', '\\N', '日本語'],
  ]
  const expected = texts.map(tsvLine).join('')
  assert.equal(encodeRows(texts).toString('utf8'), expected)
  // bytes with nothing to escape are copied; the others stay text and are escaped
  const asBytes: Cell[][] = texts.map((row) =>
    row.map((v, i) => (i === 2 && v !== null ? (plainBytes(Buffer.from(v)) ?? v) : v)),
  )
  assert.deepEqual(
    asBytes.map((row) => Buffer.isBuffer(row[2])),
    [true, false, false, true],
  )
  assert.equal(encodeRows(asBytes).toString('utf8'), expected)
  assert.equal(encodeRows([]).length, 0)
})

test('names are quoted part by part', () => {
  assert.equal(quoteName('events'), '"events"')
  assert.equal(quoteName('app.events'), '"app"."events"')
})

test('plain columns are taken as they are; the others are escaped', () => {
  const rows = [['7', 'a\tb', plainBytes(Buffer.from('{"x":1}'))]]
  assert.equal(encodeRows(rows, [true, false, false]).toString(), '7\ta\\tb\t{"x":1}\n')
})

test('bytes are taken as they are only when they are UTF-8 and hold nothing to escape', () => {
  assert.ok(plainBytes(Buffer.from('{"name":"Zoë ✓"}')))
  for (const special of ['y\\z', 'a\tb', 'a\nb', 'a\rb'])
    assert.equal(plainBytes(Buffer.from(special)), null, special)
  assert.equal(plainBytes(Buffer.from([0x61, 0xe9, 0x62])), null, 'Latin-1 bytes are not UTF-8')
})
