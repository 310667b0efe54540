import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ProtocolError } from '@platformatic/kafka'
import { SpillwayError } from '../../src/errors.ts'
import { classify, clientErrorFacts, codeOf, toSpillwayError } from '../../src/transport/classify.ts'

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

test("the client's own flags decide: stale metadata, rejoin, fenced producer, refused login", async () => {
  const { AuthenticationError, NetworkError, UserError } = await import('@platformatic/kafka')
  const stale = clientErrorFacts(wrapped('NOT_LEADER_OR_FOLLOWER'))
  assert.deepEqual([stale.staleMetadata, stale.needsRejoin], [true, false])
  assert.equal(clientErrorFacts(wrapped('ILLEGAL_GENERATION')).needsRejoin, true)
  assert.equal(classify(wrapped('INVALID_PRODUCER_EPOCH')).errorClass, 'fatal', 'producerFenced')
  const login = new NetworkError('Connection to 127.0.0.1:1 failed.', {
    cause: new AuthenticationError('SASL authentication failed.'),
  })
  assert.equal(clientErrorFacts(login).authentication, true)
  assert.deepEqual(classify(login), {
    errorClass: 'retriable',
    reason: 'SASL_AUTHENTICATION_FAILED',
    ambiguous: false,
  })
  const unknown = new UserError('Unknown topic orders.')
  assert.equal(codeOf(clientErrorFacts(unknown)), 'SPW_ERR_TOPIC_MISSING')
})

test('what leaves transport/ is a SpillwayError with a stable code', () => {
  const auth = toSpillwayError(
    Object.assign(new Error('SASL authentication failed.'), { code: 'PLT_KFK_AUTHENTICATION' }),
    'metadata',
  )
  assert.equal(auth.code, 'SPW_ERR_KAFKA_AUTH')
  assert.match(auth.message, /^metadata failed: the brokers refused the SASL credentials/)
  assert.equal(toSpillwayError(wrapped('TOPIC_AUTHORIZATION_FAILED'), 'x').code, 'SPW_ERR_KAFKA_DENIED')
  assert.equal(toSpillwayError(wrapped('GROUP_AUTHORIZATION_FAILED'), 'x').code, 'SPW_ERR_KAFKA_DENIED')
  assert.equal(toSpillwayError(wrapped('UNKNOWN_TOPIC_OR_PARTITION'), 'x').code, 'SPW_ERR_TOPIC_MISSING')
  assert.equal(toSpillwayError(new Error('socket hang up'), 'x').code, 'SPW_ERR_UNAVAILABLE')
  const already = new SpillwayError('SPW_ERR_TIMEOUT', 'late')
  assert.equal(toSpillwayError(already, 'x'), already, 'a SpillwayError passes through unchanged')
})
