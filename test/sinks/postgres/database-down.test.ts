/**
 * The database goes away: PostgreSQL (a server of this test's own) stopped for 30 s while events flow
 * into a `spillway sink` service, then started again. Nothing is lost or doubled, the lag recovers, and
 * the service said so the whole time: /readyz, /status.json and the status page in chromium.
 */
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { test } from 'node:test'
import pino from 'pino'
import { chromium } from 'playwright-core'
import { PostgresServer } from '../../../scripts/postgres/postgres.ts'
import { resolveSinkServiceConfig } from '../../../src/sinks/config.ts'
import { createSinkService, type SinkServiceStatus } from '../../../src/sinks/service.ts'
import { startEventFlow } from '../../helpers/event-flow.ts'
import { createTopic, randomName, testKafka } from '../../helpers/kafka.ts'
import { pgClient } from '../../helpers/postgres.ts'
import { until } from '../../helpers/wait.ts'

const executablePath = '/usr/bin/chromium'
const OUTAGE_MS = 30_000

test('PostgreSQL stopped for 30 s under load: nothing lost or doubled, lag recovers, the status page showed it', {
  skip: !existsSync(executablePath) && 'chromium is not installed (bash scripts/chromium/install)',
}, async (t) => {
  const { bootstrap } = testKafka()
  const server = await PostgresServer.start()
  t.after(() => server.stop())
  const db = server.settings
  const topic = await createTopic(t, 'sink-db-down', { partitions: 2 })
  const config = resolveSinkServiceConfig({
    port: 0,
    kafka: { brokers: bootstrap },
    sinks: [
      {
        type: 'postgres',
        name: 'analytics',
        groupId: randomName('db-down'),
        topics: [topic],
        postgres: { ...db, connectTimeoutMs: 1000 },
        table: 'events',
        createTable: true,
        maxRetryBackoffMs: 2000,
      },
    ],
  })
  const service = createSinkService(config, { logger: pino({ level: 'silent' }) })
  t.after(() => service.close())
  const { host, port } = await service.start()
  const base = `http://${host}:${port}`
  const status = async (): Promise<SinkServiceStatus['sinks'][number]> =>
    ((await (await fetch(`${base}/status.json`)).json()) as SinkServiceStatus).sinks[0] as never

  const flow = await startEventFlow(t, bootstrap, topic)
  const sent = flow.sent

  const sql = await pgClient(t, db)
  const count = async (): Promise<number> =>
    Number((await sql.query('SELECT count(*) AS n FROM events')).rows[0].n)
  await until('rows arrive', async () => (await count()) >= 200, 30_000)
  assert.equal((await fetch(`${base}/readyz`)).status, 200)

  const browser = await chromium.launch({
    executablePath,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--no-first-run',
      '--disable-background-networking',
    ],
  })
  t.after(() => browser.close())
  const page = await browser.newPage({ viewport: { width: 1100, height: 800 } })
  const problems: string[] = []
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(m.text())
  })
  page.on('pageerror', (e) => problems.push(e.message))
  await page.goto(base)
  await page.waitForSelector('[data-sink="analytics"]')
  assert.match((await page.textContent('[data-sink="analytics"] h2')) ?? '', /analytics → postgres events/)

  await sql.end()
  await server.pause()
  const stoppedAt = performance.now()
  await until('the service sees the database down', async () => !(await status()).databaseUp, 15_000)
  await page.waitForSelector('[data-role="database-down"]', { timeout: 10_000 })
  const ready = await fetch(`${base}/readyz`)
  assert.equal(ready.status, 503)
  assert.match(JSON.stringify(await ready.json()), /analytics: postgres unavailable/)
  await until(
    'a partition waits and retries',
    async () => (await status()).partitions.some((p) => p.state === 'waiting' && p.retries > 0),
    15_000,
  )
  await mkdir('test-artifacts', { recursive: true })
  await page.screenshot({ path: 'test-artifacts/sink-status-database-down.png', fullPage: true })
  const during = await status()
  assert.ok(BigInt(during.lagRecords) > 0n, 'lag builds up while the database is away')
  await new Promise((r) => setTimeout(r, Math.max(0, OUTAGE_MS - (performance.now() - stoppedAt))))

  await server.resume()
  await until('the database is back', async () => (await status()).databaseUp, 30_000)
  await page.waitForSelector('[data-role="database-down"]', { state: 'detached', timeout: 10_000 })
  await flow.stop()
  const again = await pgClient(t, db)
  await until(
    'every event is written',
    async () => Number((await again.query('SELECT count(*) AS n FROM events')).rows[0].n) >= sent.length,
    60_000,
  )
  await until('the lag is gone', async () => (await status()).lagRecords === '0', 30_000)
  assert.equal((await fetch(`${base}/readyz`)).status, 200)

  const ids = await again.query<{ id: string }>('SELECT id FROM events')
  assert.equal(ids.rowCount, sent.length, 'nothing doubled')
  const inTable = new Set(ids.rows.map((r) => r.id))
  assert.ok(
    sent.every((id) => inTable.has(id)),
    'nothing lost',
  )
  const metrics = await (await fetch(`${base}/metrics`)).text()
  assert.match(metrics, /spillway_sink_retries_total\{sink="analytics"\} [1-9]/)
  assert.match(metrics, /spillway_sink_database_up\{sink="analytics"\} 1/)
  assert.deepEqual(problems, [])
})
