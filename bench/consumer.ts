/**
 * The consumer on one real broker, every contender in the same run:
 *
 *   npm run bench -- consumer         (or: node bench/consumer.ts [small records] [large records] [rounds])
 *
 * 1. Throughput, no-op handler, reading a prefilled topic of 6 partitions from the beginning: 1 KiB and
 *    800 KiB records. spillway's consumer (defaults, and with dedupe off) beside raw @platformatic/kafka
 *    (its MessagesStream), KafkaJS (eachMessage) and Kafka's kafka-consumer-perf-test. Timed from the
 *    record at 10% to the last, so joining a group and read-ahead are not counted. Ratios against raw
 *    @platformatic/kafka.
 * 2. Key parallelism: 10,000 records on one partition with 1,000 keys, a 5 ms async handler, concurrency
 *    100, in key order, partition order and unordered (Confluent's Parallel Consumer publishes 2.06 s with
 *    16 threads in key order and 22.2 s in partition order).
 * 3. The lagging partition (incident 3): a backlog of 800 KiB records in one of 12 partitions against the
 *    same backlog in a topic of one partition, for spillway and for KafkaJS configured as in the incident
 *    (maxWaitTimeInMs 10 s, 1 MiB per partition).
 * 4. Memory: RSS while spillway drains the 800 KiB topic with maxBufferedBytes 64 MiB, in a process of
 *    its own. Run with --expose-gc (npm run bench does) so each contender starts without the last one's garbage.
 */

import { execFileSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'
import { Admin, Consumer, MessagesStreamModes, Producer } from '@platformatic/kafka'
import { Kafka, logLevel } from 'kafkajs'
import { KafkaCluster, runKafkaTool } from '../scripts/kafka/cluster.ts'
import { createConsumer } from '../src/consumer/consumer.ts'
import { printTable } from './report.ts'

if (process.argv[2] === '--memory') {
  // child mode: drain a topic alone in this process (spillway, or raw @platformatic/kafka as the peer)
  // and report the RSS before and at its peak
  const [, , , who, brokers, name, total] = process.argv
  const gcNow = (globalThis as { gc?: () => void }).gc
  gcNow?.()
  const before = process.memoryUsage().rss
  let peak = before
  const sampler = setInterval(() => {
    peak = Math.max(peak, process.memoryUsage().rss)
  }, 20)
  let seen = 0
  let finish: () => void = () => undefined
  const done = new Promise<void>((resolve) => {
    finish = resolve
  })
  const tick = (): void => {
    if (++seen === Number(total)) finish()
  }
  if (who === 'spillway') {
    const consumer = createConsumer({
      brokers: (brokers as string).split(','),
      topics: [name as string],
      maxBufferedBytes: 64 * 1024 * 1024,
      handler: tick,
    })
    await consumer.run()
    await done
    clearInterval(sampler)
    await consumer.close()
  } else {
    const consumer = new Consumer({
      clientId: 'bench-raw',
      groupId: `bench-memory-${process.pid}`,
      bootstrapBrokers: (brokers as string).split(','),
      maxWaitTime: 500,
    })
    const stream = await consumer.consume({
      topics: [name as string],
      mode: MessagesStreamModes.EARLIEST,
      autocommit: false,
    })
    stream.on('data', tick)
    await done
    clearInterval(sampler)
    await stream.close()
    await consumer.close(true)
  }
  process.stdout.write(JSON.stringify({ before, peak }))
  process.exit(0)
}

const SMALL = Number(process.argv[2] ?? 200_000)
const LARGE = Number(process.argv[3] ?? 600)
const ROUNDS = Number(process.argv[4] ?? 3)
const KiB = 1024
const LARGE_BYTES = 800 * KiB

const cluster = await KafkaCluster.start({ nodes: 1, heapMb: 1024 })
const bootstrap = cluster.bootstrap
const admin = new Admin({ clientId: 'bench', bootstrapBrokers: bootstrap })
let groups = 0
const group = (name: string): string => `bench-${name}-${process.pid}-${++groups}`
const median = (values: readonly number[]): number => {
  const s = [...values].sort((a, b) => a - b)
  const m = s.length >> 1
  return s.length % 2 ? (s[m] as number) : ((s[m - 1] as number) + (s[m] as number)) / 2
}

async function topic(name: string, partitions: number): Promise<string> {
  await admin.createTopics({
    topics: [name],
    partitions,
    replicas: 1,
    configs: [{ name: 'max.message.bytes', value: String(2 * 1024 * 1024) }],
  })
  return name
}

/** Fills a topic with Kafka's own perf producer (unkeyed records of `size` bytes). */
async function fill(name: string, records: number, size: number): Promise<void> {
  const out = await runKafkaTool(
    'org.apache.kafka.tools.ProducerPerformance',
    [
      '--topic',
      name,
      '--num-records',
      String(records),
      '--record-size',
      String(size),
      '--throughput',
      '-1',
      '--producer-props',
      `bootstrap.servers=${bootstrap.join(',')}`,
      'acks=1',
      'linger.ms=5',
      'batch.size=262144',
      'max.request.size=10485760',
    ],
    { timeoutMs: 600_000 },
  )
  if (out.code !== 0) throw new Error(`fill ${name}: ${out.stderr}`)
}

/**
 * Times the steady state: from the record at 10% of `total` to the last, scaled to `total`. Start-up
 * (joining a group, the first fetches, a stream's read-ahead) is left out for every contender alike.
 */
function clock(total: number): { tick: (n?: number) => void; done: Promise<number> } {
  const skip = Math.floor(total / 10)
  let first = 0
  let seen = 0
  let resolve: (ms: number) => void = () => undefined
  const done = new Promise<number>((r) => {
    resolve = r
  })
  return {
    tick(n = 1) {
      seen += n
      if (first === 0 && seen >= skip) first = performance.now()
      if (seen === total) resolve(((performance.now() - first) * total) / (total - skip))
    },
    done,
  }
}

async function spillway(name: string, total: number, options: Record<string, unknown> = {}): Promise<number> {
  const c = clock(total)
  const consumer = createConsumer({ brokers: bootstrap, topics: [name], handler: () => c.tick(), ...options })
  await consumer.run()
  const ms = await c.done
  await consumer.close()
  return ms
}

async function raw(name: string, total: number): Promise<number> {
  const c = clock(total)
  const consumer = new Consumer({
    clientId: 'bench-raw',
    groupId: group('raw'),
    bootstrapBrokers: bootstrap,
    maxWaitTime: 500,
  })
  const stream = await consumer.consume({
    topics: [name],
    mode: MessagesStreamModes.EARLIEST,
    autocommit: false,
  })
  stream.on('data', () => c.tick())
  const ms = await c.done
  await stream.close()
  await consumer.close(true)
  return ms
}

async function kafkajs(name: string, total: number, config: Record<string, unknown> = {}): Promise<number> {
  const c = clock(total)
  const kafka = new Kafka({ clientId: 'bench-kafkajs', brokers: bootstrap, logLevel: logLevel.NOTHING })
  const consumer = kafka.consumer({ groupId: group('kafkajs'), ...config })
  await consumer.connect()
  await consumer.subscribe({ topic: name, fromBeginning: true })
  await consumer.run({ eachMessage: async () => c.tick() })
  const ms = await c.done
  await consumer.disconnect()
  return ms
}

async function java(name: string, total: number): Promise<number> {
  const out = await runKafkaTool(
    'org.apache.kafka.tools.ConsumerPerformance',
    [
      '--bootstrap-server',
      bootstrap.join(','),
      '--topic',
      name,
      '--messages',
      String(total),
      '--group',
      group('java'),
      '--timeout',
      '60000',
    ],
    { timeoutMs: 600_000 },
  )
  const lines = out.stdout.trim().split('\n')
  const header = (lines.find((l) => l.includes('fetch.nMsg.sec')) ?? '').split(',').map((s) => s.trim())
  const row = (lines.at(-1) ?? '').split(',').map((s) => s.trim())
  const perSec = Number(row[header.indexOf('fetch.nMsg.sec')])
  return (total / perSec) * 1000
}

try {
  // 1. throughput
  const small = await topic('bench-small', 6)
  const large = await topic('bench-large', 6)
  await fill(small, SMALL, KiB)
  await fill(large, LARGE, LARGE_BYTES)
  const contenders: [string, (t: string, n: number) => Promise<number>][] = [
    ['spillway (defaults)', (t, n) => spillway(t, n)],
    ['spillway (dedupe off)', (t, n) => spillway(t, n, { dedupe: false })],
    ['raw @platformatic/kafka', raw],
    ['KafkaJS', (t, n) => kafkajs(t, n)],
    ['kafka-consumer-perf-test', java],
  ]
  for (const [label, name, total, bytes] of [
    ['1 KiB', small, SMALL, KiB],
    ['800 KiB', large, LARGE, LARGE_BYTES],
  ] as const) {
    const times = new Map<string, number[]>()
    for (let round = 0; round < ROUNDS; round++) {
      for (const [contender, run] of contenders)
        times.set(contender, [...(times.get(contender) ?? []), await run(name, total)])
    }
    const base = median(times.get('raw @platformatic/kafka') ?? [])
    printTable(`Throughput, ${label} records (${total} records, 6 partitions, medians of ${ROUNDS} rounds)`, [
      ['contender', 'records/s', 'MB/s', 'vs raw @platformatic/kafka', 'rounds (ms)'],
      ...[...times].map(([contender, ms]) => {
        const m = median(ms)
        return [
          contender,
          Math.round((total / m) * 1000).toString(),
          ((total * bytes) / m / 1000).toFixed(1),
          (base / m).toFixed(2),
          ms.map((x) => Math.round(x)).join(' / '),
        ]
      }),
    ])
  }

  // 2. key parallelism
  const keyed = await topic('bench-keys', 1)
  const writer = new Producer({ clientId: 'bench-writer', bootstrapBrokers: bootstrap })
  const keyedRecords = Array.from({ length: 10_000 }, (_, i) => ({
    topic: keyed,
    key: Buffer.from(`key-${i % 1000}`),
    value: Buffer.from(`${i}`),
    partition: 0,
  }))
  for (let i = 0; i < keyedRecords.length; i += 1000)
    await writer.send({ messages: keyedRecords.slice(i, i + 1000) })
  const parallel: string[][] = [['ordering', 'time (s)', 'target']]
  for (const ordering of ['key', 'unordered', 'partition'] as const) {
    const c = clock(10_000)
    const consumer = createConsumer({
      brokers: bootstrap,
      topics: [keyed],
      ordering,
      concurrency: 100,
      dedupe: false,
      handler: async () => {
        await new Promise((r) => setTimeout(r, 5))
        c.tick()
      },
    })
    await consumer.run()
    const ms = await c.done
    await consumer.close()
    parallel.push([
      ordering,
      (ms / 1000).toFixed(2),
      ordering === 'key'
        ? '≤ 1.5 s (Parallel Consumer: 2.06 s)'
        : ordering === 'partition'
          ? '(Parallel Consumer: 22.2 s)'
          : '',
    ])
  }
  printTable(
    'Key parallelism: 10,000 records, 1 partition, 1,000 keys, 5 ms handler, concurrency 100',
    parallel,
  )

  // 3. the lagging partition, and 4. memory while draining 800 KiB records
  const single = await topic('bench-lag-single', 1)
  const wide = await topic('bench-lag-wide', 12)
  for (const t of [single, wide]) {
    for (let i = 0; i < LARGE; i += 2) {
      await writer.send({
        messages: [0, 1].map((j) => ({
          topic: t,
          key: Buffer.from(`run-${Math.floor((i + j) / 250)}`),
          value: Buffer.alloc(LARGE_BYTES, i % 251),
          partition: 0,
        })),
      })
    }
  }
  await writer.close()
  const incident = { maxWaitTimeInMs: 10_000, maxBytesPerPartition: 1024 * 1024 }
  const lag: string[][] = [['contender', 'alone (rec/s)', 'beside 11 empty (rec/s)', 'ratio']]
  const spillAlone: number[] = []
  const spillWide: number[] = []
  const kjsAlone: number[] = []
  const kjsWide: number[] = []
  for (let round = 0; round < ROUNDS; round++) {
    spillAlone.push(await spillway(single, LARGE))
    spillWide.push(await spillway(wide, LARGE))
    kjsAlone.push(await kafkajs(single, LARGE, incident))
    kjsWide.push(await kafkajs(wide, LARGE, incident))
  }
  const rate = (ms: number[]): number => Math.round((LARGE / median(ms)) * 1000)
  lag.push([
    'spillway',
    String(rate(spillAlone)),
    String(rate(spillWide)),
    (median(spillAlone) / median(spillWide)).toFixed(2),
  ])
  lag.push([
    'KafkaJS as in the incident',
    String(rate(kjsAlone)),
    String(rate(kjsWide)),
    (median(kjsAlone) / median(kjsWide)).toFixed(2),
  ])
  printTable(`The lagging partition: ${LARGE} records of 800 KiB (medians of ${ROUNDS} rounds)`, lag)
  // memory in a process of its own, so nothing else's buffers count; raw @platformatic/kafka beside it
  const mib = (n: number): string => `${Math.round(n / 2 ** 20)} MiB`
  const memoryRows = (['spillway', 'raw @platformatic/kafka'] as const).map((who) => {
    const m = JSON.parse(
      execFileSync(
        process.execPath,
        [
          '--expose-gc',
          fileURLToPath(import.meta.url),
          '--memory',
          who === 'spillway' ? who : 'raw',
          bootstrap.join(','),
          large,
          String(LARGE),
        ],
        { encoding: 'utf8' },
      ),
    ) as { before: number; peak: number }
    return [who, mib(m.before), mib(m.peak), mib(m.peak - m.before), who === 'spillway' ? '64 MiB' : '(none)']
  })
  printTable(
    `Memory while draining ${LARGE} records of 800 KiB (6 partitions), each in a process of its own`,
    [['contender', 'RSS before', 'RSS peak', 'growth', 'buffer budget'], ...memoryRows],
  )
} finally {
  await admin.close()
  await cluster.stop()
}
