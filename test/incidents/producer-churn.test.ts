/**
 * Incident 5, producer churn: an application creates a producer per record. spillway keeps exactly one
 * long-lived Kafka producer per process per cluster, so DescribeProducers (KIP-664) on the topic shows a
 * single producer id after 1,000 create/send/close cycles, and the churn is reported.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { Producer } from '@platformatic/kafka'
import { createProducer } from '../../src/producer/producer.ts'
import { PlatformaticCluster } from '../../src/transport/platformatic.ts'
import { closeAllTransports, transportStats } from '../../src/transport/registry.ts'
import { copiesById, createTopic, readTopic, testKafka } from '../helpers/kafka.ts'

const CYCLES = process.env.SPILLWAY_SOAK === '1' ? 10_000 : 1000

test(`${CYCLES} create/send/close cycles use one Kafka producer id, and the churn is reported`, async (t) => {
  const kafka = testKafka()
  const topic = await createTopic(t, 'churn', { partitions: 3 })
  const dir = await mkdtemp(join(tmpdir(), 'spillway-churn-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  t.after(() => closeAllTransports())
  const warnings: string[] = []
  const onWarning = (w: Error & { code?: string }): void => {
    if (w.code === 'SPILLWAY_PRODUCER_CHURN') warnings.push(w.message)
  }
  process.on('warning', onWarning)
  t.after(() => process.off('warning', onWarning))

  const createdBefore = transportStats().created
  const ids: string[] = []
  let inits = 0
  for (let i = 0; i < CYCLES; i++) {
    const producer = await createProducer({ brokers: kafka.bootstrap, log: { dir }, batch: { lingerMs: 0 } })
    const [result] = await producer.send(topic, [{ key: `k${i}`, value: String(i) }])
    assert.equal(result?.status, 'accepted')
    ids.push(result?.id as string)
    await producer.close(5000)
    inits = Math.max(inits, producer.stats().kafkaProducerInits)
  }
  assert.equal(transportStats().created - createdBefore, 1, 'one shared transport for every cycle')
  assert.equal(inits, 1, 'one Kafka producer initialisation')
  assert.ok(warnings.length >= 1, 'creating producers in a loop raises a churn warning')

  const messages = await readTopic(topic, { expected: CYCLES, idleMs: 1500 })
  const copies = copiesById(messages)
  assert.equal(copies.size, CYCLES, 'every cycle delivered its event')
  assert.ok(ids.every((id) => copies.get(id) === 1))

  const inspector = new PlatformaticCluster({ brokers: kafka.bootstrap, clientId: 'spillway-inspector' })
  t.after(() => inspector.close())
  const described = await inspector.admin.describeProducers([topic], 10_000)
  assert.equal(described.length, 3, 'every partition described')
  const producerIds = new Set(described.flatMap((d) => d.producerIds.map(String)))
  t.diagnostic(`active producer ids on ${topic}: ${[...producerIds].join(', ')}`)
  assert.equal(producerIds.size, 1, 'DescribeProducers shows a single producer id for this process')

  // Control: the check can fail. Three raw idempotent producers, as the incident's application made them.
  const control = await createTopic(t, 'churn-control')
  for (let i = 0; i < 3; i++) {
    const raw = new Producer({ clientId: `raw-${i}`, bootstrapBrokers: kafka.bootstrap, idempotent: true })
    await raw.send({ messages: [{ topic: control, value: Buffer.from('x') }] })
    await raw.close()
  }
  const controlIds = new Set(
    (await inspector.admin.describeProducers([control], 10_000)).flatMap((d) => d.producerIds.map(String)),
  )
  assert.equal(controlIds.size, 3, 'a producer per record shows up as one producer id each')
})
