/**
 * Incident 2, outage → out of memory → restart loses data. Toxiproxy cuts the only path to the broker
 * for two minutes while events arrive at a fixed rate. The producer's memory stays flat (events spill to
 * the local log), it is kill -9'd mid-outage and restarted, and after the cut heals every acknowledged
 * event is in Kafka in per-key order; the only duplicates are counted replays. Then a tiny disk budget
 * turns the answer into SPW_ERR_BACKPRESSURE without losing anything acknowledged.
 */
import assert from 'node:assert/strict'
import { mkdir, writeFile } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { tempDir } from '../helpers/fs.ts'
import { copiesById, createTopic, type RawMessage, readTopic, testKafka } from '../helpers/kafka.ts'
import { type SteadyRun, sleep, startSteadyProducer, stopSteadyProducer } from './helpers.ts'

const OUTAGE_MS = Number(
  process.env.SPILLWAY_OUTAGE_MS ?? (process.env.SPILLWAY_SOAK === '1' ? 600_000 : 120_000),
)
const RATE = 200

function headerN(m: RawMessage): number {
  return Number(m.headerEntries.find(([k]) => k.toString() === 'n')?.[1].toString())
}

function checkDelivery(messages: RawMessage[], runs: SteadyRun[], label: string): { duplicates: number } {
  const copies = copiesById(messages)
  for (const run of runs) {
    for (const [id] of run.accepted)
      assert.ok((copies.get(id) ?? 0) >= 1, `${label}: acknowledged event ${id} is in Kafka`)
  }
  // per-key order: n rises along each key's partition, except where a replayed copy repeats an earlier n
  const seen = new Set<string>()
  const lastPerKey = new Map<string, number>()
  for (const m of messages) {
    const id = m.headerEntries.find(([k]) => k.toString() === 'spillway-id')?.[1].toString() as string
    if (seen.has(id)) continue
    seen.add(id)
    const key = m.key.toString()
    const n = headerN(m)
    assert.ok(
      (lastPerKey.get(key) ?? -1) < n,
      `${label}: per-key order for ${key} (${n} after ${lastPerKey.get(key)})`,
    )
    lastPerKey.set(key, n)
  }
  let duplicates = 0
  for (const c of copies.values()) duplicates += c - 1
  return { duplicates }
}

