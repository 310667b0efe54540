/**
 * Test access to the broker that scripts/test.ts started for this run: addresses, random names,
 * topics that clean themselves up, reading a topic back, and running Kafka's own CLI tools.
 */
import { randomUUID } from 'node:crypto'
import type { TestContext } from 'node:test'
import { Admin, Consumer, type Message, MessagesStreamModes, Producer } from '@platformatic/kafka'
import { runKafkaTool } from '../../scripts/kafka/cluster.ts'
import { ToxiproxyClient } from '../../scripts/toxiproxy/toxiproxy.ts'

function required(name: string): string {
  const value = process.env[name]
  if (!value) {
    throw new Error(
      `${name} is not set: run tests through \`npm test\` (scripts/test.ts), which starts Kafka`,
    )
  }
  return value
}

export interface TestKafka {
  /** Direct bootstrap addresses. */
  readonly bootstrap: string[]
  /** Bootstrap addresses whose every connection goes through Toxiproxy. */
  readonly proxiedBootstrap: string[]
  readonly toxiproxy: ToxiproxyClient
  readonly proxyName: string
}

export function testKafka(): TestKafka {
  return {
    bootstrap: required('SPILLWAY_TEST_BOOTSTRAP').split(','),
    proxiedBootstrap: required('SPILLWAY_TEST_PROXIED_BOOTSTRAP').split(','),
    toxiproxy: new ToxiproxyClient(required('SPILLWAY_TEST_TOXIPROXY_URL')),
    proxyName: required('SPILLWAY_TEST_PROXY_NAME'),
  }
}

/** The broker's SASL_SSL listener (SCRAM-SHA-512, a CA made for the run), as scripts/test.ts started it. */
export interface SecureKafka {
  readonly bootstrap: string[]
  readonly caFile: string
  readonly username: string
  readonly password: string
}

export function secureKafka(): SecureKafka {
  return {
    bootstrap: required('SPILLWAY_TEST_SECURE_BOOTSTRAP').split(','),
    caFile: required('SPILLWAY_TEST_SECURE_CA_FILE'),
    username: required('SPILLWAY_TEST_SECURE_USERNAME'),
    password: required('SPILLWAY_TEST_SECURE_PASSWORD'),
  }
}

export function randomName(prefix: string): string {
  return `${prefix}-${randomUUID().slice(0, 8)}`
}

export interface TopicOptions {
  readonly partitions?: number
  readonly config?: Readonly<Record<string, string>>
  readonly bootstrap?: string[]
}

/** Creates a uniquely named topic and deletes it when the test ends. */
export async function createTopic(
  t: TestContext,
  prefix: string,
  options: TopicOptions = {},
): Promise<string> {
  const topic = randomName(prefix)
  const bootstrap = options.bootstrap ?? testKafka().bootstrap
  const admin = new Admin({ clientId: 'spillway-test-admin', bootstrapBrokers: bootstrap })
  try {
    await admin.createTopics({
      topics: [topic],
      partitions: options.partitions ?? 1,
      replicas: 1,
      configs: Object.entries(options.config ?? {}).map(([name, value]) => ({ name, value })),
    })
    await waitForTopic(admin, topic, options.partitions ?? 1)
  } finally {
    await admin.close()
  }
  t.after(async () => {
    const cleanup = new Admin({ clientId: 'spillway-test-admin', bootstrapBrokers: bootstrap })
    try {
      await cleanup.deleteTopics({ topics: [topic] })
    } catch {
      // the broker may already be gone in a fault test; the data dir is removed with it
    } finally {
      await cleanup.close()
    }
  })
  return topic
}

async function waitForTopic(admin: Admin, topic: string, partitions: number): Promise<void> {
  const deadline = performance.now() + 30_000
  for (;;) {
    try {
      const metadata = await admin.metadata({ topics: [topic] })
      const info = metadata.topics.get(topic)
      if (info && info.partitionsCount === partitions && info.partitions.every((p) => p.leader >= 0)) return
    } catch {
      // not propagated yet
    }
    if (performance.now() > deadline) throw new Error(`topic ${topic} has no leaders after 30 s`)
    await new Promise((r) => setTimeout(r, 100))
  }
}

export type RawMessage = Message<Buffer, Buffer, Buffer, Buffer>

/**
 * Reads a topic from the earliest offset in a fresh consumer group until `expected` records arrived or
 * `idleMs` passed with nothing new, and returns them.
 */
