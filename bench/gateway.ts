/**
 * Gateway throughput with autocannon: POST /v1/batch with 100 events of ~1 KiB per request, delivering to
 * a real co-located broker. Beside it, in the same run:
 *   - the endpoint a team writes today: Fastify plus one shared @platformatic/kafka producer with
 *     acks=all, answering after Kafka acks (the fair peer: it stores and delivers, without durability);
 *   - a bare Fastify endpoint that only parses the body (the ceiling of HTTP + JSON on this machine).
 * spillway runs twice: `ack: "durable"` (answers after fsync) and `ack: "kafka"` (after Kafka acks).
 *
 *   npm run bench -- gateway        (or: node bench/gateway.ts [seconds])
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Admin, ProduceAcks, Producer, stringSerializers } from '@platformatic/kafka'
import autocannon from 'autocannon'
import Fastify from 'fastify'
import { KafkaCluster } from '../scripts/kafka/cluster.ts'
import { resolveGatewayConfig } from '../src/gateway/config.ts'
import { createGateway } from '../src/gateway/server.ts'
import { printTable } from './report.ts'

const seconds = Number(process.argv[2] ?? 15)
const EVENTS = 100
const body = JSON.stringify({
  batch: Array.from({ length: EVENTS }, (_, i) => ({
    type: 'track',
    userId: `user-${i % 50}`,
    event: 'Product Viewed',
    properties: { sku: `sku-${i}`, description: 'd'.repeat(900) },
  })),
})

/** A table row for one endpoint's run. */
function row(name: string, result: autocannon.Result): string[] {
  return [
    name,
    (result.requests.average * EVENTS).toFixed(0),
    result.requests.average.toFixed(0),
    String(result.latency.p50),
    String(result.latency.p99),
    String(result.non2xx),
  ]
}

async function load(url: string): Promise<autocannon.Result> {
  return await autocannon({
    url,
    method: 'POST',
    headers: { 'content-type': 'application/json' },
    body,
    connections: 32,
    duration: seconds,
  })
}

const cluster = await KafkaCluster.start({ nodes: 1, heapMb: 1024 })
const admin = new Admin({ clientId: 'bench', bootstrapBrokers: cluster.bootstrap })
const topic = `bench-gateway-${Date.now()}`
await admin.createTopics({ topics: [topic], partitions: 6, replicas: 1 })
const dir = await mkdtemp(join(tmpdir(), 'spillway-bench-gateway-'))
const rows: string[][] = [['endpoint', 'events/s', 'requests/s', 'p50 ms', 'p99 ms', 'non-2xx']]
try {
  const bare = Fastify()
  bare.post('/v1/batch', async (request) => {
    const parsed = request.body as { batch: unknown[] }
    return { success: parsed.batch.length > 0 }
  })
  const bareUrl = await bare.listen({ port: 0, host: '127.0.0.1' })
  const b = await load(`${bareUrl}/v1/batch`)
  await bare.close()
  rows.push(row('bare Fastify (parse, 200)', b))

  // the endpoint a team writes today: one shared producer, acks=all, answer after Kafka acks
  const peerProducer = new Producer({
    clientId: 'bench-peer',
    bootstrapBrokers: cluster.bootstrap,
    acks: ProduceAcks.ALL,
    serializers: stringSerializers,
  })
  const peer = Fastify({ bodyLimit: 1024 * 1024 })
  peer.post('/v1/batch', async (request) => {
    const parsed = request.body as { batch: { userId: string }[] }
    await peerProducer.send({
      messages: parsed.batch.map((m) => ({ topic, key: m.userId, value: JSON.stringify(m) })),
    })
    return { success: true }
  })
  const peerUrl = await peer.listen({ port: 0, host: '127.0.0.1' })
  const p = await load(`${peerUrl}/v1/batch`)
  await peer.close()
  await peerProducer.close()
  const peerRate = p.requests.average * EVENTS
  rows.push(row('Fastify + @platformatic/kafka, acks=all', p))

  const notes: string[] = []
  for (const ack of ['durable', 'kafka'] as const) {
    const logDir = join(dir, ack)
    const gateway = await createGateway(
      resolveGatewayConfig({
        port: 0,
        logLevel: 'warn',
        ack,
        log: { dir: logDir, maxBytes: 16 * 1024 ** 3 },
        kafka: { brokers: cluster.bootstrap },
        segment: { defaultTopic: topic },
      }),
    )
    const url = await gateway.listen()
    const g = await load(`${url}/v1/batch`)
    const drained = await gateway.producer.flush(300_000)
    const delivered = gateway.producer.stats().delivered
    await gateway.close()
    const rate = g.requests.average * EVENTS
    rows.push(row(`spillway /v1/batch (ack: ${ack})`, g))
    rows.push([
      `  ratio to the acks=all endpoint`,
      (rate / peerRate).toFixed(2),
      ack === 'durable' ? 'target >= 1.0' : 'target >= 0.9',
      '',
      '',
      '',
    ])
    notes.push(`ack ${ack}: delivered to Kafka after the run: ${delivered} events (drained: ${drained})`)
  }
  rows.push(['(bare Fastify is the ceiling, not a peer)', '', '', '', '', ''])
  printTable(
    `gateway, ${EVENTS} events of ~1 KiB per request, 32 connections, ${seconds} s, broker co-located`,
    rows,
  )
  for (const note of notes) process.stdout.write(`  ${note}\n`)
} finally {
  await admin.close()
  await cluster.stop()
  await rm(dir, { recursive: true, force: true })
}
