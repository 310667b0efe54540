/**
 * `spillway dead-letters replay --from-topic T`: the consumer's and the sinks' dead letters live in a Kafka
 * topic. Once their cause is fixed, this reads the topic from the beginning (or from `--since`) to the end
 * it had when the command started, and sends each dead letter back to the topic it came from (its
 * `spillway-source-topic` header, or `--to`) with its original id, key, value and headers, minus the
 * dead-letter headers. A Kafka topic is append-only: the dead letters stay there, so a later replay should
 * use `--since`. Consumers skip what they already handled by id (`dedupe`), sinks by their unique id.
 */
import { createConsumer } from '../consumer/consumer.ts'
import { DEAD_LETTER_HEADERS } from '../consumer/dead-letters.ts'
import { RETRY_HEADERS } from '../consumer/retry/headers.ts'
import type { ConsumedRecord } from '../consumer/types.ts'
import { SpillwayError } from '../errors.ts'
import { createProducer } from '../producer/producer.ts'
import { acquireCluster } from '../transport/registry.ts'

export interface TopicReplayOptions {
  readonly brokers: readonly string[]
  readonly fromTopic: string
  readonly to: string | undefined
  /** ms since the epoch: only dead letters written since then. */
  readonly since: number | undefined
  readonly dryRun: boolean
  readonly timeoutMs: number
}

// what a dead letter says about its failures (and its retry tiers) does not go back to the source
const STRIPPED = new Set<string>([
  ...Object.values(DEAD_LETTER_HEADERS),
  ...Object.values(RETRY_HEADERS),
  'spillway-id',
])

const header = (r: ConsumedRecord<Buffer | null>, name: string): string | undefined =>
  r.headers.find(([n]) => n === name)?.[1].toString()

/** `2026-12-01T00:00:00Z`, or an age: `90m`, `6h`, `2d`. */
export function parseSince(value: string, now = Date.now()): number {
  const age = /^(\d+)(m|h|d)$/.exec(value)
  if (age) return now - Number(age[1]) * { m: 60_000, h: 3_600_000, d: 86_400_000 }[age[2] as 'm' | 'h' | 'd']
  const at = Date.parse(value)
  if (Number.isNaN(at))
    throw new SpillwayError(
      'SPW_ERR_INVALID_OPTION',
      `--since must be a date (2026-12-01T00:00:00Z) or an age (90m, 6h, 2d), not ${value}`,
      { details: { key: 'since' } },
    )
  return at
}

/** The end offset of every partition of the topic, as it is now. */
async function endOffsets(
  brokers: readonly string[],
  topic: string,
  timeoutMs: number,
): Promise<Map<number, bigint>> {
  const lease = acquireCluster(
    { brokers: [...brokers], clientId: 'spillway-replay', thread: 'main' },
    { purpose: 'admin', lingerMs: 0 },
  )
  try {
    const partitions = await lease.cluster.admin.partitions(topic, timeoutMs)
    const listed = await lease.cluster.admin.listOffsets(
      Array.from({ length: partitions }, (_, partition) => ({ topic, partition, timestamp: -1n })),
      timeoutMs,
    )
    return new Map(listed.map((o) => [o.partition, o.offset]))
  } finally {
    await lease.release()
  }
}

export async function replayFromTopic(
  options: TopicReplayOptions,
  out: NodeJS.WritableStream,
): Promise<number> {
  const ends = await endOffsets(options.brokers, options.fromTopic, options.timeoutMs)
  const letters: ConsumedRecord<Buffer | null>[] = []
  const reached = new Set<number>([...ends].filter(([, end]) => end === 0n).map(([p]) => p))
  let done: () => void = () => undefined
  const finished = new Promise<void>((resolve) => {
    done = resolve
  })
  if (reached.size === ends.size) done()
  const consumer = createConsumer({
    brokers: options.brokers,
    clientId: 'spillway-replay',
    topics: [options.fromTopic],
    from: options.since === undefined ? 'beginning' : { timestamp: options.since },
    ordering: 'partition',
    dedupe: false,
    handler: (record) => {
      const end = ends.get(record.partition) ?? 0n
      if (record.offset < end && (options.since === undefined || record.timestamp >= options.since))
        letters.push(record)
      if (record.offset + 1n >= end && !reached.has(record.partition)) {
        reached.add(record.partition)
        if (reached.size === ends.size) done()
      }
    },
  })
  await consumer.run()
  // partitions with nothing since --since: their first fetch says so
  const watch = setInterval(() => {
    for (const p of consumer.stats().partitions) {
      const end = ends.get(p.partition) ?? 0n
      if (p.watermark >= end && !reached.has(p.partition)) {
        reached.add(p.partition)
        if (reached.size === ends.size) done()
      }
    }
  }, 100)
  const timer = setTimeout(done, options.timeoutMs)
  try {
    await finished
  } finally {
    clearInterval(watch)
    clearTimeout(timer)
    await consumer.close()
  }
  if (reached.size < ends.size)
    throw new SpillwayError(
      'SPW_ERR_TIMEOUT',
      `read ${letters.length} dead letters but not the whole of ${options.fromTopic} within ${options.timeoutMs} ms; nothing was replayed (raise --timeout)`,
    )
  const routed = letters.map((r) => ({
    record: r,
    topic: options.to ?? header(r, DEAD_LETTER_HEADERS.topic),
  }))
  const unroutable = routed.filter((r) => r.topic === undefined).length
  const chosen = routed.filter(
    (r): r is { record: ConsumedRecord<Buffer | null>; topic: string } => r.topic !== undefined,
  )
  const byTopic = new Map<string, number>()
  for (const c of chosen) {
    const reason = header(c.record, DEAD_LETTER_HEADERS.code) ?? 'unknown'
    const key = `${c.topic} (${reason})`
    byTopic.set(key, (byTopic.get(key) ?? 0) + 1)
  }
  const summary = [...byTopic].map(([t, n]) => `${t}: ${n}`).join(', ') || 'none'
  const skipped =
    unroutable > 0 ? `; ${unroutable} without a spillway-source-topic header are skipped (use --to)` : ''
  if (options.dryRun) {
    out.write(`would replay ${chosen.length} dead letters from ${options.fromTopic} (${summary})${skipped}\n`)
    return 0
  }
  if (chosen.length === 0) {
    out.write(`nothing to replay from ${options.fromTopic}${skipped}\n`)
    return 0
  }
  const producer = await createProducer({ brokers: [...options.brokers], ack: 'kafka', transportLingerMs: 0 })
  try {
    const results = await producer.sendTo(
      chosen.map(({ record, topic }) => ({
        topic,
        event: {
          id: record.id,
          value: record.value,
          timestamp: record.timestamp,
          headers: record.headers.filter(([name]) => !STRIPPED.has(name)),
          ...(record.key === null ? {} : { key: record.key }),
        },
      })),
    )
    const refused = results.filter((r) => r.status === 'refused')
    const first = refused[0]
    if (first?.status === 'refused')
      throw new SpillwayError(
        first.error.code,
        `${results.length - refused.length} of ${results.length} dead letters were replayed; the others were refused: ${first.error.message}`,
        { cause: first.error },
      )
  } finally {
    await producer.close()
  }
  out.write(
    `replayed ${chosen.length} dead letters from ${options.fromTopic} (${summary}) with their original ids${skipped}; ` +
      `they stay in ${options.fromTopic} (a Kafka topic is append-only): replay later ones with --since\n`,
  )
  return 0
}
