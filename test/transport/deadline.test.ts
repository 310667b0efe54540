import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { withDeadline } from '../../src/transport/deadline.ts'

test('a call that never settles is cut at its deadline with SPW_ERR_TIMEOUT', async () => {
  const started = performance.now()
  await assert.rejects(withDeadline(new Promise(() => {}), 50, 'send'), {
    code: 'SPW_ERR_TIMEOUT',
    retriable: true,
  })
  const elapsed = performance.now() - started
  assert.ok(elapsed >= 45 && elapsed < 500, `cut after ${elapsed} ms`)
})

test('property: no call waits past its deadline, and results within it pass through', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 5, max: 40 }),
      fc.integer({ min: 0, max: 80 }),
      async (deadline, takes) => {
        const work = new Promise<string>((resolve) => setTimeout(() => resolve('ok'), takes))
        const started = performance.now()
        try {
          assert.equal(await withDeadline(work, deadline, 'call'), 'ok')
        } catch (error) {
          assert.equal((error as { code: string }).code, 'SPW_ERR_TIMEOUT')
        }
        assert.ok(performance.now() - started < deadline + 30, 'bounded by the deadline (plus timer slack)')
      },
    ),
    { numRuns: 60 },
  )
})
