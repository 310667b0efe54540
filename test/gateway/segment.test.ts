/**
 * The official @segment/analytics-node SDK, pointed at the gateway, sends 10,000 events; every one
 * arrives in Kafka exactly once by messageId.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Analytics } from '@segment/analytics-node'
import { basic, post, startGateway } from '../helpers/gateway.ts'
import { createTopic, readTopic, testKafka } from '../helpers/kafka.ts'

const EVENTS = 10_000

test('the official Segment SDK sends 10,000 events through the gateway; each arrives once by messageId', async (t) => {
  const kafka = testKafka()
  const topic = await createTopic(t, 'segment', { partitions: 3 })
  const { url, gateway } = await startGateway(t, {
    kafka: { brokers: kafka.bootstrap },
    keys: [{ key: 'write-key-0001', name: 'web', topics: [topic] }],
    segment: { defaultTopic: topic },
  })
  const analytics = new Analytics({
    writeKey: 'write-key-0001',
    host: url,
    path: '/v1/batch',
    maxEventsInBatch: 100,
    flushInterval: 200,
  })
  const errors: unknown[] = []
  analytics.on('error', (e) => errors.push(e))
  for (let i = 0; i < EVENTS; i++) {
    const userId = `user-${i % 97}`
    if (i % 10 === 0) analytics.identify({ userId, traits: { n: i } })
    else analytics.track({ userId, event: 'Item Viewed', properties: { n: i } })
  }
  await analytics.closeAndFlush({ timeout: 60_000 })
  assert.deepEqual(errors, [], 'the SDK saw no errors')
  assert.ok(await gateway.producer.flush(60_000), 'the gateway delivered its backlog')

  const messages = await readTopic(topic, { expected: EVENTS, idleMs: 2000 })
  const byMessageId = new Map<string, number>()
  for (const m of messages) {
    const body = JSON.parse(m.value.toString()) as { messageId: string; receivedAt: string; type: string }
    assert.ok(body.receivedAt, 'receivedAt is added')
    const id = m.headerEntries.find(([k]) => k.toString() === 'spillway-id')?.[1].toString()
    assert.equal(id, body.messageId, 'the event id is the messageId')
    byMessageId.set(body.messageId, (byMessageId.get(body.messageId) ?? 0) + 1)
  }
  assert.equal(byMessageId.size, EVENTS, 'every event arrived')
  assert.ok(
    [...byMessageId.values()].every((c) => c === 1),
    'exactly once by messageId',
  )
})

test('write keys: Basic auth or body writeKey, unknown keys 401, topic allow-list 403, rate limit 429', async (t) => {
  const { url } = await startGateway(t, {
    keys: [
      { key: 'allowed-key-01', name: 'allowed', topics: ['segment-events'] },
      { key: 'limited-key-01', name: 'limited', topics: ['*'], ratePerSecond: 5, burst: 5 },
      { key: 'elsewhere-key1', name: 'elsewhere', topics: ['other-topic'] },
    ],
  })
  const track = JSON.stringify({ userId: 'u', event: 'E' })
  assert.equal(
    (
      await post(`${url}/v1/track`, track, {
        'content-type': 'application/json',
        authorization: basic('allowed-key-01'),
      })
    ).status,
    200,
  )
  assert.equal(
    (await post(`${url}/v1/track`, JSON.stringify({ userId: 'u', event: 'E', writeKey: 'allowed-key-01' })))
      .status,
    200,
  )
  const unknown = await post(`${url}/v1/track`, track, {
    'content-type': 'application/json',
    authorization: basic('nope-nope-nope'),
  })
  assert.equal(unknown.status, 401)
  assert.equal(unknown.json.code, 'SPW_ERR_UNAUTHORIZED')
  assert.equal((await post(`${url}/v1/track`, track)).status, 401, 'no key at all')
  const forbidden = await post(`${url}/v1/track`, track, {
    'content-type': 'application/json',
    authorization: basic('elsewhere-key1'),
  })
  assert.equal(forbidden.status, 403)
  let limited = 0
  for (let i = 0; i < 12; i++) {
    const r = await post(`${url}/v1/track`, track, {
      'content-type': 'application/json',
      authorization: basic('limited-key-01'),
    })
    if (r.status === 429) {
      limited++
      assert.ok(Number(r.headers.get('retry-after')) >= 1)
      assert.equal(r.json.code, 'SPW_ERR_RATE_LIMITED')
    }
  }
  assert.ok(limited >= 5, `rate-limited requests: ${limited}`)
})
