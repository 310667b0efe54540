/** Producer behaviour that needs no running broker: admission, and closing while Kafka is unreachable. */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { test } from 'node:test'
import { createProducer } from '../../src/producer/producer.ts'
import { Registry } from '../../src/telemetry/metrics.ts'
import { tempDir } from '../helpers/fs.ts'

test("topics '.' and '..' are refused at admission (Kafka refuses them), not dead-lettered later", async (t) => {
  const dir = await tempDir(t)
  const producer = await createProducer({ log: { dir: join(dir, 'log') } })
  t.after(() => producer.close())
  const results = [
    ...(await producer.send('.', [{ value: 'a' }])),
    ...(await producer.sendTo([{ topic: '..', event: { value: 'b' } }])),
  ]
  assert.equal(results.length, 2)
  for (const r of results) {
    assert.equal(r.status, 'refused')
    assert.equal(r.status === 'refused' && r.error.code, 'SPW_ERR_BAD_REQUEST')
  }
  assert.equal(producer.stats().accepted, 0)
})

test("ack 'kafka': close() refuses, as retriable, a send Kafka never acknowledged", async () => {
  const producer = await createProducer({
    ack: 'kafka',
    brokers: ['127.0.0.1:1'],
    deliveryTimeoutMs: 60_000,
    transportLingerMs: 0,
  })
  const pending = producer.send('orders', [{ value: 'never delivered' }])
  await new Promise((resolve) => setTimeout(resolve, 300))
  await producer.close(200)
  const [result] = await pending
  assert.equal(result?.status, 'refused', JSON.stringify(result))
  assert.equal(result?.status === 'refused' && result.error.code, 'SPW_ERR_CLOSED')
  assert.equal(result?.status === 'refused' && result.error.retriable, true)
})

test('two producers on one registry report side by side under their own labels', async (t) => {
  const dir = await tempDir(t)
  const registry = new Registry()
  const a = await createProducer({ log: { dir: join(dir, 'a') }, registry, metricLabels: { producer: 'a' } })
  t.after(() => a.close())
  const b = await createProducer({ log: { dir: join(dir, 'b') }, registry, metricLabels: { producer: 'b' } })
  t.after(() => b.close())
  await a.send('orders', [{ value: 1 }, { value: 2 }])
  await b.send('orders', [{ value: 3 }])
  const text = await registry.metrics()
  assert.match(text, /spillway_events_accepted_total\{producer="a"\} 2/)
  assert.match(text, /spillway_events_accepted_total\{producer="b"\} 1/)
  // the same labels again would hide one producer's figures: refused, and its log is given back
  await assert.rejects(
    createProducer({ log: { dir: join(dir, 'c') }, registry, metricLabels: { producer: 'a' } }),
    /metricLabels/,
  )
  const c = await createProducer({ log: { dir: join(dir, 'c') } })
  await c.close()
})
