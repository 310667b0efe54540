import assert from 'node:assert/strict'
import { test } from 'node:test'
import { isSpillwayError } from '../../src/errors.ts'
import { resolveProducerOptions } from '../../src/producer/options.ts'

const brokers = ['127.0.0.1:9092']

test('an idle dispatcher lingers 5 ms before sending, except for ack "kafka", whose callers wait for Kafka', () => {
  assert.equal(resolveProducerOptions({ log: { dir: '/tmp/x' } }).batch.lingerMs, 5)
  assert.equal(resolveProducerOptions({ brokers, ack: 'memory' }).batch.lingerMs, 5)
  assert.equal(resolveProducerOptions({ brokers, ack: 'kafka' }).batch.lingerMs, 0)
  assert.equal(resolveProducerOptions({ brokers, ack: 'kafka', batch: { lingerMs: 20 } }).batch.lingerMs, 20)
})

test('a bad batch option names its key', () => {
  assert.throws(
    () => resolveProducerOptions({ brokers, ack: 'kafka', batch: { lingerMs: -1 } }),
    (e: unknown) =>
      isSpillwayError(e) && e.code === 'SPW_ERR_INVALID_OPTION' && /batch\.lingerMs/.test(e.message),
  )
  assert.throws(
    () => resolveProducerOptions({ brokers, ack: 'kafka', batch: { linger: 1 } }),
    (e: unknown) =>
      isSpillwayError(e) && e.code === 'SPW_ERR_INVALID_OPTION' && /batch\.linger;/.test(e.message),
  )
})
