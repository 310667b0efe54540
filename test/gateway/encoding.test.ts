/**
 * Compressed bodies: RudderStack's Node SDK (gzip JSON sent as form-urlencoded) unchanged, every
 * encoding the gateway takes, a gzip bomb stopped at the body limit, and encodings it does not know.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import zlib from 'node:zlib'
import Analytics from '@rudderstack/rudder-sdk-node'
import { post, startGateway } from '../helpers/gateway.ts'
import { createTopic, readTopic, testKafka } from '../helpers/kafka.ts'

const EVENTS = 3000

test("RudderStack's Node SDK (gzip, form-urlencoded) sends 3,000 events; each arrives once with its properties", async (t) => {
  const kafka = testKafka()
  const topic = await createTopic(t, 'rudderstack', { partitions: 3 })
  const { url, gateway } = await startGateway(t, {
    kafka: { brokers: kafka.bootstrap },
    keys: [{ key: 'rudder-write-key', name: 'server', topics: [topic] }],
    segment: { defaultTopic: topic },
  })
  const errors: unknown[] = []
  const client = new Analytics('rudder-write-key', {
    dataPlaneUrl: url,
    flushAt: 100,
    flushInterval: 200,
    logLevel: 'error',
    errorHandler: (error: unknown) => errors.push(error),
  })
  for (let i = 0; i < EVENTS; i++) {
    client.track({ userId: `user-${i % 31}`, event: 'Order Completed', properties: { n: i, total: i * 1.5 } })
  }
  await client.flush()
  assert.deepEqual(errors, [], 'the SDK saw no errors')
  assert.ok(await gateway.producer.flush(60_000), 'the gateway delivered its backlog')
  const messages = await readTopic(topic, { expected: EVENTS, idleMs: 2000 })
  const seen = new Map<string, number>()
  for (const m of messages) {
    const body = JSON.parse(m.value.toString()) as {
      messageId: string
      properties: { n: number; total: number }
    }
    assert.equal(body.properties.total, body.properties.n * 1.5, 'properties intact')
    seen.set(body.messageId, (seen.get(body.messageId) ?? 0) + 1)
  }
  assert.equal(seen.size, EVENTS, 'every event arrived')
  assert.ok(
    [...seen.values()].every((c) => c === 1),
    'exactly once by messageId',
  )
})

test('gzip, deflate and br bodies are decoded; an unknown encoding is 415, a corrupt one 400', async (t) => {
  const { url, gateway } = await startGateway(t)
  const batch = JSON.stringify({ batch: [{ type: 'track', event: 'E', userId: 'u', messageId: 'm1' }] })
  const encoders: Record<string, (b: Buffer) => Buffer> = {
    gzip: zlib.gzipSync,
    deflate: zlib.deflateSync,
    br: zlib.brotliCompressSync,
  }
  for (const [encoding, encode] of Object.entries(encoders)) {
    const answer = await post(`${url}/v1/batch`, encode(Buffer.from(batch)), {
      'content-type': 'application/json',
      'content-encoding': encoding,
    })
    assert.equal(answer.status, 200, `${encoding}: ${answer.text}`)
  }
  assert.equal(gateway.producer.stats().accepted, 3)
  const unknown = await post(`${url}/v1/batch`, Buffer.from(batch), {
    'content-type': 'application/json',
    'content-encoding': 'compress',
  })
  assert.equal(unknown.status, 415)
  assert.equal(unknown.json.code, 'SPW_ERR_UNSUPPORTED_MEDIA_TYPE')
  const corrupt = await post(`${url}/v1/batch`, Buffer.from('not gzip at all'), {
    'content-type': 'application/json',
    'content-encoding': 'gzip',
  })
  assert.equal(corrupt.status, 400, corrupt.text)
  assert.equal(corrupt.json.code, 'SPW_ERR_BAD_REQUEST')
  assert.equal(gateway.producer.stats().accepted, 3, 'nothing of a refused request was stored')
})

test('a gzip bomb gets 413 once its inflated size passes the body limit; the gateway keeps serving', async (t) => {
  const { url, gateway } = await startGateway(t, { limits: { maxBodyBytes: 100_000 } })
  // 64 MB of one byte compresses to about 64 KB: under the limit on the wire, 640× over it inflated
  const bomb = zlib.gzipSync(Buffer.alloc(64 * 1024 * 1024, 0x20))
  assert.ok(bomb.length < 100_000)
  const rssBefore = process.memoryUsage().rss
  const answer = await post(`${url}/v1/batch`, bomb, {
    'content-type': 'application/json',
    'content-encoding': 'gzip',
  })
  assert.equal(answer.status, 413, answer.text)
  assert.equal(answer.json.code, 'SPW_ERR_PAYLOAD_TOO_LARGE')
  const grew = (process.memoryUsage().rss - rssBefore) / 1024 / 1024
  t.diagnostic(`RSS grew ${grew.toFixed(1)} MB while refusing the bomb`)
  assert.ok(grew < 48, 'the bomb was not inflated in memory')
  const after = await post(
    `${url}/v1/track`,
    zlib.gzipSync(Buffer.from(JSON.stringify({ event: 'E', userId: 'u' }))),
    { 'content-type': 'application/json', 'content-encoding': 'gzip' },
  )
  assert.equal(after.status, 200)
  assert.equal(gateway.producer.stats().accepted, 1)
})

test('form-urlencoded JSON is taken on the Segment routes only', async (t) => {
  const { url } = await startGateway(t)
  const form = { 'content-type': 'application/x-www-form-urlencoded' }
  const segment = await post(`${url}/v1/track`, JSON.stringify({ event: 'E', userId: 'u' }), form)
  assert.equal(segment.status, 200, segment.text)
  const rest = await post(
    `${url}/v3/clusters/spillway/topics/orders/records`,
    JSON.stringify({ value: { type: 'JSON', data: 1 } }),
    form,
  )
  assert.equal(rest.status, 415, rest.text)
})
