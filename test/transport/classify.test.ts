import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ProtocolError } from '@platformatic/kafka'
import { classify } from '../../src/transport/classify.ts'

function wrapped(name: string): Error {
  // the client's shape: an AggregateError holding a ResponseError holding the ProtocolError
  const inner = new ProtocolError(name)
  return Object.assign(
    new AggregateError(
      [Object.assign(new AggregateError([inner], 'response'), { code: 'PLT_KFK_RESPONSE' })],
      'Producing messages failed.',
    ),
    {
      code: 'PLT_KFK_MULTIPLE',
    },
  )
}

test('protocol errors are classified from anywhere in the error tree', () => {
  assert.deepEqual(classify(wrapped('MESSAGE_TOO_LARGE')), {
    errorClass: 'poison',
    reason: 'MESSAGE_TOO_LARGE',
    ambiguous: false,
  })
  assert.equal(classify(wrapped('TOPIC_AUTHORIZATION_FAILED')).errorClass, 'poison')
  assert.equal(classify(wrapped('PRODUCER_FENCED')).errorClass, 'fatal')
  assert.equal(classify(wrapped('OUT_OF_ORDER_SEQUENCE_NUMBER')).errorClass, 'fatal')
  const notEnough = classify(wrapped('NOT_ENOUGH_REPLICAS'))
  assert.equal(notEnough.errorClass, 'retriable')
  assert.equal(notEnough.ambiguous, false, 'the broker answered: nothing was written')
})

test('network errors and timeouts are retriable and ambiguous', () => {
  const network = Object.assign(new Error('socket closed'), { code: 'PLT_KFK_NETWORK' })
  assert.deepEqual(classify(network), { errorClass: 'retriable', reason: 'socket closed', ambiguous: true })
  assert.equal(classify(new Error('anything else')).ambiguous, true)
})
