/**
 * A topic that does not exist yet, against real brokers: its events wait (the status says which topic
 * and how many), nothing else is held up, and they are delivered in order once an operator creates the
 * topic; a broker that creates topics on first use creates it at once; past unknownTopicTimeoutMs they
 * become dead letters that the status shows by topic and reason.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Admin } from '@platformatic/kafka'
import { KafkaCluster } from '../../scripts/kafka/cluster.ts'
import { post, startGateway } from '../helpers/gateway.ts'
import { createTopic, randomName, readTopic, testKafka } from '../helpers/kafka.ts'

interface Status {
  ready: boolean
  waiting: { events: number; topics: Record<string, number> }
  deadLetters: { total: number; byTopic: { topic: string; reason: string; count: number }[] }
}

async function status(url: string): Promise<Status> {
  return (await (await fetch(`${url}/status.json`)).json()) as Status
}

async function until(check: () => Promise<boolean>, ms: number): Promise<boolean> {
  const deadline = performance.now() + ms
  while (performance.now() < deadline) {
    if (await check()) return true
    await new Promise((r) => setTimeout(r, 100))
  }
  return false
}

const batch = (from: number, n: number) =>
  JSON.stringify({
    batch: Array.from({ length: n }, (_, i) => ({
      type: 'track',
      event: 'E',
      userId: 'u',
      messageId: `m-${String(from + i).padStart(4, '0')}`,
    })),
  })

test('events of a missing topic wait, other topics flow, and the wait ends in order when the topic is created', async (t) => {
  const kafka = testKafka()
  const missing = randomName('created-later')
  const present = await createTopic(t, 'present')
  const { url, gateway } = await startGateway(t, {
    kafka: { brokers: kafka.bootstrap, metadataMaxAgeMs: 500 },
    segment: { defaultTopic: missing, byType: { identify: present } },
  })
  const changes: string[] = []
  gateway.producer.on('status', (s) => {
    if (s.type === 'waiting') changes.push(`${s.change} ${s.topic}`)
  })
  for (let i = 0; i < 300; i += 100) assert.equal((await post(`${url}/v1/batch`, batch(i, 100))).status, 200)
  const identify = JSON.stringify({ userId: 'u', traits: { a: 1 } })
  assert.equal((await post(`${url}/v1/identify`, identify)).status, 200)
  assert.ok(
    await until(async () => (await status(url)).waiting.topics[missing] === 300, 20_000),
    'the status says which topic, and how many events wait',
  )
  assert.equal((await readTopic(present, { expected: 1, idleMs: 500 })).length, 1, 'the other topic flowed')
  assert.equal((await status(url)).ready, true, 'waiting events are safe: still ready')
  assert.equal((await status(url)).deadLetters.total, 0)

  const admin = new Admin({ clientId: 'spillway-test-admin', bootstrapBrokers: kafka.bootstrap })
  t.after(() => admin.close())
  await admin.createTopics({ topics: [missing], partitions: 1, replicas: 1 })
  t.after(() => admin.deleteTopics({ topics: [missing] }).catch(() => undefined))
  // events sent after the topic exists follow the ones that waited
  assert.equal((await post(`${url}/v1/batch`, batch(300, 50))).status, 200)
  assert.ok(await gateway.producer.flush(60_000), 'everything delivered, the waiting events too')
  const ids = (await readTopic(missing, { expected: 350, idleMs: 1000 })).map((m) =>
    m.headerEntries.find(([k]) => k.toString() === 'spillway-id')?.[1].toString(),
  )
  assert.deepEqual(
    ids,
    Array.from({ length: 350 }, (_, i) => `m-${String(i).padStart(4, '0')}`),
    'once each, in the order they came',
  )
  assert.deepEqual((await status(url)).waiting, { events: 0, topics: {} })
  assert.deepEqual(
    changes,
    [`started ${missing}`, `ended ${missing}`],
    'the start and end of the wait are told',
  )
})

test('past unknownTopicTimeoutMs the waiting events become dead letters, shown by topic and reason', async (t) => {
  const kafka = testKafka()
  const never = randomName('never-created')
  const { url } = await startGateway(t, {
    kafka: { brokers: kafka.bootstrap, metadataMaxAgeMs: 500, unknownTopicTimeoutMs: 1000 },
    segment: { defaultTopic: never },
  })
  assert.equal((await post(`${url}/v1/batch`, batch(0, 20))).status, 200)
  assert.ok(await until(async () => (await status(url)).deadLetters.total === 20, 30_000), 'dead-lettered')
  // a dead letter is counted before its append to the dead-letter log finishes; it leaves the wait after
  await until(async () => (await status(url)).waiting.events === 0, 5000)
  const s = await status(url)
  assert.equal(s.deadLetters.byTopic[0]?.topic, never)
  assert.match(s.deadLetters.byTopic[0]?.reason ?? '', /did not appear within 1000 ms/)
  assert.equal(s.waiting.events, 0)
  assert.equal(s.ready, true, 'dead letters are safe: still ready')
})

test('a broker that creates topics on first use creates the topic at once: spillway asks like the Java producer', async (t) => {
  const cluster = await KafkaCluster.start({ nodes: 1, config: { 'auto.create.topics.enable': 'true' } })
  t.after(() => cluster.stop())
  const topic = randomName('auto-created')
  const { url, gateway } = await startGateway(t, {
    kafka: { brokers: cluster.bootstrap },
    segment: { defaultTopic: topic },
  })
  assert.equal((await post(`${url}/v1/batch`, batch(0, 10))).status, 200)
  assert.ok(await gateway.producer.flush(30_000), 'delivered without anyone creating the topic')
  assert.equal(
    (await readTopic(topic, { expected: 10, idleMs: 500, bootstrap: cluster.bootstrap })).length,
    10,
  )
  assert.equal(gateway.producer.stats().deadLettered, 0)
})
