/**
 * Incident 3: a consumer round-robined blocking fetches over its partitions. An empty partition held the
 * loop for its 10 s fetch wait, and a backlogged partition of ~800 KB records got one record per round
 * (1 MiB per partition per fetch), so it lagged for days.
 *
 * Here one consumer owns a topic of 12 partitions: one holds a backlog of ~800 KB records in runs of
 * 200–300 copies of one key, the others are empty or get a trickle. The backlog must drain about as fast
 * as the same consumer drains the same data from a topic of one partition, with no long gap between
 * handler calls, and with `coalesce` the handler sees each buffered key once. The precise ratio, and
 * KafkaJS configured as in the incident beside it, are in bench/consumer-lag.ts; the full 2,000-record
 * backlog runs in `npm run soak` (SPILLWAY_SOAK=1).
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { type ConsumedRecord, createConsumer } from '../../src/index.ts'
import { createTopic, produceRaw, testKafka } from '../helpers/kafka.ts'

const RECORDS = process.env.SPILLWAY_SOAK ? 2000 : 300
const RECORD_BYTES = 800 * 1024

/** Runs of 200–300 copies of one key, as in the incident. */
function backlog(partition: number): { key: string; value: Buffer; partition: number }[] {
  const out: { key: string; value: Buffer; partition: number }[] = []
  let run = 0
  while (out.length < RECORDS) {
    const length = 200 + ((run * 37) % 101)
    for (let i = 0; i < length && out.length < RECORDS; i++) {
      out.push({ key: `run-${run}`, value: Buffer.alloc(RECORD_BYTES, run % 251), partition })
    }
    run++
  }
  return out
}

interface Drain {
  readonly ms: number
  readonly maxGapMs: number
  readonly calls: number
  readonly coalesced: number
  readonly handled: number
  readonly deliveries: number
}

async function drain(topic: string, options: { coalesce?: boolean; trickle?: string } = {}): Promise<Drain> {
  const calls: number[] = []
  const consumer = createConsumer({
    brokers: testKafka().bootstrap,
    topics: [topic],
    coalesce: options.coalesce ?? false,
    handler: (record) => {
      const r = record as ConsumedRecord
      if (r.value !== null && r.value.length === RECORD_BYTES) calls.push(performance.now())
    },
  })
  let trickling = options.trickle !== undefined
  const trickle = (async () => {
    let n = 0
    while (trickling) {
      await produceRaw(options.trickle as string, [{ value: `trickle-${n}`, partition: 1 + (n % 11) }])
      n++
      await new Promise((r) => setTimeout(r, 150))
    }
  })()
  try {
    await consumer.run()
    const deadline = performance.now() + 300_000
    const backlogDone = (): number => {
      const s = consumer.stats()
      const p = s.partitions.find((x) => x.partition === 0)
      return p ? Number(p.watermark) : 0
    }
    while (backlogDone() < RECORDS) {
      if (performance.now() > deadline) throw new Error(`drained ${backlogDone()} of ${RECORDS}`)
      await new Promise((r) => setTimeout(r, 20))
    }
    const stats = consumer.stats()
    let maxGap = 0
    for (let i = 1; i < calls.length; i++)
      maxGap = Math.max(maxGap, (calls[i] as number) - (calls[i - 1] as number))
    return {
      ms: (calls.at(-1) ?? 0) - (calls[0] ?? 0),
      maxGapMs: maxGap,
      calls: calls.length,
      coalesced: stats.coalesced,
      handled: stats.handled,
      deliveries: stats.deliveries,
    }
  } finally {
    trickling = false
    await trickle
    await consumer.close()
  }
}

test(`the lagging partition: ${RECORDS} records of 800 KB behind 11 empty or trickling partitions drain like a lone partition`, async (t) => {
  const single = await createTopic(t, 'lag-single', { partitions: 1 })
  const wide = await createTopic(t, 'lag-wide', { partitions: 12 })
  await produceRaw(single, backlog(0), { chunk: 1 })
  await produceRaw(wide, backlog(0), { chunk: 1 })

  const alone = await drain(single)
  const beside = await drain(wide, { trickle: wide })
  const ratio = alone.ms / beside.ms
  process.stdout.write(
    `# lagging partition: alone ${Math.round((RECORDS / alone.ms) * 1000)} rec/s, beside 11 others ${Math.round((RECORDS / beside.ms) * 1000)} rec/s (ratio ${ratio.toFixed(2)}); longest gap between handler calls ${beside.maxGapMs.toFixed(1)} ms\n`,
  )
  assert.equal(beside.calls, RECORDS, 'every backlog record handled once')
  // the benchmark holds the 0.9× target; the test asserts the shape with room for a noisy machine
  assert.ok(ratio >= 0.5, `drain rate beside empty partitions is ${ratio.toFixed(2)}× the lone partition's`)
  assert.ok(
    beside.maxGapMs <= 100,
    `no gap between handler calls over 100 ms (longest ${beside.maxGapMs.toFixed(1)} ms)`,
  )

  const coalesced = await drain(wide, { coalesce: true })
  process.stdout.write(
    `# coalesce: ${coalesced.calls} handler calls for ${RECORDS} backlog records in ${coalesced.deliveries} fetched windows\n`,
  )
  assert.equal(coalesced.calls + coalesced.coalesced, RECORDS, 'every record handled or superseded')
  // runs of 200–300 copies of one key: a fetched window holds at most two keys, so at most two calls
  const runs = new Set(backlog(0).map((r) => r.key)).size
  assert.ok(
    coalesced.calls <= 2 * coalesced.deliveries,
    `at most the distinct keys of each window: ${coalesced.calls} calls, ${coalesced.deliveries} windows`,
  )
  assert.ok(coalesced.calls < RECORDS / 2, `coalesce handles far fewer records (${coalesced.calls})`)
  assert.ok(coalesced.calls >= runs, 'but the newest of every key')
})
