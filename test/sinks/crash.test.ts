/**
 * The crash scenario: `spillway sink`, running a PostgreSQL sink and a ClickHouse sink on the same topic,
 * killed with SIGKILL again and again while events flow, then run to the end and stopped with SIGTERM.
 * Every event is in PostgreSQL exactly once and in ClickHouse exactly once when read with FINAL, and the
 * offsets each database keeps cover every record.
 */
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { ClickHouseServer } from '../../scripts/clickhouse/clickhouse.ts'
import { startEventFlow } from '../helpers/event-flow.ts'
import { createTopic, randomName, testKafka } from '../helpers/kafka.ts'
import { freshDatabase, pgClient } from '../helpers/postgres.ts'
import { until } from '../helpers/wait.ts'

const bin = fileURLToPath(new URL('../../bin/spillway.js', import.meta.url))
const KILLS = 6

const children = new Set<ChildProcess>()

function startSink(config: string): {
  child: ChildProcess
  exited: Promise<number | null>
  output: () => string
} {
  const child = spawn(process.execPath, [bin, 'sink', '--config', config], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  children.add(child)
  child.once('exit', () => children.delete(child))
  let output = ''
  child.stdout?.setEncoding('utf8').on('data', (d: string) => {
    output += d
  })
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    output += d
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  return { child, exited, output: () => output }
}

test('kill -9 `spillway sink` mid-flow, again and again: every event is in PostgreSQL once and in ClickHouse once with FINAL', async (t) => {
  const { bootstrap } = testKafka()
  t.after(() => {
    for (const child of children) child.kill('SIGKILL')
  })
  const topic = await createTopic(t, 'sink-crash', { partitions: 3 })
  const db = await freshDatabase(t)
  const sql = await pgClient(t, db)
  const clickhouse = await ClickHouseServer.start()
  t.after(() => clickhouse.stop())
  const ch = clickhouse.settings
  const dir = await mkdtemp(join(tmpdir(), 'spillway-sink-crash-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const passwordFile = join(dir, 'pg-password')
  await writeFile(passwordFile, `${db.password}\n`)
  const config = join(dir, 'sink.json')
  await writeFile(
    config,
    JSON.stringify({
      port: 0,
      logLevel: 'info',
      shutdownTimeoutMs: 5000,
      kafka: { brokers: bootstrap },
      sinks: [
        {
          type: 'postgres',
          groupId: randomName('crash-sink'),
          topics: [topic],
          postgres: { host: db.host, port: db.port, database: db.database, user: db.user, passwordFile },
          table: 'events',
          createTable: true,
          maxBatchRows: 50,
          commitIntervalMs: 100,
        },
        {
          type: 'clickhouse',
          groupId: randomName('crash-sink-ch'),
          topics: [topic],
          clickhouse: { host: ch.host, port: ch.port, user: ch.user, password: ch.password },
          table: 'events',
          createTable: true,
          maxBatchRows: 50,
          commitIntervalMs: 100,
        },
      ],
    }),
  )
  const count = async (): Promise<number> =>
    Number((await sql.query('SELECT count(*) AS n FROM events')).rows[0].n)

  // events keep flowing the whole time the sinks are being killed: 150 every 100 ms
  const flow = await startEventFlow(t, bootstrap, topic, { perSend: 150, keys: 41 })
  const sent = flow.sent

  // the table exists once the first sink has started
  for (let kill = 0; kill < KILLS; kill++) {
    const run = startSink(config)
    const before = await count().catch(() => 0)
    await until(
      `sink run ${kill + 1} writes`,
      async () => (await count().catch(() => 0)) >= before + 100,
      60_000,
    )
    await new Promise((r) => setTimeout(r, Math.floor(Math.random() * 400)))
    run.child.kill('SIGKILL')
    assert.equal(await run.exited, null, 'killed, not exited')
  }
  await flow.stop()
  const total = sent.length
  const last = startSink(config)
  const chCount = async (): Promise<number> =>
    Number((await clickhouse.query('SELECT count() FROM events FINAL')).trim())
  await until(
    'every event is written',
    async () => (await count()) >= total && (await chCount()) >= total,
    120_000,
  )
  // ready (listening, its group joined, the database reachable) before it is asked to stop
  let address = ''
  await until(
    'the last sink listens',
    () => {
      address = /"address":"(http:[^"]+)"/.exec(last.output())?.[1] ?? ''
      return address !== ''
    },
    30_000,
  )
  await until('the last sink is ready', async () => (await fetch(`${address}/readyz`)).status === 200, 30_000)
  last.child.kill('SIGTERM')
  assert.equal(await last.exited, 0, last.output())

  const ids = await sql.query<{ id: string }>('SELECT id FROM events')
  assert.equal(ids.rowCount, total, 'no event twice')
  const inTable = new Set(ids.rows.map((r) => r.id))
  assert.equal(inTable.size, total)
  assert.ok(
    sent.every((id) => inTable.has(id)),
    'no event lost',
  )
  // ClickHouse: each id once with FINAL; the copies a crash left are only in the unmerged parts
  assert.equal(await chCount(), total, 'each event once in ClickHouse with FINAL')
  const chIds = new Set(
    (await clickhouse.query('SELECT id FROM events FINAL FORMAT TabSeparated')).trim().split('\n'),
  )
  assert.ok(
    sent.every((id) => chIds.has(id)),
    'no event lost in ClickHouse',
  )
  const chOffsets = await clickhouse.query(
    `SELECT sum(next) FROM (SELECT max(next_offset) AS next FROM spillway_offsets WHERE topic = '${topic}' GROUP BY partition)`,
  )
  assert.equal(Number(chOffsets.trim()), total, "ClickHouse's stored offsets cover every record")
  const offsets = await sql.query(
    'SELECT sum(next_offset)::int AS n FROM spillway_offsets WHERE topic = $1',
    [topic],
  )
  assert.equal(offsets.rows[0].n, total, 'the stored offsets cover every record')
})
