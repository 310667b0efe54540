/**
 * Incident 4, the duplicate spiral, on the consumer side: every event arrives 10 times, every first
 * attempt fails, and the path the retry tiers' transactional producer takes to the broker has latency
 * above the request deadline and connection resets (Toxiproxy). The handler's side effect, a plain
 * INSERT into PostgreSQL with no unique key to hide a second one, happens once per event id; Kafka's
 * console consumer (read_committed) finds at most one copy of an id per tier, so the tier topics hold one
 * record per event however many copies and failed transactions there were.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import pg from 'pg'
import { type ConsumedRecord, createConsumer } from '../../src/index.ts'
import { createTopic, kafkaTool, produceRaw, randomName, testKafka } from '../helpers/kafka.ts'
import { freshDatabase, pgClient } from '../helpers/postgres.ts'
import { until } from '../helpers/wait.ts'

const EVENTS = 150
const COPIES = 10

const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))

/** Event ids per record in a topic, read by Kafka's console consumer at the given isolation level. */
async function idsIn(topic: string, isolation: 'read_committed' | 'read_uncommitted'): Promise<string[]> {
  const out = await kafkaTool('org.apache.kafka.tools.consumer.ConsoleConsumer', [
    '--bootstrap-server',
    testKafka().bootstrap.join(','),
    '--topic',
    topic,
    '--from-beginning',
    '--isolation-level',
    isolation,
    '--timeout-ms',
    '8000',
    '--formatter-property',
    'print.headers=true',
    '--formatter-property',
    'print.value=false',
  ]).catch((error: Error) => {
    // the console consumer exits non-zero when its timeout ends the read; what it printed still counts
    const printed = /exited with \d+\n([\s\S]*)$/.exec(error.message)?.[1] ?? ''
    if (!/TimeoutException/.test(printed)) throw error
    return ''
  })
  return out
    .split('\n')
    .map((line) => /spillway-id:([^,\s]+)/.exec(line)?.[1])
    .filter((id): id is string => id !== undefined)
}

function copies(ids: readonly string[]): Map<string, number> {
  const out = new Map<string, number>()
  for (const id of ids) out.set(id, (out.get(id) ?? 0) + 1)
  return out
}

test('the duplicate spiral: 10 copies of every event, failing first attempts, a faulty path to the tier producer: one row per id, at most one copy per tier', async (t) => {
  const kafka = testKafka()
  const topic = await createTopic(t, 'spiral', { partitions: 3 })
  const db = await freshDatabase(t)
  const sql = await pgClient(t, db)
  await sql.query('CREATE TABLE effects (id text NOT NULL, stage int NOT NULL)')
  const writer = new pg.Pool({ ...db, max: 4 })
  t.after(() => writer.end())

  const consumer = createConsumer({
    brokers: kafka.bootstrap,
    groupId: randomName('spiral'),
    topics: [topic],
    requestTimeoutMs: 2000,
    retry: {
      tiers: [{ delayMs: 300 }, { delayMs: 300 }],
      transactionTimeoutMs: 5000,
      connection: { brokers: kafka.proxiedBootstrap },
    },
    handler: async (record) => {
      const r = record as ConsumedRecord
      const stage = r.topic === topic ? 0 : Number(r.topic.slice(-1))
      // the downstream call fails the first time for every event, and a second time for a third of them
      if (stage === 0) throw new Error('downstream refused the first attempt')
      if (stage === 1 && Number(r.id.slice(2)) % 3 === 0) throw new Error('still refusing')
      await writer.query('INSERT INTO effects (id, stage) VALUES ($1, $2)', [r.id, stage])
    },
  })
  t.after(() => consumer.close())
  const troubles: string[] = []
  consumer.on('status', (s) => {
    if (s.type === 'connection' || s.type === 'commit-refused') troubles.push(JSON.stringify(s))
    if (process.env.SPILLWAY_TEST_VERBOSE)
      console.error(JSON.stringify(s, (_, v) => (typeof v === 'bigint' ? String(v) : v)))
  })
  await consumer.run()

  // faults on the tier producer's path while the copies arrive: latency past the 2 s deadline, resets
  let faulting = true
  const faults = (async () => {
    while (faulting) {
      await kafka.toxiproxy.addToxic(kafka.proxyName, {
        name: 'slow',
        type: 'latency',
        stream: 'downstream',
        attributes: { latency: 3000, jitter: 500 },
      })
      await sleep(1500)
      await kafka.toxiproxy.removeToxic(kafka.proxyName, 'slow')
      await kafka.toxiproxy.addToxic(kafka.proxyName, {
        name: 'reset',
        type: 'reset_peer',
        attributes: { timeout: Math.floor(Math.random() * 200) },
      })
      await sleep(400 + Math.random() * 400)
      await kafka.toxiproxy.removeToxic(kafka.proxyName, 'reset')
      await sleep(300 + Math.random() * 500)
    }
  })()
  t.after(() => kafka.toxiproxy.reset().catch(() => undefined))
  for (let pass = 0; pass < COPIES; pass++) {
    await produceRaw(
      topic,
      Array.from({ length: EVENTS }, (_, i) => ({
        key: `k${i % 40}`,
        value: `{"n":${i},"pass":${pass}}`,
        headers: { 'spillway-id': `e-${i}` },
      })),
    )
    await sleep(1500)
  }
  faulting = false
  await faults
  await kafka.toxiproxy.reset()

  const rowCount = async (): Promise<number> =>
    Number((await sql.query('SELECT count(DISTINCT id) AS n FROM effects')).rows[0].n)
  await until('every event has its effect', async () => (await rowCount()) === EVENTS, 120_000).catch(
    async (error: Error) => {
      const { partitions, ...rest } = consumer.stats()
      throw new Error(
        `${error.message}: ${await rowCount()} of ${EVENTS}; ${JSON.stringify(rest, (_, v) => (typeof v === 'bigint' ? String(v) : v))}\n${troubles.slice(-10).join('\n')}`,
      )
    },
  )
  await until('nothing left in the tiers', () => consumer.stats().delayed === 0, 30_000)
  await sleep(1500)

  const perId = await sql.query('SELECT id, count(*)::int AS n FROM effects GROUP BY id')
  assert.equal(perId.rows.length, EVENTS)
  for (const row of perId.rows) assert.equal(row.n, 1, `the effect of ${row.id} happened ${row.n} times`)

  const stats = consumer.stats()
  assert.ok(
    stats.transactionsAborted > 0,
    `the faults broke some forwarding transactions: ${stats.transactions} begun, ${stats.transactionsAborted} aborted`,
  )
  const tier1 = copies(await idsIn(`${topic}.retry-1`, 'read_committed'))
  const tier2 = copies(await idsIn(`${topic}.retry-2`, 'read_committed'))
  const written1 = (await idsIn(`${topic}.retry-1`, 'read_uncommitted')).length
  for (const [id, n] of [...tier1, ...tier2]) assert.ok(n <= 1, `${id} has ${n} copies in one tier`)
  // the tiers hold one record per event that went there: the 10 passes did not multiply them
  assert.equal(tier1.size, EVENTS)
  assert.equal(
    [...tier1.values()].reduce((a, b) => a + b, 0),
    EVENTS,
  )
  assert.equal(tier2.size, EVENTS / 3)
  assert.deepEqual(await idsIn(`${topic}.dead-letters`, 'read_committed'), [])
  t.diagnostic(
    `${EVENTS * COPIES} records in, ${stats.duplicates} skipped as copies; ${stats.transactions} transactions, ${stats.transactionsAborted} aborted; tier 1 holds ${EVENTS} committed records of ${written1} written`,
  )
})
