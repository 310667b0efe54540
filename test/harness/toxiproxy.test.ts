/** Toxiproxy sits in front of the broker's PROXIED listener: a cut breaks sends, healing restores them. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ProduceAcks, Producer } from '@platformatic/kafka'
import { createTopic, readTopic, testKafka } from '../helpers/kafka.ts'

test('a cut proxy makes sends fail, and healing it lets them succeed again', async (t) => {
  const kafka = testKafka()
  const topic = await createTopic(t, 'toxic')
  t.after(() => kafka.toxiproxy.reset())
  const producer = new Producer({
    clientId: 'spillway-toxic',
    bootstrapBrokers: kafka.proxiedBootstrap,
    idempotent: true,
    acks: ProduceAcks.ALL,
    // idempotence turns retries <= 1 into "retry forever"; cap them so a cut surfaces as an error
    retries: 2,
    retryDelay: 200,
    timeout: 2000,
  })
  t.after(() => producer.close(true))

  await producer.send({ messages: [{ topic, value: Buffer.from('before') }] })

  await kafka.toxiproxy.cut(kafka.proxyName)
  await assert.rejects(
    producer.send({ messages: [{ topic, value: Buffer.from('during') }] }),
    'a send through a cut proxy fails',
  )

  await kafka.toxiproxy.heal(kafka.proxyName)
  let delivered = false
  for (let attempt = 0; attempt < 20 && !delivered; attempt++) {
    try {
      await producer.send({ messages: [{ topic, value: Buffer.from('after') }] })
      delivered = true
    } catch {
      await new Promise((r) => setTimeout(r, 250))
    }
  }
  assert.ok(delivered, 'sends succeed again once the cut is healed')

  const values = (await readTopic(topic, { idleMs: 1500 })).map((m) => m.value.toString())
  assert.ok(values.includes('before') && values.includes('after'))
})

test('latency toxic slows every request through the proxy', async (t) => {
  const kafka = testKafka()
  const topic = await createTopic(t, 'latency')
  t.after(() => kafka.toxiproxy.reset())
  const producer = new Producer({ clientId: 'spillway-latency', bootstrapBrokers: kafka.proxiedBootstrap })
  t.after(() => producer.close(true))
  await producer.send({ messages: [{ topic, value: Buffer.from('warm') }] })

  await kafka.toxiproxy.addToxic(kafka.proxyName, {
    name: 'slow',
    type: 'latency',
    attributes: { latency: 400 },
  })
  const started = performance.now()
  await producer.send({ messages: [{ topic, value: Buffer.from('slow') }] })
  const elapsed = performance.now() - started
  assert.ok(elapsed >= 350, `a send took ${elapsed.toFixed(0)} ms with 400 ms of injected latency`)

  await kafka.toxiproxy.removeToxic(kafka.proxyName, 'slow')
  const fastStart = performance.now()
  await producer.send({ messages: [{ topic, value: Buffer.from('fast') }] })
  assert.ok(performance.now() - fastStart < 350, 'removing the toxic removes the delay')
})
