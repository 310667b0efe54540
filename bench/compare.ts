/**
 * This checkout's durable producer against another checkout's, alternating in one process on one broker,
 * so a change is measured beside its base rather than beside yesterday's figures:
 *
 *   git worktree add /tmp/base <commit> && ln -s "$PWD/node_modules" /tmp/base/node_modules
 *   node bench/compare.ts /tmp/base [records=100000] [rounds=6] [thread=main|worker]
 *
 * Each round runs both (the order alternates), 8 concurrent senders of 100 × 1 KiB events, durable,
 * end to end until Kafka acknowledged the last one. Prints each round's rate, CPU per record of this
 * process, and the ratio this/base per round and of the medians.
 */
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { Admin } from '@platformatic/kafka'
import { KafkaCluster } from '../scripts/kafka/cluster.ts'
import { printTable } from './report.ts'

const usage = 'usage: node bench/compare.ts <base checkout> [records] [rounds] [main|worker]'
const baseRoot = process.argv[2]
if (baseRoot === '--help' || baseRoot === '-h') {
  console.log(usage)
  process.exit(0)
}
if (!baseRoot || !existsSync(join(baseRoot, 'src/producer/producer.ts'))) {
  console.error(baseRoot ? `${baseRoot} has no src/producer/producer.ts\n${usage}` : usage)
  process.exit(2)
}
const RECORDS = Number(process.argv[3] ?? 100_000)
const ROUNDS = Number(process.argv[4] ?? 6)
const THREAD = (process.argv[5] ?? 'main') as 'main' | 'worker'

type ProducerModule = typeof import('../src/producer/producer.ts')
type RegistryModule = typeof import('../src/transport/registry.ts')
const here = resolve(import.meta.dirname, '..')
const contenders: { name: string; producer: ProducerModule; registry: RegistryModule }[] = []
for (const [name, root] of [
  ['this', here],
  ['base', resolve(baseRoot)],
] as const) {
  contenders.push({
    name,
    producer: (await import(join(root, 'src/producer/producer.ts'))) as ProducerModule,
    registry: (await import(join(root, 'src/transport/registry.ts'))) as RegistryModule,
  })
}

const median = (values: readonly number[]): number => {
  const sorted = [...values].sort((a, b) => a - b)
  return sorted[sorted.length >> 1] as number
}
const value = Buffer.alloc(1024, 'x')
const events = Array.from({ length: 100 }, (_, i) => ({ key: `k${i % 64}`, value }))
const cluster = await KafkaCluster.start({ nodes: 1, heapMb: 1024 })
const admin = new Admin({ clientId: 'bench-compare', bootstrapBrokers: cluster.bootstrap })
const work = await mkdtemp(join(tmpdir(), 'spillway-bench-compare-'))
const rates = new Map<string, number[]>(contenders.map((c) => [c.name, []]))
const rows: string[][] = [['round', 'contender', 'events/s', 'CPU per record']]
try {
  for (let round = 0; round < ROUNDS; round++) {
    const order = round % 2 === 0 ? contenders : [...contenders].reverse()
    for (const c of order) {
      const topic = `compare-${c.name}-${round}-${Date.now()}`
      await admin.createTopics({ topics: [topic], partitions: 6, replicas: 1 })
      const producer = await c.producer.createProducer({
        brokers: cluster.bootstrap,
        clientId: `compare-${c.name}-${round}`,
        log: { dir: join(work, `${c.name}-${round}`), maxBytes: 8 * 1024 ** 3 },
        transportThread: THREAD,
      })
      const cpu = process.cpuUsage()
      const started = performance.now()
      let next = 0
      await Promise.all(
        Array.from({ length: 8 }, async () => {
          while (next < RECORDS) {
            next += events.length
            await producer.send(topic, events)
          }
        }),
      )
      await producer.flush(600_000)
      const ms = performance.now() - started
      const used = process.cpuUsage(cpu)
      await producer.close()
      const rate = (RECORDS / ms) * 1000
      rates.get(c.name)?.push(rate)
      rows.push([
        String(round),
        c.name,
        rate.toFixed(0),
        `${((used.user + used.system) / RECORDS).toFixed(1)} µs`,
      ])
    }
  }
  const mine = rates.get('this') as number[]
  const theirs = rates.get('base') as number[]
  printTable(`durable producer, ${RECORDS} events per round, client on the ${THREAD} thread`, rows)
  printTable('this / base', [
    ['per round', mine.map((r, i) => (r / (theirs[i] as number)).toFixed(2)).join(' ')],
    ['of the medians', (median(mine) / median(theirs)).toFixed(2)],
  ])
} finally {
  for (const c of contenders) await c.registry.closeAllTransports()
  await admin.close()
  await cluster.stop()
  await rm(work, { recursive: true, force: true })
}
