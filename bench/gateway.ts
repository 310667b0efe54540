/**
 * Gateway throughput with autocannon: POST /v1/batch with 100 events of ~1 KiB per request, durable
 * acks, delivering to a real co-located broker; beside a bare Fastify endpoint that parses the same body
 * and answers 200, in the same run (the ceiling of HTTP + JSON on this machine).
 *
 *   npm run bench -- gateway        (or: node bench/gateway.ts [seconds])
 */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Admin } from '@platformatic/kafka'
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
let bareRate = 0
try {
  const bare = Fastify()
  bare.post('/v1/batch', async (request) => {
    const parsed = request.body as { batch: unknown[] }
    return { success: parsed.batch.length > 0 }
  })
  const bareUrl = await bare.listen({ port: 0, host: '127.0.0.1' })
  const b = await load(`${bareUrl}/v1/batch`)
  await bare.close()
  bareRate = b.requests.average * EVENTS
  rows.push([
    'bare Fastify (parse, 200)',
    bareRate.toFixed(0),
    b.requests.average.toFixed(0),
    String(b.latency.p50),
    String(b.latency.p99),
    String(b.non2xx),
  ])

  const gateway = await createGateway(
    resolveGatewayConfig({
      port: 0,
      logLevel: 'warn',
      log: { dir, maxBytes: 16 * 1024 ** 3 },
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
  rows.push([
    'spillway /v1/batch (durable)',
    rate.toFixed(0),
    g.requests.average.toFixed(0),
    String(g.latency.p50),
    String(g.latency.p99),
    String(g.non2xx),
  ])
  rows.push(['ratio spillway / bare', (rate / bareRate).toFixed(2), 'target >= 0.5', '', '', ''])
  printTable(
    `gateway, ${EVENTS} events of ~1 KiB per request, 32 connections, ${seconds} s, broker co-located`,
    rows,
  )
  process.stdout.write(`  delivered to Kafka after the run: ${delivered} events (drained: ${drained})\n`)
} finally {
  await admin.close()
  await cluster.stop()
  await rm(dir, { recursive: true, force: true })
}
