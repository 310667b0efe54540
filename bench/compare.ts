/**
 * This checkout's durable producer against another checkout's, on one broker, in alternating rounds, so a
 * change is measured beside its base rather than beside yesterday's figures:
 *
 *   git worktree add /tmp/base <commit> && ln -s "$PWD/node_modules" /tmp/base/node_modules
 *   node bench/compare.ts /tmp/base [records=100000] [rounds=6] [thread=main|worker]
 *
 * Each checkout runs in a child process of its own, kept for every round (so both stay warmed up): the
 * transport registry is shared by every copy of spillway in one process, so two copies in one process
 * would both use whichever transport code was loaded first. Each round runs both (the order alternates),
 * 8 concurrent senders of 100 × 1 KiB events, durable, end to end until Kafka acknowledged the last one.
 * Prints each round's rate and the child's CPU per record, and the ratio this/base per round and of the
 * medians.
 */
import { type ChildProcess, fork } from 'node:child_process'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join, resolve } from 'node:path'
import { fileURLToPath } from 'node:url'
import { printTable } from './report.ts'

interface Job {
  readonly brokers: string[]
  readonly topic: string
  readonly dir: string
  readonly records: number
  readonly thread: 'main' | 'worker'
}
interface Done {
  readonly ms: number
  readonly cpuUsPerRecord: number
}

const value = Buffer.alloc(1024, 'x')
const events = Array.from({ length: 100 }, (_, i) => ({ key: `k${i % 64}`, value }))

/** A child: runs jobs with the producer of the checkout it was given, one at a time. */
async function child(root: string): Promise<void> {
  type ProducerModule = typeof import('../src/producer/producer.ts')
  type RegistryModule = typeof import('../src/transport/registry.ts')
  const { createProducer } = (await import(join(root, 'src/producer/producer.ts'))) as ProducerModule
  const { closeAllTransports } = (await import(join(root, 'src/transport/registry.ts'))) as RegistryModule
  process.on('message', async (job: Job | 'exit') => {
    if (job === 'exit') {
      await closeAllTransports()
      process.exit(0)
    }
    const producer = await createProducer({
      brokers: job.brokers,
      clientId: `compare-${process.pid}`,
      log: { dir: job.dir, maxBytes: 8 * 1024 ** 3 },
      transportThread: job.thread,
      transportLingerMs: 60_000,
    })
    const cpu = process.cpuUsage()
    const started = performance.now()
    let next = 0
    await Promise.all(
      Array.from({ length: 8 }, async () => {
        while (next < job.records) {
          next += events.length
          await producer.send(job.topic, events)
        }
      }),
    )
    await producer.flush(600_000)
    const ms = performance.now() - started
    const used = process.cpuUsage(cpu)
    await producer.close()
    const done: Done = { ms, cpuUsPerRecord: (used.user + used.system) / job.records }
    process.send?.(done)
  })
  process.send?.('ready')
}

const usage = 'usage: node bench/compare.ts <base checkout> [records] [rounds] [main|worker]'
if (process.argv[2] === '--child') {
  await child(process.argv[3] as string)
} else {
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
  const { Admin } = await import('@platformatic/kafka')
  const { KafkaCluster } = await import('../scripts/kafka/cluster.ts')

  const median = (values: readonly number[]): number => {
    const sorted = [...values].sort((a, b) => a - b)
    return sorted[sorted.length >> 1] as number
  }
  const start = (root: string): Promise<ChildProcess> =>
    new Promise((ready, failed) => {
      const c = fork(fileURLToPath(import.meta.url), ['--child', root], { stdio: 'inherit' })
      c.once('message', () => ready(c))
      c.once('error', failed)
    })
  const run = (c: ChildProcess, job: Job): Promise<Done> =>
    new Promise((done) => {
      c.once('message', (m) => done(m as Done))
      c.send(job)
    })

  const cluster = await KafkaCluster.start({ nodes: 1, heapMb: 1024 })
  const admin = new Admin({ clientId: 'bench-compare', bootstrapBrokers: cluster.bootstrap })
  const work = await mkdtemp(join(tmpdir(), 'spillway-bench-compare-'))
  const contenders = [
    { name: 'this', child: await start(resolve(import.meta.dirname, '..')) },
    { name: 'base', child: await start(resolve(baseRoot)) },
  ]
  const rates = new Map<string, number[]>(contenders.map((c) => [c.name, []]))
  const rows: string[][] = [['round', 'contender', 'events/s', 'CPU per record']]
  try {
    for (let round = 0; round < ROUNDS; round++) {
      const order = round % 2 === 0 ? contenders : [...contenders].reverse()
      for (const c of order) {
        const topic = `compare-${c.name}-${round}-${Date.now()}`
        await admin.createTopics({ topics: [topic], partitions: 6, replicas: 1 })
        const done = await run(c.child, {
          brokers: cluster.bootstrap,
          topic,
          dir: join(work, `${c.name}-${round}`),
          records: RECORDS,
          thread: THREAD,
        })
        const rate = (RECORDS / done.ms) * 1000
        rates.get(c.name)?.push(rate)
        rows.push([String(round), c.name, rate.toFixed(0), `${done.cpuUsPerRecord.toFixed(1)} µs`])
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
    for (const c of contenders) c.child.send('exit')
    await admin.close()
    await cluster.stop()
    await rm(work, { recursive: true, force: true })
  }
}
