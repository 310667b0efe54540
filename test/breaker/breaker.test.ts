import assert from 'node:assert/strict'
import { test } from 'node:test'
import fc from 'fast-check'
import { Breaker } from '../../src/breaker/breaker.ts'

test('closed → open → half-open (one probe) → closed, with exponential jittered cooldowns', () => {
  let now = 0
  const breaker = new Breaker(
    { cooldownMs: 100, maxCooldownMs: 1000, jitter: 0 },
    () => now,
    () => 0.5,
  )
  const transitions: string[] = []
  breaker.machine.on('transition', (t) => transitions.push(`${t.from}>${t.to}`))
  assert.deepEqual(breaker.acquire(), { kind: 'send' })
  breaker.failure('boom')
  assert.equal(breaker.state, 'open')
  assert.equal(breaker.acquire().kind, 'wait')
  now = 100
  assert.deepEqual(breaker.acquire(), { kind: 'probe' })
  assert.equal(breaker.acquire().kind, 'wait', 'exactly one probe in half-open')
  breaker.failure('probe failed')
  now = 150
  assert.equal(breaker.acquire().kind, 'wait', 'second cooldown is longer (200 ms)')
  now = 300
  assert.deepEqual(breaker.acquire(), { kind: 'probe' })
  breaker.success()
  assert.equal(breaker.state, 'closed')
  assert.deepEqual(transitions, [
    'closed>open',
    'open>half-open',
    'half-open>open',
    'open>half-open',
    'half-open>closed',
  ])
})

test('illegal transitions throw a coded error', () => {
  const breaker = new Breaker()
  assert.throws(() => breaker.machine.transitionTo('half-open', 'test'), {
    code: 'SPW_ERR_ILLEGAL_TRANSITION',
  })
})

test('model: no sequence leaves it sending after a failure, and no wait exceeds the cap', () => {
  type Cmd = { kind: 'tick'; ms: number } | { kind: 'success' } | { kind: 'failure' } | { kind: 'acquire' }
  const cmd = fc.oneof(
    fc.record({ kind: fc.constant('tick' as const), ms: fc.integer({ min: 0, max: 5000 }) }),
    fc.constant({ kind: 'success' as const }),
    fc.constant({ kind: 'failure' as const }),
    fc.constant({ kind: 'acquire' as const }),
  )
  fc.assert(
    fc.property(
      fc.array(cmd, { maxLength: 200 }),
      fc.double({ min: 0, max: 1, noNaN: true }),
      (cmds: Cmd[], r) => {
        let now = 0
        const breaker = new Breaker(
          { cooldownMs: 50, maxCooldownMs: 2000, jitter: 0.5 },
          () => now,
          () => r,
        )
        let failedSinceSuccess = false
        let probeOut = false
        for (const c of cmds) {
          if (c.kind === 'tick') now += c.ms
          else if (c.kind === 'failure') {
            breaker.failure('f')
            failedSinceSuccess = true
            probeOut = false
          } else if (c.kind === 'success') {
            breaker.success()
            if (probeOut || breaker.state === 'closed') failedSinceSuccess = breaker.state !== 'closed'
            probeOut = false
          } else {
            const permit = breaker.acquire()
            if (failedSinceSuccess) assert.notEqual(permit.kind, 'send', 'never a plain send after a failure')
            if (permit.kind === 'probe') {
              assert.ok(!probeOut, 'one probe at a time')
              probeOut = true
            }
            if (permit.kind === 'wait') assert.ok(permit.retryInMs <= 2000, 'waits are capped')
          }
          if (breaker.lastOutcome === 'failure') assert.notEqual(breaker.state, 'closed')
        }
      },
    ),
    { numRuns: 2000 },
  )
})
