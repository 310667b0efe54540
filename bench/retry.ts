/**
 * Retry tier overhead: records/s through one tier against the same consumer with no tiers, in one run.
 *
 *   node bench/retry.ts [records] [rounds]      # default 50,000 records of 1 KiB, 3 rounds
 *
 * Each round writes the records to a fresh topic (6 partitions) and reads them twice, each time with a
 * new group and a handler that does no work of its own:
 *   - plain: no tiers; every record is handled at the first attempt;
 *   - one tier: `retry: { tiers: [{ delayMs: 0 }] }` and a handler that fails every record in the source
 *     topic, so every record is forwarded (its copy and its offset in a transaction) and handled again
 *     from the tier.
 * The ratio is the tiered rate over the plain one, both from the first record handled to the last.
 */
import { Admin } from '@platformatic/kafka'
import { KafkaCluster } from '../scripts/kafka/cluster.ts'
import { type ConsumedRecord, createConsumer, createProducer } from '../src/index.ts'
import { printTable } from './report.ts'

const records = Number(process.argv[2] ?? 50_000)
const rounds = Number(process.argv[3] ?? 3)
const PARTITIONS = 6

const cluster = await KafkaCluster.start({ nodes: 1, heapMb: 1024 })
const brokers = cluster.bootstrap

async function fill(topic: string): Promise<void> {
  const admin = new Admin({ clientId: 'bench', bootstrapBrokers: brokers })
  await admin.createTopics({ topics: [topic], partitions: PARTITIONS, replicas: 1 })
  await admin.close()
  const filler = 'x'.repeat(950)
  const producer = await createProducer({ brokers, ack: 'kafka', transportLingerMs: 5 })
  for (let i = 0; i < records; i += 1000) {
    const results = await producer.send(
      topic,
      Array.from({ length: Math.min(1000, records - i) }, (_, j) => ({
        key: `user-${(i + j) % 5000}`,
        value: { n: i + j, filler },
      })),
    )
    if (results.some((r) => r.status !== 'accepted')) throw new Error('the producer refused a record')
  }
  await producer.close()
}

/** Handles the topic once; resolves with records/s from the first handled record to the last. */
async function measure(topic: string, tiered: boolean): Promise<{ rate: number; transactions: number }> {
  let handled = 0
  let first = 0
  let last = 0
  const consumer = createConsumer({
    brokers,
    groupId: `bench-retry-${tiered ? 'tier' : 'plain'}-${Date.now()}`,
    topics: [topic],
    ...(tiered ? { retry: { tiers: [{ delayMs: 0 }] } } : {}),
    handler: (record) => {
      const r = record as ConsumedRecord
      if (first === 0) first = performance.now()
      if (tiered && r.topic === topic) throw new Error('to the tier')
      handled++
      last = performance.now()
    },
  })
  await consumer.run()
  let lastReport = performance.now()
  while (handled < records) {
    await new Promise((r) => setTimeout(r, 10))
    if (performance.now() - lastReport > 10_000) {
      lastReport = performance.now()
      const { partitions: _, ...s } = consumer.stats()
      process.stderr.write(
        `  …${tiered ? 'tiered' : 'plain'}: ${handled} of ${records} handled; ${JSON.stringify(s, (_k, v) => (typeof v === 'bigint' ? String(v) : v))}\n`,
      )
    }
  }
  const transactions = consumer.stats().transactions
  await consumer.close()
  return { rate: records / ((last - first) / 1000), transactions }
}

try {
  const rows: string[][] = [['round', 'no tiers rec/s', 'through one tier rec/s', 'transactions', 'ratio']]
  const ratios: number[] = []
  for (let round = 1; round <= rounds; round++) {
    const topic = `bench-retry-${round}`
    await fill(topic)
    const plain = await measure(topic, false)
    const tier = await measure(topic, true)
    ratios.push(tier.rate / plain.rate)
    rows.push([
      String(round),
      plain.rate.toFixed(0),
      tier.rate.toFixed(0),
      String(tier.transactions),
      (tier.rate / plain.rate).toFixed(2),
    ])
  }
  printTable(`Retry tier overhead, ${records} records of 1 KiB, ${PARTITIONS} partitions`, rows)
  const sorted = [...ratios].sort((a, b) => a - b)
  process.stdout.write(`median ratio ${(sorted[Math.floor(sorted.length / 2)] as number).toFixed(2)}\n`)
} finally {
  await cluster.stop()
}
