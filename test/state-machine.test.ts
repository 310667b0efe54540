/** The transition table, its events, and the guard that refuses an operation in the wrong state. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { isSpillwayError } from '../src/errors.ts'
import { StateMachine } from '../src/state-machine.ts'

type S = 'running' | 'closing' | 'closed'
const TABLE: Record<S, readonly S[]> = { running: ['closing'], closing: ['closed'], closed: [] }

test('legal moves emit a transition; an illegal one throws SPW_ERR_ILLEGAL_TRANSITION and changes nothing', () => {
  let clock = 0
  const machine = new StateMachine<S>('thing', 'running', TABLE, () => clock)
  const seen: unknown[] = []
  machine.on('transition', (t) => seen.push(t))
  clock = 5
  machine.transitionTo('closing', 'asked')
  assert.deepEqual(seen, [{ from: 'running', to: 'closing', reason: 'asked', at: 5 }])
  assert.throws(
    () => machine.transitionTo('running', 'again'),
    (e: unknown) => isSpillwayError(e, 'SPW_ERR_ILLEGAL_TRANSITION'),
  )
  assert.equal(machine.state, 'closing')
})

test('refusal(): undefined in an allowed state, a coded error naming the state otherwise', () => {
  const machine = new StateMachine<S>('producer', 'running', TABLE)
  assert.equal(machine.refusal('send', ['running'], 'SPW_ERR_CLOSED'), undefined)
  machine.transitionTo('closing', 'close()')
  const refused = machine.refusal('send', ['running'], 'SPW_ERR_CLOSED')
  assert.ok(isSpillwayError(refused, 'SPW_ERR_CLOSED'))
  assert.equal(refused.message, 'producer: send is not allowed while closing')
  assert.deepEqual(refused.details, { machine: 'producer', state: 'closing', operation: 'send' })
})
