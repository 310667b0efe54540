/** The default transport: the Kafka client in a worker thread, against the real broker and Toxiproxy. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { threadId } from 'node:worker_threads'
import type { OutboundRecord } from '../../src/transport/transport.ts'
import { WorkerCluster } from '../../src/transport/worker.ts'
import { clusterContract } from '../helpers/cluster-contract.ts'
import { createTopic, testKafka } from '../helpers/kafka.ts'
import { idRecord } from '../helpers/outbound.ts'

clusterContract((brokers, clientId) => new WorkerCluster({ brokers, clientId }))

const record = (topic: string, value: string): OutboundRecord => idRecord(topic, value)

test('the Kafka producer lives on a thread of its own and reports its state back', async (t) => {
  const kafka = testKafka()
  const topic = await createTopic(t, 'worker-state')
  const transport = new WorkerCluster({ brokers: kafka.bootstrap, clientId: 'spillway-worker-state' })
  t.after(() => transport.close())
  assert.ok(transport.threadId !== undefined && transport.threadId !== threadId, 'a separate thread')
  assert.equal(transport.producer.producerId, undefined, 'no producer id before the first send')
  const [outcome] = await transport.producer.send([record(topic, 'a')], 10_000)
  assert.deepEqual(outcome, { kind: 'ok' })
  assert.equal(typeof transport.producer.producerId, 'bigint', 'the idempotent producer id crossed back')
  assert.equal(transport.producer.initializations, 1)
})

test('a request cut short by its deadline still reports its real outcome across the thread', async (t) => {
  const kafka = testKafka()
  t.after(() => kafka.toxiproxy.reset())
  const topic = await createTopic(t, 'worker-late')
  const transport = new WorkerCluster({ brokers: kafka.proxiedBootstrap, clientId: 'spillway-worker-late' })
  t.after(() => transport.close())
  assert.deepEqual(await transport.producer.send([record(topic, 'warm')], 10_000), [{ kind: 'ok' }])
  await kafka.toxiproxy.addToxic(kafka.proxyName, {
    name: 'slow',
    type: 'latency',
    stream: 'downstream',
    attributes: { latency: 1500, jitter: 0 },
  })
  const [cut] = await transport.producer.send([record(topic, 'slow')], 300)
  assert.ok(
    cut?.kind === 'error' && cut.ambiguous && cut.late,
    `cut short, outcome unknown: ${JSON.stringify(cut)}`,
  )
  await kafka.toxiproxy.removeToxic(kafka.proxyName, 'slow')
  assert.deepEqual(
    await cut.late,
    { kind: 'ok' },
    'the slow request did succeed, and the main thread hears it',
  )
})

test('a worker that dies ends its calls as ambiguous failures; the next call starts a new Kafka producer', async (t) => {
  const kafka = testKafka()
  t.after(() => kafka.toxiproxy.reset())
  const topic = await createTopic(t, 'worker-dies')
  const transport = new WorkerCluster({ brokers: kafka.proxiedBootstrap, clientId: 'spillway-worker-dies' })
  t.after(() => transport.close())
  assert.deepEqual(await transport.producer.send([record(topic, 'before')], 10_000), [{ kind: 'ok' }])
  const before = transport.threadId
  await kafka.toxiproxy.cut(kafka.proxyName)
  const stuck = transport.producer.send([record(topic, 'during')], 10_000)
  await new Promise((r) => setTimeout(r, 200))
  await transport._kill()
  await assert.rejects(stuck, { errorClass: 'retriable', ambiguous: true })
  await kafka.toxiproxy.heal(kafka.proxyName)
  assert.deepEqual(await transport.producer.send([record(topic, 'after')], 10_000), [{ kind: 'ok' }])
  assert.notEqual(transport.threadId, before, 'a new worker')
  assert.equal(transport.producer.initializations, 2, 'the second Kafka producer is counted')
})

test('after close, calls are refused at once and no thread is left', async (t) => {
  const kafka = testKafka()
  const topic = await createTopic(t, 'worker-close')
  const transport = new WorkerCluster({ brokers: kafka.bootstrap, clientId: 'spillway-worker-close' })
  assert.deepEqual(await transport.producer.send([record(topic, 'x')], 10_000), [{ kind: 'ok' }])
  await transport.close()
  assert.equal(transport.threadId, undefined)
  await assert.rejects(transport.producer.send([record(topic, 'y')], 10_000), { errorClass: 'retriable' })
})
