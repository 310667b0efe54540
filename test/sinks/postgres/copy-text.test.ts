/** COPY text lines: tabs between columns, \N for null, escapes for the characters COPY reads specially. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { copyLine, copyValue, quoteName } from '../../../src/sinks/postgres/copy-text.ts'

test('values are escaped and null is \\N', () => {
  assert.equal(copyValue(null), '\\N')
  assert.equal(copyValue('\\N'), '\\\\N', 'a literal \\N is not null')
  assert.equal(copyValue('a\tb\nc\rd\\e'), 'a\\tb\\nc\\rd\\\\e')
  assert.equal(copyLine(['1', null, 'x y']), '1\t\\N\tx y\n')
})

test('names are quoted part by part', () => {
  assert.equal(quoteName('events'), '"events"')
  assert.equal(quoteName('app.events'), '"app"."events"')
})