test(`a ${OUTAGE_MS / 1000} s outage with a kill -9 in the middle: bounded memory, nothing acknowledged lost`, async (t) => {
  const kafka = testKafka()
  t.after(() => kafka.toxiproxy.reset())
  const topic = await createTopic(t, 'outage', { partitions: 3 })
  const dir = await tempDir(t, 'spillway-outage-')
  const brokers = kafka.proxiedBootstrap

  const first = await startSteadyProducer({ dir, topic, brokers, rate: RATE, firstN: 0 })
  t.after(() => first.child.kill('SIGKILL'))
  await sleep(2000)
  await kafka.toxiproxy.cut(kafka.proxyName)
  const cutAt = Date.now()
  await sleep(OUTAGE_MS / 2)
  first.child.kill('SIGKILL')
  await first.exited

  const second = await startSteadyProducer({ dir, topic, brokers, rate: RATE, firstN: 1_000_000 })
  t.after(() => second.child.kill('SIGKILL'))
  await sleep(Math.max(0, OUTAGE_MS - (Date.now() - cutAt)))
  const healAt = Date.now()
  await kafka.toxiproxy.heal(kafka.proxyName)
  await sleep(2000)
  await stopSteadyProducer(second)
  assert.ok(second.stats, 'the restarted producer reported its stats')
  assert.equal(second.stats?.drained, true, 'the backlog drained after the cut healed')

  // memory: flat during the outage, whatever the backlog
  const samples = [...first.rss, ...second.rss]
  const csv = ['ms_since_cut,rss_bytes', ...samples.map((s) => `${s.at - cutAt},${s.bytes}`)].join('\n')
  await mkdir('test-artifacts', { recursive: true })
  await writeFile(join('test-artifacts', 'outage-rss.csv'), `${csv}\n`)
  // During the outage the backlog grows on disk only: RSS must stay flat, whatever the backlog.
  const during = samples.filter((s) => s.at >= cutAt && s.at < healAt)
  const baseline = Math.min(...first.rss.slice(0, 4).map((s) => s.bytes))
  const peak = Math.max(...during.map((s) => s.bytes))
  const afterHeal = Math.max(0, ...samples.filter((s) => s.at >= healAt).map((s) => s.bytes))
  const budget = 8 * 1024 * 1024 + 256 * 1024 // log.maxQueuedBytes + batch.maxBytes in the fixture
  t.diagnostic(
    `RSS baseline ${(baseline / 1e6).toFixed(1)} MB, peak during the outage ${(peak / 1e6).toFixed(1)} MB over ${during.length} samples, peak while draining the backlog ${(afterHeal / 1e6).toFixed(1)} MB`,
  )
  assert.ok(
    peak <= baseline + budget + 48 * 1024 * 1024,
    'RSS stays within the memory budget plus a constant',
  )
  // and it does not trend with the backlog: the restarted process ends the outage about where it began
  const restarted = second.rss.filter((s) => s.at < healAt)
  const quarter = Math.max(1, Math.ceil(restarted.length / 4))
  const early = Math.max(...restarted.slice(0, quarter).map((s) => s.bytes))
  const late = Math.max(...restarted.slice(-quarter).map((s) => s.bytes))
  assert.ok(
    late - early < 24 * 1024 * 1024,
    `no growth with the backlog (${((late - early) / 1e6).toFixed(1)} MB)`,
  )
  const acknowledged = first.accepted.size + second.accepted.size
  assert.ok(
    acknowledged > (RATE * OUTAGE_MS) / 1000 / 2,
    `events kept arriving during the outage (${acknowledged})`,
  )

  const messages = await readTopic(topic, { expected: acknowledged, idleMs: 2000, timeoutMs: 180_000 })
  const { duplicates } = checkDelivery(messages, [first, second], 'outage')
  const replayed = Number(second.stats?.replayed ?? 0)
  t.diagnostic(
    `acknowledged ${acknowledged}, in Kafka ${messages.length}, duplicates ${duplicates}, replays counted ${replayed}`,
  )
  assert.ok(duplicates <= replayed, `duplicates (${duplicates}) only from counted replays (${replayed})`)
})

test('a tiny disk budget during an outage answers SPW_ERR_BACKPRESSURE and loses nothing acknowledged', async (t) => {
  const kafka = testKafka()
  t.after(() => kafka.toxiproxy.reset())
  const topic = await createTopic(t, 'budget')
  const dir = await tempDir(t, 'spillway-budget-')
  await kafka.toxiproxy.cut(kafka.proxyName)
  const run = await startSteadyProducer({
    dir,
    topic,
    brokers: kafka.proxiedBootstrap,
    rate: 200,
    firstN: 0,
    maxBytes: 256 * 1024,
  })
  t.after(() => run.child.kill('SIGKILL'))
  const until = performance.now() + 30_000
  while ((run.refused.get('SPW_ERR_BACKPRESSURE') ?? 0) < 20 && performance.now() < until) await sleep(100)
  assert.ok(
    (run.refused.get('SPW_ERR_BACKPRESSURE') ?? 0) >= 20,
    `refusals: ${JSON.stringify([...run.refused])}`,
  )
  assert.deepEqual(
    [...run.refused.keys()],
    ['SPW_ERR_BACKPRESSURE'],
    'the only refusal is retriable backpressure',
  )
  await kafka.toxiproxy.heal(kafka.proxyName)
  await stopSteadyProducer(run)
  const messages = await readTopic(topic, { expected: run.accepted.size, idleMs: 1500 })
  checkDelivery(messages, [run], 'budget')
})