export async function readTopic(
  topic: string,
  options: { expected?: number; idleMs?: number; timeoutMs?: number; bootstrap?: string[] } = {},
): Promise<RawMessage[]> {
  const consumer = new Consumer({
    clientId: 'spillway-test-reader',
    groupId: randomName('reader'),
    bootstrapBrokers: options.bootstrap ?? testKafka().bootstrap,
    maxWaitTime: 200,
  })
  const out: RawMessage[] = []
  const stream = await consumer.consume({
    topics: [topic],
    mode: MessagesStreamModes.EARLIEST,
    autocommit: false,
  })
  const idleMs = options.idleMs ?? 3000
  const deadline = performance.now() + (options.timeoutMs ?? 120_000)
  try {
    await new Promise<void>((resolve, reject) => {
      let idle: NodeJS.Timeout | undefined
      const done = (): void => {
        clearTimeout(idle)
        clearInterval(watchdog)
        resolve()
      }
      const arm = (): void => {
        clearTimeout(idle)
        idle = setTimeout(done, idleMs)
      }
      const watchdog = setInterval(() => {
        if (performance.now() > deadline) done()
      }, 250)
      stream.on('data', (message: RawMessage) => {
        out.push(message)
        if (options.expected !== undefined && out.length >= options.expected) {
          // keep reading briefly so duplicates beyond `expected` are seen too
          arm()
          return
        }
        if (options.expected === undefined) arm()
      })
      stream.on('error', reject)
      if (options.expected === undefined) arm()
    })
  } finally {
    await stream.close()
    await consumer.close()
  }
  return out
}

/** Runs a Kafka CLI class against the test broker and fails with its output when it exits non-zero. */
export async function kafkaTool(
  mainClass: string,
  args: readonly string[],
  timeoutMs = 120_000,
): Promise<string> {
  const result = await runKafkaTool(mainClass, args, { timeoutMs })
  if (result.code !== 0) {
    throw new Error(`${mainClass} exited with ${result.code}\n${result.stderr.slice(-3000)}`)
  }
  return result.stdout
}

/** Sets one topic config (e.g. min.insync.replicas) with IncrementalAlterConfigs. */
export async function setTopicConfig(
  topic: string,
  name: string,
  value: string,
  bootstrap?: string[],
): Promise<void> {
  const admin = new Admin({
    clientId: 'spillway-test-admin',
    bootstrapBrokers: bootstrap ?? testKafka().bootstrap,
  })
  try {
    await admin.incrementalAlterConfigs({
      resources: [{ resourceType: 2, resourceName: topic, configs: [{ name, configOperation: 0, value }] }],
    })
  } finally {
    await admin.close()
  }
}

/** Ids (spillway-id header) of records, and how many copies of each. */
export function copiesById(messages: readonly RawMessage[]): Map<string, number> {
  const copies = new Map<string, number>()
  for (const m of messages) {
    const id = m.headerEntries.find(([k]) => k.toString() === 'spillway-id')?.[1].toString()
    if (id !== undefined) copies.set(id, (copies.get(id) ?? 0) + 1)
  }
  return copies
}

export function percentile(values: readonly number[], p: number): number {
  const sorted = [...values].sort((a, b) => a - b)
  return (
    sorted[Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))] ?? Number.NaN
  )
}

export interface PlainRecord {
  readonly key?: string | Buffer | null
  readonly value: string | Buffer
  readonly partition?: number
  readonly headers?: Readonly<Record<string, string>>
  /** CreateTime in ms since the epoch (default: now). */
  readonly timestamp?: number
}

/** Writes records with a plain @platformatic/kafka producer (what any other client would write). */
export async function produceRaw(
  topic: string,
  records: readonly PlainRecord[],
  options: { bootstrap?: string[]; chunk?: number } = {},
): Promise<void> {
  const producer = new Producer({
    clientId: 'spillway-test-writer',
    bootstrapBrokers: options.bootstrap ?? testKafka().bootstrap,
    // idempotent, with a long timeout: a produce request retried on a busy machine must not write its
    // records twice, or tests that count copies would see duplicates they never asked for
    idempotent: true,
    timeout: 30_000,
  } as ConstructorParameters<typeof Producer<Buffer, Buffer, Buffer, Buffer>>[0])
  const asBuffer = (v: string | Buffer): Buffer => (typeof v === 'string' ? Buffer.from(v) : v)
  try {
    const chunk = options.chunk ?? 500
    for (let i = 0; i < records.length; i += chunk) {
      await producer.send({
        messages: records.slice(i, i + chunk).map((r) => ({
          topic,
          ...(r.key != null ? { key: asBuffer(r.key) } : {}),
          value: asBuffer(r.value),
          ...(r.partition !== undefined ? { partition: r.partition } : {}),
          ...(r.timestamp !== undefined ? { timestamp: BigInt(r.timestamp) } : {}),
          ...(r.headers
            ? {
                headers: new Map(Object.entries(r.headers).map(([k, v]) => [Buffer.from(k), Buffer.from(v)])),
              }
            : {}),
        })) as never,
      })
    }
  } finally {
    await producer.close()
  }
}
