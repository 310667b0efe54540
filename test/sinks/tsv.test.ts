/** Tab-separated lines: tabs between columns, \N for null, escapes for the characters both readers treat specially. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { quoteName } from '../../src/sinks/postgres/names.ts'
import { encodeRows, tsvLine, tsvValue } from '../../src/sinks/tsv.ts'

test('values are escaped and null is \\N', () => {
  assert.equal(tsvValue(null), '\\N')
  assert.equal(tsvValue('\\N'), '\\\\N', 'a literal \\N is not null')
  assert.equal(tsvValue('a\tb\nc\rd\\e'), 'a\\tb\\nc\\rd\\\\e')
  assert.equal(tsvLine(['1', null, 'x y']), '1\t\\N\tx y\n')
})

test('a batch is the same text whether a cell comes as text or as its UTF-8 bytes', () => {
  const texts: (string | null)[][] = [
    ['1', null, '{"a":"x y"}'],
    ['2', 'é ✓ 𝄞', '{"a":"tab\\there","b":"line\\nbreak"}'],
    ['3', 'raw\ttab', 'back\\slash\r\n'],
    ['', '\\N', '日本語'],
  ]
  const expected = texts.map(tsvLine).join('')
  assert.equal(encodeRows(texts).toString('utf8'), expected)
  const asBytes = texts.map((row) => row.map((v, i) => (i === 2 && v !== null ? Buffer.from(v) : v)))
  assert.equal(encodeRows(asBytes).toString('utf8'), expected)
  assert.equal(encodeRows([]).length, 0)
})

test('names are quoted part by part', () => {
  assert.equal(quoteName('events'), '"events"')
  assert.equal(quoteName('app.events'), '"app"."events"')
})

test('plain columns are taken as they are; the others are escaped', () => {
  const rows = [['7', 'a\tb', Buffer.from('{"x":1}')]]
  assert.equal(encodeRows(rows, [true, false, false]).toString(), '7\ta\\tb\t{"x":1}\n')
  assert.equal(encodeRows([[Buffer.from('x'), Buffer.from('y\\z')]]).toString(), 'x\ty\\\\z\n')
})
