/** docs/errors.md lists exactly the codes in src/errors.ts, with the same status and retriable flag. */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { test } from 'node:test'
import { errorCodes, isSpillwayError, SpillwayError } from '../src/errors.ts'

test('docs/errors.md and src/errors.ts list the same codes, statuses and retriable flags', () => {
  const doc = readFileSync(new URL('../docs/errors.md', import.meta.url), 'utf8')
  const rows = [...doc.matchAll(/^\| `(SPW_ERR_[A-Z_]+)`\s*\| (\d{3})\s*\| (yes|no)\s*\|/gm)].map((m) => [
    m[1],
    Number(m[2]),
    m[3] === 'yes',
  ])
  const code = Object.entries(errorCodes).map(([k, v]) => [k, v.status, v.retriable])
  assert.deepEqual(rows.sort(), code.sort())
})

test('SpillwayError carries code, status, retriable and details, and is recognised across copies', () => {
  const e = new SpillwayError('SPW_ERR_BACKPRESSURE', 'full', { details: { maxBytes: 1 } })
  assert.equal(e.status, 503)
  assert.equal(e.retriable, true)
  assert.deepEqual(e.toJSON(), {
    code: 'SPW_ERR_BACKPRESSURE',
    message: 'full',
    retriable: true,
    maxBytes: 1,
  })
  // a plain object with the global brand, as another copy of the module would create
  const foreign = Object.create(Error.prototype) as Record<symbol, unknown>
  Object.defineProperty(foreign, Symbol.for('spillway.error'), { value: true })
  assert.ok(foreign instanceof SpillwayError)
  assert.ok(isSpillwayError(e, 'SPW_ERR_BACKPRESSURE'))
  assert.ok(!isSpillwayError(new Error('x')))
})
