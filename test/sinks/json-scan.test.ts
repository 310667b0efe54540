/** The JSON scan says yes exactly where JSON.parse does, on chosen cases and on many generated ones. */
import assert from 'node:assert/strict'
import { isUtf8 } from 'node:buffer'
import { test } from 'node:test'
import { JSON_NULL, JSON_PLAIN, JSON_SPECIAL, NOT_JSON, scanJson } from '../../src/sinks/json-scan.ts'

/** What the scan should answer, from JSON.parse and the bytes. */
function expected(bytes: Buffer): number {
  let parsed: unknown
  try {
    parsed = JSON.parse(bytes.toString('utf8'))
  } catch {
    return NOT_JSON
  }
  if (parsed === null) return JSON_NULL
  return [0x5c, 0x09, 0x0a, 0x0d].some((c) => bytes.includes(c)) ? JSON_SPECIAL : JSON_PLAIN
}

test('chosen texts: values, nesting, numbers, escapes, whitespace and what JSON.parse refuses', () => {
  const cases: [string, number][] = [
    ['{"n":1,"kind":"page_view","url":"/p/1"}', JSON_PLAIN],
    ['null', JSON_NULL],
    [' null\n', JSON_NULL],
    ['[null]', JSON_PLAIN],
    ['{"a":null}', JSON_PLAIN],
    ['"text"', JSON_PLAIN],
    ['0', JSON_PLAIN],
    ['-0.5e+10', JSON_PLAIN],
    ['1E5', JSON_PLAIN],
    ['true', JSON_PLAIN],
    ['[]', JSON_PLAIN],
    ['{}', JSON_PLAIN],
    ['[[[], {}], {"a": [1, {"b": false}]}]', JSON_PLAIN],
    ['{"name":"Zoë ✓ 𝄞"}', JSON_PLAIN],
    ['{"a":"quote \\" and \\\\ and \\u00e9 and \\ud800"}', JSON_SPECIAL],
    ['{\n\t"a": 1\r\n}', JSON_SPECIAL],
    ['', NOT_JSON],
    ['   ', NOT_JSON],
    ['not json', NOT_JSON],
    ['{"a":1', NOT_JSON],
    ['{"a":1}}', NOT_JSON],
    ['{"a":1,}', NOT_JSON],
    ['[1,]', NOT_JSON],
    ['[1 2]', NOT_JSON],
    ['{"a" 1}', NOT_JSON],
    ['{a:1}', NOT_JSON],
    ["{'a':1}", NOT_JSON],
    ['01', NOT_JSON],
    ['1.', NOT_JSON],
    ['.5', NOT_JSON],
    ['1e', NOT_JSON],
    ['+1', NOT_JSON],
    ['-', NOT_JSON],
    ['nul', NOT_JSON],
    ['nulls', NOT_JSON],
    ['truefalse', NOT_JSON],
    ['"a\tb"', NOT_JSON],
    ['"a\\x"', NOT_JSON],
    ['"\\u12"', NOT_JSON],
    ['"open', NOT_JSON],
    ['[}', NOT_JSON],
    ['{]', NOT_JSON],
    ['\u00a0{}', NOT_JSON],
    ['\ufeff{}', NOT_JSON],
    ['{} {}', NOT_JSON],
  ]
  for (const [text, answer] of cases) {
    const bytes = Buffer.from(text)
    assert.equal(expected(bytes), answer, `the case itself: ${JSON.stringify(text)}`)
    assert.equal(scanJson(bytes), answer, JSON.stringify(text))
  }
})

test('nesting deeper than the scan first makes room for', () => {
  const deep = `${'['.repeat(5000)}1${']'.repeat(5000)}`
  assert.equal(scanJson(Buffer.from(deep)), JSON_PLAIN)
  assert.equal(scanJson(Buffer.from(deep.slice(0, -1))), NOT_JSON)
})

/** A small deterministic generator (mulberry32). */
function random(seed: number): () => number {
  let a = seed
  return () => {
    a = (a + 0x6d2b79f5) | 0
    let t = Math.imul(a ^ (a >>> 15), 1 | a)
    t = (t + Math.imul(t ^ (t >>> 7), 61 | t)) ^ t
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296
  }
}

test('20,000 generated texts and their mutations: the scan agrees with JSON.parse on every one', () => {
  const next = random(20261207)
  const pick = <T>(items: readonly T[]): T => items[Math.floor(next() * items.length)] as T
  const pieces = [
    'a',
    'é',
    '✓',
    '𝄞',
    ' ',
    '\\"',
    '\\\\',
    '\\n',
    '\\u00e9',
    '\\ud800',
    '\t',
    '\u0001',
    '"',
    '/',
  ]
  const ws = (): string => (next() < 0.7 ? '' : pick([' ', '\n', '\t', '\r\n', '  ']))
  const value = (depth: number): string => {
    const kind = Math.floor(next() * (depth > 3 ? 5 : 7))
    if (kind === 0) return pick(['null', 'true', 'false'])
    if (kind === 1) return pick(['0', '-1', '12.5', '1e3', '-0.25E-2', '7'])
    if (kind <= 4) {
      let s = '"'
      for (let k = Math.floor(next() * 6); k > 0; k--) s += pick(pieces)
      return `${s}"`
    }
    const items = Array.from({ length: Math.floor(next() * 4) }, () =>
      kind === 5
        ? ws() + value(depth + 1) + ws()
        : `${ws()}"k${Math.floor(next() * 9)}"${ws()}:${ws()}${value(depth + 1)}`,
    )
    return kind === 5 ? `[${items.join(',')}]` : `{${items.join(',')}}`
  }
  const alphabet = [...'{}[]",:0-.e+ \\tnulfase\n'.split(''), '\u0000', 'é']
  const answers = new Map<number, number>()
  let checked = 0
  for (let k = 0; k < 20_000; k++) {
    let text = ws() + value(0) + ws()
    // most are then broken a little: a character added, dropped or replaced
    const edits = k % 4 === 0 ? 0 : 1 + Math.floor(next() * 2)
    for (let e = 0; e < edits; e++) {
      const at = Math.floor(next() * (text.length + 1))
      const op = next()
      if (op < 0.4) text = text.slice(0, at) + pick(alphabet) + text.slice(at)
      else if (op < 0.7) text = text.slice(0, at) + text.slice(at + 1)
      else text = text.slice(0, at) + pick(alphabet) + text.slice(at + 1)
    }
    const bytes = Buffer.from(text)
    if (!isUtf8(bytes)) continue
    const want = expected(bytes)
    assert.equal(scanJson(bytes), want, JSON.stringify(text))
    answers.set(want, (answers.get(want) ?? 0) + 1)
    checked++
  }
  // every answer was met many times, so the agreement covers each
  assert.ok(checked > 19_000, `${checked} texts checked`)
  for (const answer of [NOT_JSON, JSON_NULL, JSON_PLAIN, JSON_SPECIAL])
    assert.ok((answers.get(answer) ?? 0) > 100, `answer ${answer}: ${answers.get(answer) ?? 0} times`)
})
