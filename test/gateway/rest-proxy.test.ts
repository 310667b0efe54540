/** Confluent REST Proxy v3 produce over plain HTTP: success shapes, streaming, error shapes. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { resolveGatewayConfig } from '../../src/gateway/config.ts'
import { post, startGateway } from '../helpers/gateway.ts'
import { createTopic, readTopic, testKafka } from '../helpers/kafka.ts'

test('REST Proxy v3: JSON, STRING and BINARY records with key, headers and partition reach Kafka', async (t) => {
  const kafka = testKafka()
  const topic = await createTopic(t, 'rest', { partitions: 3 })
  const { url, gateway } = await startGateway(t, {
    kafka: { brokers: kafka.bootstrap },
    clusterId: 'lkc-test',
  })
  const endpoint = `${url}/v3/clusters/lkc-test/topics/${topic}/records`

  const one = await post(
    endpoint,
    JSON.stringify({
      key: { type: 'STRING', data: 'order-1' },
      value: { type: 'JSON', data: { amount: 12.5 } },
      headers: [{ name: 'source', value: Buffer.from('checkout').toString('base64') }],
      partition_id: 2,
    }),
  )
  assert.equal(one.status, 200)
  assert.deepEqual(
    { ...one.json, timestamp: typeof one.json.timestamp },
    {
      error_code: 200,
      cluster_id: 'lkc-test',
      topic_name: topic,
      partition_id: 2,
      offset: -1,
      timestamp: 'string',
      key: { type: 'STRING', size: 7 },
      value: { type: 'JSON', size: 15 },
    },
  )
  // streaming mode: several records in one request, one answer line per record
  const stream = [
    { value: { type: 'BINARY', data: Buffer.from([0, 1, 2, 255]).toString('base64') } },
    { key: { type: 'STRING', data: 'k' }, value: { type: 'STRING', data: 'plain text' } },
  ]
    .map((r) => JSON.stringify(r))
    .join('\n')
  const many = await post(endpoint, stream)
  assert.equal(many.status, 200)
  const lines = many.text
    .trim()
    .split('\n')
    .map((l) => JSON.parse(l) as Record<string, unknown>)
  assert.equal(lines.length, 2)
  assert.ok(lines.every((l) => l.error_code === 200 && l.topic_name === topic))

  assert.ok(await gateway.producer.flush(20_000))
  const messages = await readTopic(topic, { expected: 3, idleMs: 1000 })
  assert.equal(messages.length, 3)
  const json = messages.find((m) => m.key?.toString() === 'order-1')
  assert.ok(json)
  assert.equal(json.partition, 2, 'partition_id is honoured')
  assert.deepEqual(JSON.parse(json.value.toString()), { amount: 12.5 })
  assert.equal(json.headerEntries.find(([k]) => k.toString() === 'source')?.[1].toString(), 'checkout')
  assert.ok(
    messages.some((m) => m.value.equals(Buffer.from([0, 1, 2, 255]))),
    'binary bytes exact',
  )
  assert.ok(messages.some((m) => m.value.toString() === 'plain text'))
})

test('REST Proxy v3 error shapes: error_code and message, with the right HTTP status', async (t) => {
  const { url } = await startGateway(t, { clusterId: 'lkc-test', restTopics: ['allowed'] })
  const cases: [string, string, number, RegExp][] = [
    [
      `${url}/v3/clusters/other/topics/allowed/records`,
      '{"value":{"type":"JSON","data":1}}',
      404,
      /cluster other not found/,
    ],
    [
      `${url}/v3/clusters/lkc-test/topics/forbidden/records`,
      '{"value":{"type":"JSON","data":1}}',
      404,
      /not served/,
    ],
    [
      `${url}/v3/clusters/lkc-test/topics/allowed/records`,
      '{"value":{"type":"AVRO","data":1}}',
      400,
      /schema registry/,
    ],
    [
      `${url}/v3/clusters/lkc-test/topics/allowed/records`,
      '{"value":{"type":"BINARY","data":"%%%"}}',
      400,
      /\$\.value\.data must be base64/,
    ],
    [`${url}/v3/clusters/lkc-test/topics/allowed/records`, '{"partition_id":-1}', 400, /partition_id/],
    [`${url}/v3/clusters/lkc-test/topics/allowed/records`, '{"value":', 400, /malformed JSON/],
  ]
  for (const [endpoint, body, status, message] of cases) {
    const r = await post(endpoint, body)
    assert.equal(r.status, status, `${body} → ${status}`)
    assert.equal(r.json.error_code, status)
    assert.match(String(r.json.message), message)
  }
})

test('kafka.deadLetterTopics: a record its topic will never take goes on to the dead-letter topic', async (t) => {
  const kafka = testKafka()
  const topic = await createTopic(t, 'rest-small', { config: { 'max.message.bytes': '2048' } })
  const dlq = await createTopic(t, 'rest-dlq')
  const { url } = await startGateway(t, {
    kafka: { brokers: kafka.bootstrap, deadLetterTopics: { [topic]: dlq } },
    clusterId: 'lkc-test',
  })
  const endpoint = `${url}/v3/clusters/lkc-test/topics/${topic}/records`
  const big = await post(endpoint, JSON.stringify({ value: { type: 'STRING', data: 'x'.repeat(10_000) } }))
  assert.equal(big.status, 200, 'accepted: durable in the log, whatever Kafka will say')
  const small = await post(endpoint, JSON.stringify({ value: { type: 'STRING', data: 'fits' } }))
  assert.equal(small.status, 200)
  const [letter] = await readTopic(dlq, { expected: 1, idleMs: 800, timeoutMs: 30_000 })
  assert.equal(letter?.value.length, 10_000)
  const header = (name: string) => letter?.headerEntries.find(([k]) => k.toString() === name)?.[1].toString()
  assert.equal(header('spillway-original-topic'), topic)
  assert.match(header('spillway-dead-letter-reason') ?? '', /MESSAGE_TOO_LARGE|RECORD_LIST_TOO_LARGE/)
  const delivered = await readTopic(topic, { expected: 1, idleMs: 800 })
  assert.deepEqual(
    delivered.map((m) => m.value.toString()),
    ['fits'],
  )
  assert.throws(
    () => resolveGatewayConfig({ kafka: { brokers: kafka.bootstrap, deadLetterTopics: { [topic]: topic } } }),
    { code: 'SPW_ERR_INVALID_OPTION', message: new RegExp(`option kafka.deadLetterTopics.${topic} is`) },
  )
})
