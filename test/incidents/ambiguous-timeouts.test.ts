/**
 * Incident 4's producer side, ambiguous timeouts: latency above the request timeout, then connections
 * reset at random during sends. Every accepted id arrives, and copies per id stay within 1 + the replays
 * the producer counted: they do not grow with the number of retries.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { tempDir } from '../helpers/fs.ts'
import { copiesById, createTopic, readTopic, testKafka } from '../helpers/kafka.ts'
import { sleep, startSteadyProducer, stopSteadyProducer } from './helpers.ts'

const PHASE_MS = process.env.SPILLWAY_SOAK === '1' ? 120_000 : 10_000

test('latency above the request timeout and random resets: every id arrives, copies bounded by counted replays', async (t) => {
  const kafka = testKafka()
  t.after(() => kafka.toxiproxy.reset())
  const topic = await createTopic(t, 'ambiguous', { partitions: 3 })
  const dir = await tempDir(t, 'spillway-ambiguous-')
  // deliveryTimeoutMs 2000: every call to Kafka is cut at 2 s, well under the 3 s of injected latency
  const run = await startSteadyProducer({
    dir,
    topic,
    brokers: kafka.proxiedBootstrap,
    rate: 200,
    firstN: 0,
    deliveryTimeoutMs: 2000,
  })
  t.after(() => run.child.kill('SIGKILL'))
  await sleep(1000)

  await kafka.toxiproxy.addToxic(kafka.proxyName, {
    name: 'slow',
    type: 'latency',
    stream: 'downstream',
    attributes: { latency: 3000, jitter: 500 },
  })
  await sleep(PHASE_MS)
  await kafka.toxiproxy.removeToxic(kafka.proxyName, 'slow')
  // connections reset at random moments, mid-request
  const resetUntil = performance.now() + PHASE_MS
  while (performance.now() < resetUntil) {
    await kafka.toxiproxy.addToxic(kafka.proxyName, {
      name: 'reset',
      type: 'reset_peer',
      attributes: { timeout: Math.floor(Math.random() * 300) },
    })
    await sleep(200 + Math.random() * 600)
    await kafka.toxiproxy.removeToxic(kafka.proxyName, 'reset')
    await sleep(300 + Math.random() * 700)
  }
  await sleep(1000)
  await stopSteadyProducer(run)
  assert.equal(run.stats?.drained, true)
  assert.ok(Number(run.stats?.failedBatches) > 0, `the faults did break sends: ${JSON.stringify(run.stats)}`)

  const messages = await readTopic(topic, { expected: run.accepted.size, idleMs: 2000 })
  const copies = copiesById(messages)
  const replayed = Number(run.stats?.replayed ?? 0)
  let duplicates = 0
  let worst = 0
  for (const [id] of run.accepted) {
    const c = copies.get(id) ?? 0
    assert.ok(c >= 1, `accepted event ${id} arrived`)
    assert.ok(c <= 1 + replayed, `copies of ${id} (${c}) ≤ 1 + replays (${replayed})`)
    duplicates += c - 1
    worst = Math.max(worst, c)
  }
  t.diagnostic(
    `accepted ${run.accepted.size}, failed batches ${run.stats?.failedBatches}, replays counted ${replayed}, duplicates ${duplicates}, most copies of one id ${worst}`,
  )
  assert.ok(duplicates <= replayed, 'every duplicate is a counted replay')
  // the idempotent producer retries in-doubt requests with the same sequence numbers, and spillway waits
  // for their real outcome before sending again: copies do not grow with the number of failed attempts
  assert.ok(
    worst <= 3,
    `at most two extra copies of any id across ${run.stats?.failedBatches} failed batches (saw ${worst})`,
  )
})
