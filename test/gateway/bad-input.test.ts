/**
 * Bad input gets a clear 4xx, the server keeps serving, and nothing partial reaches Kafka: every case
 * below is refused as a whole, /healthz still answers after each, and the topic ends up holding only the
 * two marker events sent before and after the suite.
 */
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { test } from 'node:test'
import { basic, post, startGateway } from '../helpers/gateway.ts'
import { createTopic, readTopic, testKafka } from '../helpers/kafka.ts'

test('every kind of bad input: clear 4xx with a JSON path, server keeps serving, nothing partial ingested', async (t) => {
  const kafka = testKafka()
  const topic = await createTopic(t, 'badinput')
  const { url, gateway } = await startGateway(t, {
    kafka: { brokers: kafka.bootstrap },
    keys: [{ key: 'good-key-0001', secret: 'good-secret', name: 'good', topics: [topic] }],
    segment: { defaultTopic: topic },
    restTopics: [topic],
    limits: { maxBodyBytes: 64 * 1024, maxEventBytes: 4096, maxEvents: 50, maxDepth: 16 },
  })
  const auth = { 'content-type': 'application/json', authorization: basic('good-key-0001', 'good-secret') }
  const good = (n: string): Record<string, unknown> => ({
    type: 'track',
    userId: 'u',
    event: 'Marker',
    properties: { n },
  })
  assert.equal((await post(`${url}/v1/track`, JSON.stringify(good('first')), auth)).status, 200)

  const deep = `${'{"a":'.repeat(40)}1${'}'.repeat(40)}`
  const cases: {
    name: string
    path?: string
    body: string | Buffer
    headers?: Record<string, string>
    status: number
    code: string
    at?: string
  }[] = [
    { name: 'malformed JSON', body: '{"batch": [', status: 400, code: 'SPW_ERR_BAD_REQUEST' },
    {
      name: 'wrong content-type',
      body: '<xml/>',
      headers: { ...auth, 'content-type': 'application/xml' },
      status: 415,
      code: 'SPW_ERR_UNSUPPORTED_MEDIA_TYPE',
    },
    {
      name: 'body over the limit',
      body: JSON.stringify({ batch: [good('x')], pad: 'p'.repeat(70_000) }),
      status: 413,
      code: 'SPW_ERR_PAYLOAD_TOO_LARGE',
    },
    {
      name: 'one event over the limit',
      body: JSON.stringify({ batch: [good('ok'), { ...good('big'), properties: { p: 'x'.repeat(5000) } }] }),
      status: 413,
      code: 'SPW_ERR_PAYLOAD_TOO_LARGE',
      at: '$.batch[1]',
    },
    {
      name: 'too many events',
      body: JSON.stringify({ batch: Array.from({ length: 51 }, () => good('many')) }),
      status: 413,
      code: 'SPW_ERR_PAYLOAD_TOO_LARGE',
      at: '$.batch',
    },
    {
      name: 'deep nesting',
      body: `{"batch":[{"type":"track","userId":"u","event":"E","properties":${deep}}]}`,
      status: 400,
      code: 'SPW_ERR_BAD_REQUEST',
    },
    {
      name: 'invalid UTF-8',
      body: Buffer.concat([
        Buffer.from('{"batch":[{"type":"track","userId":"'),
        Buffer.from([0xc3, 0x28]),
        Buffer.from('","event":"E"}]}'),
      ]),
      status: 400,
      code: 'SPW_ERR_BAD_REQUEST',
    },
    {
      name: 'missing event name',
      body: JSON.stringify({ batch: [good('ok'), { type: 'track', userId: 'u' }] }),
      status: 400,
      code: 'SPW_ERR_BAD_REQUEST',
      at: '$.batch[1].event',
    },
    {
      name: 'missing user',
      body: JSON.stringify({ batch: [{ type: 'identify', traits: {} }] }),
      status: 400,
      code: 'SPW_ERR_BAD_REQUEST',
      at: '$.batch[0].userId',
    },
    {
      name: 'unknown message type',
      body: JSON.stringify({ batch: [good('ok'), { type: 'purchase', userId: 'u' }] }),
      status: 400,
      code: 'SPW_ERR_BAD_REQUEST',
      at: '$.batch[1].type',
    },
    {
      name: 'batch is not an array',
      body: JSON.stringify({ batch: {} }),
      status: 400,
      code: 'SPW_ERR_BAD_REQUEST',
      at: '$.batch',
    },
    { name: 'empty body', body: '', status: 400, code: 'SPW_ERR_BAD_REQUEST' },
    {
      name: 'bad timestamp',
      body: JSON.stringify({ batch: [{ ...good('t'), timestamp: 'yesterday' }] }),
      status: 400,
      code: 'SPW_ERR_BAD_REQUEST',
      at: '$.batch[0].timestamp',
    },
    {
      name: 'wrong auth',
      body: JSON.stringify({ batch: [good('x')] }),
      headers: { 'content-type': 'application/json', authorization: basic('wrong-key-000') },
      status: 401,
      code: 'SPW_ERR_UNAUTHORIZED',
    },
    {
      name: 'unknown topic (REST)',
      path: '/v3/clusters/spillway/topics/not-configured/records',
      body: '{"value":{"type":"JSON","data":1}}',
      status: 404,
      code: 'SPW_ERR_UNKNOWN_TOPIC',
    },
    { name: 'unknown route', path: '/v1/nothing', body: '{}', status: 404, code: 'SPW_ERR_NOT_FOUND' },
  ]
  for (const c of cases) {
    const r = await post(`${url}${c.path ?? '/v1/batch'}`, c.body, c.headers ?? auth)
    assert.equal(r.status, c.status, `${c.name}: HTTP ${r.status} ${r.text.slice(0, 200)}`)
    assert.equal(r.json.code, c.code, `${c.name}: code`)
    assert.ok(String(r.json.message ?? '').length > 0, `${c.name}: a message`)
    if (c.at) assert.equal(r.json.path, c.at, `${c.name}: points at the offending field`)
    const health = await fetch(`${url}/healthz`)
    assert.equal(health.status, 200, `${c.name}: the server keeps serving`)
  }

  // slowloris: a client that never finishes its headers is cut off
  const socket = connect(Number(new URL(url).port), '127.0.0.1')
  socket.on('error', () => undefined) // the server cutting us off mid-write is the point
  await new Promise((r) => socket.once('connect', r))
  socket.write('POST /v1/batch HTTP/1.1\r\nHost: x\r\n')
  const drip = setInterval(() => socket.write('X-Slow: 1\r\n'), 500)
  const started = performance.now()
  await new Promise((r) => socket.once('close', r))
  clearInterval(drip)
  assert.ok(performance.now() - started < 15_000, 'a slow client is disconnected by the header timeout')

  assert.equal((await post(`${url}/v1/track`, JSON.stringify(good('last')), auth)).status, 200)
  assert.ok(await gateway.producer.flush(20_000))
  const messages = await readTopic(topic, { idleMs: 1500 })
  assert.deepEqual(
    messages.map((m) => (JSON.parse(m.value.toString()) as { properties: { n: string } }).properties.n),
    ['first', 'last'],
    'no refused request ingested anything',
  )
})
