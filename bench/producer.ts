/**
 * Producer throughput and ack latency on one real broker, every contender in the same run:
 *
 *   npm run bench -- producer          (or: node bench/producer.ts [records] [warm-up records] [rounds])
 *
 * - spillway durable (fsync always, group commit): end-to-end, from first send to last Kafka ack; once
 *   with the Kafka client on the main thread, once in its worker thread, with send() latency of each
 * - spillway kafka mode (answer after Kafka's ack)
 * - raw @platformatic/kafka (idempotent, acks=all, batches of the same size)
 * - KafkaJS (idempotent, acks=all, same batches)
 * - Kafka's own kafka-producer-perf-test (idempotent, acks=all)
 *
 * Then ack latency at 50% of each one's measured maximum rate. Ratios are against raw @platformatic/kafka
 * and against the Java tool. CPU per record is reported for this process and for the broker, to show
 * which side a contender is bound by.
 */
import { execFileSync } from 'node:child_process'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Admin, ProduceAcks, Producer } from '@platformatic/kafka'
import { Kafka, logLevel } from 'kafkajs'
import { KafkaCluster, runKafkaTool } from '../scripts/kafka/cluster.ts'
import { createProducer } from '../src/producer/producer.ts'
import { closeAllTransports, resolveThread } from '../src/transport/registry.ts'
import { percentile, printTable } from './report.ts'

const RECORDS = Number(process.argv[2] ?? 200_000)
const DURABLE = {
  main: 'spillway durable (client on the main thread)',
  worker: 'spillway durable (client in a worker thread)',
} as const
const WARMUP = Number(process.argv[3] ?? 200_000)
/** Every contender runs once per round, in turn, so a slow spell of the machine hits all of them. */
const ROUNDS = Number(process.argv[4] ?? 5)
const BATCH = 100
const CONCURRENCY = 8
const value = Buffer.alloc(1024, 'x')

interface Result {
  name: string
  round: number
  records: number
  ms: number
  /** CPU per record: this process (all threads) and the broker; absent for the Java tool's own process. */
  cpu?: { node: number; broker: number }
}

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b)
  const mid = sorted.length >> 1
  return sorted.length % 2
    ? (sorted[mid] as number)
    : ((sorted[mid - 1] as number) + (sorted[mid] as number)) / 2
}

async function drive(total: number, sendBatch: (start: number) => Promise<void>): Promise<number> {
  let next = 0
  const started = performance.now()
  await Promise.all(
    Array.from({ length: CONCURRENCY }, async () => {
      while (next < total) {
        const start = next
        next += BATCH
        await sendBatch(start)
      }
    }),
  )
  return performance.now() - started
}

/** Sends at `rate` batches/s for `seconds` and returns the ack latencies of each batch. */
async function paced(
  ratePerSecond: number,
  seconds: number,
  sendBatch: (start: number) => Promise<void>,
): Promise<number[]> {
  const latencies: number[] = []
  const interval = 1000 / (ratePerSecond / BATCH)
  const end = performance.now() + seconds * 1000
  const inflight: Promise<void>[] = []
  let n = 0
  while (performance.now() < end) {
    const started = performance.now()
    inflight.push(sendBatch(n).then(() => void latencies.push(performance.now() - started)))
    n += BATCH
    const wait = started + interval - performance.now()
    if (wait > 0) await new Promise((r) => setTimeout(r, wait))
  }
  await Promise.all(inflight)
  return latencies
}

const cluster = await KafkaCluster.start({ nodes: 1, heapMb: 1024 })
const ticksPerSecond = Number(execFileSync('getconf', ['CLK_TCK']).toString().trim()) || 100
/** CPU the broker processes have used so far, µs (utime + stime from /proc). */
function brokerCpuUs(): number {
  let total = 0
  for (const node of cluster.nodes) {
    const pid = node.process?.pid
    if (pid === undefined) continue
    const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? []
    total += ((Number(fields[11]) + Number(fields[12])) / ticksPerSecond) * 1e6
  }
  return total
}
/** Starts counting CPU; `done(records)` gives µs per record for this process and for the broker. */
function cpuFrom(): { done: (records: number) => { node: number; broker: number } } {
  const node = process.cpuUsage()
  const broker = brokerCpuUs()
  return {
    done: (records) => {
      const used = process.cpuUsage(node)
      return { node: (used.user + used.system) / records, broker: (brokerCpuUs() - broker) / records }
    },
  }
}
const bootstrap = cluster.bootstrap
const admin = new Admin({ clientId: 'bench', bootstrapBrokers: bootstrap })
const topic = (n: string): string => `bench-${n}-${Date.now()}`
const [tDurable, tDurableMain, tKafka, tRaw, tKafkajs, tJava, tLatDurable, tLatKafka, tLatRaw] = [
  'durable',
  'durable-main',
  'kafka',
  'raw',
  'kafkajs',
  'java',
  'lat-durable',
  'lat-kafka',
  'lat-raw',
].map(topic) as [string, string, string, string, string, string, string, string, string]
await admin.createTopics({
  topics: [tDurable, tDurableMain, tKafka, tRaw, tKafkajs, tJava, tLatDurable, tLatKafka, tLatRaw],
  partitions: 6,
  replicas: 1,
})
const work = await mkdtemp(join(tmpdir(), 'spillway-bench-producer-'))
const results: Result[] = []
const latencyRows: string[][] = []
/** send() latency (fsynced ack) while delivery runs flat out beside it, per contender over all rounds. */
const sends = new Map<string, number[]>()
const events = Array.from({ length: BATCH }, (_, i) => ({ key: `k${i % 64}`, value }))
/** The raw peer: idempotent, acks=all, sending the same batches as spillway. */
const rawProducer = (clientId: string): Producer =>
  new Producer({ clientId, bootstrapBrokers: bootstrap, idempotent: true, acks: ProduceAcks.ALL })
