/** Where the shared Kafka client runs. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { clusterKey, resolveThread } from '../../src/transport/registry.ts'

test("'auto' runs the Kafka client in a worker thread only with 4 cores or more; an explicit choice wins", () => {
  assert.equal(resolveThread('auto', 2), 'main')
  assert.equal(resolveThread('auto', 3), 'main')
  assert.equal(resolveThread('auto', 4), 'worker')
  assert.equal(resolveThread(undefined, 16), 'worker')
  assert.equal(resolveThread('main', 16), 'main')
  assert.equal(resolveThread('worker', 1), 'worker')
})

test('producers on different threads never share a transport; the same effective thread does', () => {
  const base = { brokers: ['127.0.0.1:9092'], clientId: 'c' }
  assert.notEqual(clusterKey({ ...base, thread: 'main' }), clusterKey({ ...base, thread: 'worker' }))
  assert.equal(
    clusterKey({ ...base, thread: resolveThread('auto') }),
    clusterKey({ ...base, thread: 'auto' }),
  )
})