const rawMessages = (topic: string) => events.map((e) => ({ topic, key: Buffer.from(e.key), value: e.value }))

try {
  // Warm-up: a fresh broker (and this process's JIT) speeds up severalfold over its first few hundred
  // thousand records; whoever ran first would pay for it. Every contender is measured after this.
  {
    const warm = `bench-warm-${Date.now()}`
    await admin.createTopics({ topics: [warm], partitions: 6, replicas: 1 })
    const producer = await createProducer({
      brokers: bootstrap,
      log: { dir: join(work, 'warm'), maxBytes: 8 * 1024 ** 3 },
    })
    await drive(WARMUP, async () => {
      await producer.send(warm, events)
    })
    await producer.flush(600_000)
    await producer.close()
    const raw = rawProducer('bench-warm')
    await drive(WARMUP, async () => {
      await raw.send({ messages: rawMessages(warm) })
    })
    await raw.close()
  }
  // raw @platformatic/kafka: one producer for every round and the latency run
  const raw = rawProducer('bench-raw')
  const rawBatch = (topic: string) => async () => {
    await raw.send({ messages: rawMessages(topic) })
  }
  for (let round = 0; round < ROUNDS; round++) {
    // spillway durable: accepted into the log, then delivered; throughput counts until the last ack.
    // Once with the Kafka client on the main thread, once in its worker thread ('auto' picks one by cores).
    for (const [name, thread, topic] of [
      [DURABLE.main, 'main', tDurableMain],
      [DURABLE.worker, 'worker', tDurable],
    ] as const) {
      const producer = await createProducer({
        brokers: bootstrap,
        clientId: `bench-durable-${thread}`,
        log: { dir: join(work, `durable-${thread}-${round}`), maxBytes: 8 * 1024 ** 3 },
        transportThread: thread,
      })
      const latencies = sends.get(name) ?? []
      sends.set(name, latencies)
      const cpu = cpuFrom()
      const started = performance.now()
      await drive(RECORDS, async () => {
        const t0 = performance.now()
        await producer.send(topic, events)
        latencies.push(performance.now() - t0)
      })
      await producer.flush(600_000)
      results.push({ name, round, records: RECORDS, ms: performance.now() - started, cpu: cpu.done(RECORDS) })
      await producer.close()
    }
    // spillway kafka mode
    {
      const producer = await createProducer({
        brokers: bootstrap,
        ack: 'kafka',
        clientId: 'bench-kafka-mode',
      })
      const cpu = cpuFrom()
      const ms = await drive(RECORDS, async () => {
        await producer.send(tKafka, events)
      })
      results.push({ name: 'spillway kafka mode', round, records: RECORDS, ms, cpu: cpu.done(RECORDS) })
      await producer.close()
    }
    // raw @platformatic/kafka
    {
      const cpu = cpuFrom()
      const ms = await drive(RECORDS, rawBatch(tRaw))
      results.push({ name: 'raw @platformatic/kafka', round, records: RECORDS, ms, cpu: cpu.done(RECORDS) })
    }
    // KafkaJS
    const kafkajs = new Kafka({ clientId: 'bench-kafkajs', brokers: bootstrap, logLevel: logLevel.NOTHING })
    const kjs = kafkajs.producer({ idempotent: true, maxInFlightRequests: 1 })
    await kjs.connect()
    const kjsCpu = cpuFrom()
    const kjsMs = await drive(RECORDS, async () => {
      await kjs.send({
        topic: tKafkajs,
        acks: -1,
        messages: events.map((e) => ({ key: e.key, value: e.value })),
      })
    })
    results.push({ name: 'KafkaJS', round, records: RECORDS, ms: kjsMs, cpu: kjsCpu.done(RECORDS) })
    await kjs.disconnect()
    // Kafka's own perf tool
    const java = await runKafkaTool(
      'org.apache.kafka.tools.ProducerPerformance',
      [
        '--topic',
        tJava,
        '--num-records',
        String(RECORDS),
        '--record-size',
        '1024',
        '--throughput',
        '-1',
        '--producer-props',
        `bootstrap.servers=${bootstrap.join(',')}`,
        'acks=all',
        'enable.idempotence=true',
      ],
      { timeoutMs: 600_000 },
    )
    const summary = java.stdout.trim().split('\n').at(-1) ?? ''
    const perSec = Number(/([\d.]+) records\/sec/.exec(summary)?.[1] ?? Number.NaN)
    results.push({ name: 'kafka-producer-perf-test', round, records: RECORDS, ms: (RECORDS / perSec) * 1000 })
  }

  // latency at 50% of each contender's measured max
  const ratesOf = (name: string, round?: number): number[] =>
    results
      .filter((r) => r.name === name && (round === undefined || r.round === round))
      .map((r) => (r.records / r.ms) * 1000)
  const rateOf = (name: string): number => median(ratesOf(name))
  {
    const producer = await createProducer({
      brokers: bootstrap,
      log: { dir: join(work, 'lat'), maxBytes: 8 * 1024 ** 3 },
    })
    await producer.send(tLatDurable, events) // start-up (connection, producer id) is not latency
    const l = await paced(rateOf(DURABLE[resolveThread()]) / 2, 5, async () => {
      await producer.send(tLatDurable, events)
    })
    latencyRows.push([
      `spillway durable (ack = fsynced; client on the ${resolveThread()} thread)`,
      `p50 ${percentile(l, 50).toFixed(2)} ms`,
      `p99 ${percentile(l, 99).toFixed(2)} ms`,
    ])
    await producer.close()
  }
  {
    const producer = await createProducer({ brokers: bootstrap, ack: 'kafka', clientId: 'bench-lat-kafka' })
    await producer.send(tLatKafka, events)
    const l = await paced(rateOf('spillway kafka mode') / 2, 5, async () => {
      await producer.send(tLatKafka, events)
    })
    latencyRows.push([
      'spillway kafka mode (ack = Kafka)',
      `p50 ${percentile(l, 50).toFixed(2)} ms`,
      `p99 ${percentile(l, 99).toFixed(2)} ms`,
    ])
    await producer.close()
  }
  {
    const l = await paced(rateOf('raw @platformatic/kafka') / 2, 5, rawBatch(tLatRaw))
    latencyRows.push([
      'raw @platformatic/kafka (ack = Kafka)',
      `p50 ${percentile(l, 50).toFixed(2)} ms`,
      `p99 ${percentile(l, 99).toFixed(2)} ms`,
    ])
  }
  await raw.close()

  // ratios are taken round by round (each contender against the raw peer of the same round)
  const ratios = (name: string, peer: string): number[] =>
    Array.from({ length: ROUNDS }, (_, round) => {
      const [mine] = ratesOf(name, round)
      const [theirs] = ratesOf(peer, round)
      return (mine as number) / (theirs as number)
    })
  const names = [...new Set(results.map((r) => r.name))]
  printTable(
    `producer throughput, ${RECORDS} records of 1 KiB, batches of ${BATCH}, ${CONCURRENCY} concurrent senders, 6 partitions, acks=all, idempotent, ${ROUNDS} rounds (medians)`,
    [
      ['contender', 'events/s', 'MB/s', 'vs raw', 'vs raw per round', 'vs java'],
      ...names.map((name) => {
        const rate = rateOf(name)
        const perRound = ratios(name, 'raw @platformatic/kafka')
        return [
          name,
          rate.toFixed(0),
          ((rate * 1024) / 1e6).toFixed(1),
          median(perRound).toFixed(2),
          perRound.map((r) => r.toFixed(2)).join(' '),
          median(ratios(name, 'kafka-producer-perf-test')).toFixed(2),
        ]
      }),
    ],
  )
  const cpuOf = (name: string, side: 'node' | 'broker'): number[] =>
    results
      .filter((r) => r.name === name && r.cpu)
      .map((r) => (r.cpu as { node: number; broker: number })[side])
  printTable('CPU per record during the throughput runs (medians over rounds; 100% = one core)', [
    ['contender', 'this process', 'its share of a core', 'broker', 'broker share of a core'],
    ...names
      .filter((name) => cpuOf(name, 'node').length > 0)
      .map((name) => {
        const rate = rateOf(name)
        const nodeUs = median(cpuOf(name, 'node'))
        const brokerUs = median(cpuOf(name, 'broker'))
        return [
          name,
          `${nodeUs.toFixed(1)} µs`,
          `${((nodeUs * rate) / 1e4).toFixed(0)}%`,
          `${brokerUs.toFixed(1)} µs`,
          `${((brokerUs * rate) / 1e4).toFixed(0)}%`,
        ]
      }),
  ])
  printTable('batch ack latency at 50% of each one’s max rate (batches of 100)', latencyRows)
  printTable(
    'durable send() latency during the throughput runs, delivery running beside it',
    [...sends].map(([name, l]) => [
      name,
      `p50 ${percentile(l, 50).toFixed(2)} ms`,
      `p99 ${percentile(l, 99).toFixed(2)} ms`,
      `max ${Math.max(...l).toFixed(2)} ms`,
    ]),
  )
} finally {
  await closeAllTransports()
  await admin.close()
  await cluster.stop()
  await rm(work, { recursive: true, force: true })
}
