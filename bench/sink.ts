/**
 * The sinks against a plain write of the same rows to the same database, in the same run.
 *
 *   node bench/sink.ts [records] [rounds] [postgres|clickhouse|both]   # default 200,000, 3, both
 *
 * 1 KiB JSON events are produced once into a topic of 6 partitions. Each round then writes them twice:
 *   - PostgreSQL. spillway: createPostgresSink reading them from Kafka until the table has them all (a
 *     COPY per batch, and the offsets row in the same transaction). Peer: one COPY of the same column
 *     values, already in memory, straight into an identical table.
 *   - ClickHouse. spillway: createClickHouseSink (TabSeparated inserts over HTTP into a ReplacingMergeTree,
 *     and the offsets). Peer: the same rows, already in memory, posted as JSONEachRow inserts of 5,000 rows
 *     (the sink's batch size) one after the other, into an identical table. Beside it, the same rows as
 *     TabSeparated inserts, the sink's own format, so the gain of the format alone is visible.
 * The ratio is spillway's rows/s (from its first batch on; the group join is shown apart) over the peer's
 * in the same round. Target: ≥ 0.7×.
 */

import { pipeline } from 'node:stream/promises'
import { Admin } from '@platformatic/kafka'
import pg from 'pg'
import { from as copyFrom } from 'pg-copy-streams'
import { ClickHouseServer } from '../scripts/clickhouse/clickhouse.ts'
import { KafkaCluster } from '../scripts/kafka/cluster.ts'
import { PostgresServer } from '../scripts/postgres/postgres.ts'
import { createClickHouseSink, createPostgresSink, createProducer, type SpillwaySink } from '../src/index.ts'
import { tsvLine } from '../src/sinks/tsv.ts'
import { printTable } from './report.ts'

const records = Number(process.argv[2] ?? 200_000)
const rounds = Number(process.argv[3] ?? 3)
const which = process.argv[4] ?? 'both'
const PARTITIONS = 6
const TOPIC = 'bench-sink'
const filler = 'x'.repeat(900)
const eventValue = (n: number) => ({ n, kind: 'page_view', url: `/p/${n % 977}`, filler })
const keyOf = (n: number): string => `user-${n % 5000}`
/** Event n's column values as text, as the sink writes them, with its timestamp as `time`. */
const columnValues = (id: string, n: number, time: string): string[] => [
  id,
  TOPIC,
  String(n % PARTITIONS),
  String(n),
  time,
  keyOf(n),
  JSON.stringify({ 'spillway-id': id }),
  JSON.stringify(eventValue(n)),
]

const cluster = await KafkaCluster.start({ nodes: 1, heapMb: 1024 })
const brokers = cluster.bootstrap

/** Produces the events once; returns their ids in order (event n has value eventValue(n)). */
async function fill(): Promise<string[]> {
  const admin = new Admin({ clientId: 'bench', bootstrapBrokers: brokers })
  await admin.createTopics({ topics: [TOPIC], partitions: PARTITIONS, replicas: 1 })
  await admin.close()
  const producer = await createProducer({ brokers, ack: 'kafka', transportLingerMs: 5 })
  const ids: string[] = []
  for (let i = 0; i < records; i += 1000) {
    const results = await producer.send(
      TOPIC,
      Array.from({ length: Math.min(1000, records - i) }, (_, j) => ({
        key: keyOf(i + j),
        value: eventValue(i + j),
      })),
    )
    for (const r of results) {
      if (r.status !== 'accepted') throw new Error(`the producer refused a record: ${r.error.message}`)
      ids.push(r.id)
    }
  }
  await producer.close()
  return ids
}

/** Runs a sink over the whole topic; rows/s from its first written batch, and with the group join. */
async function drain(sink: SpillwaySink): Promise<{ rate: number; withJoin: number }> {
  const start = performance.now()
  await sink.run()
  // steady rate: from the first batch committed (the group join is a fixed cost, not throughput)
  while (sink.stats().rowsWritten === 0) await new Promise((r) => setTimeout(r, 2))
  const firstAt = performance.now()
  const firstRows = sink.stats().rowsWritten
  while (sink.stats().rowsWritten < records) await new Promise((r) => setTimeout(r, 10))
  const end = performance.now()
  if (process.env.SPILLWAY_BENCH_VERBOSE) process.stderr.write(`  batches: ${sink.stats().batches}\n`)
  await sink.close()
  return {
    rate: (records - firstRows) / ((end - firstAt) / 1000),
    withJoin: records / ((end - start) / 1000),
  }
}

interface RoundResult {
  rate: number
  withJoin: number
  peer: number
  /** A second way of writing the same rows by hand, shown beside the peer the target is set against. */
  other?: number
}

function report(title: string, peer: string, results: RoundResult[], other?: string): void {
  const rows: string[][] = [
    [
      'round',
      `spillway sink rows/s`,
      'with the group join',
      `${peer} rows/s`,
      'ratio',
      ...(other ? [`${other} rows/s`, 'ratio to it'] : []),
    ],
  ]
  for (const [i, r] of results.entries())
    rows.push([
      String(i + 1),
      r.rate.toFixed(0),
      r.withJoin.toFixed(0),
      r.peer.toFixed(0),
      (r.rate / r.peer).toFixed(2),
      ...(other && r.other ? [r.other.toFixed(0), (r.rate / r.other).toFixed(2)] : []),
    ])
  printTable(title, rows)
  const sorted = results.map((r) => r.rate / r.peer).sort((a, b) => a - b)
  process.stdout.write(
    `median ratio ${(sorted[Math.floor(sorted.length / 2)] as number).toFixed(2)} (target ≥ 0.7)\n`,
  )
}

async function postgres(ids: readonly string[]): Promise<void> {
  const server = await PostgresServer.start()
  const db = server.settings
  const sql = new pg.Client(db)
  await sql.connect()
  const TABLE =
    '(id text PRIMARY KEY, topic text NOT NULL, "partition" integer NOT NULL, "offset" bigint NOT NULL, "timestamp" timestamptz NOT NULL, key text, headers jsonb, value jsonb)'
  try {
    // the peer's rows: the same column values the sink writes
    const now = new Date().toISOString()
    const peerLines = ids.map((id, n) => tsvLine(columnValues(id, n, now)))
    const results: RoundResult[] = []
    for (let round = 1; round <= rounds; round++) {
      // peer: one COPY of every row into an identical empty table
      await sql.query(`DROP TABLE IF EXISTS plain; CREATE TABLE plain ${TABLE}`)
      const peerStart = performance.now()
      await pipeline(peerLines, sql.query(copyFrom('COPY plain FROM STDIN')))
      const peer = records / ((performance.now() - peerStart) / 1000)
      // spillway: a new group and a fresh table read the topic from the beginning
      await sql.query(
        `DROP TABLE IF EXISTS events; DROP TABLE IF EXISTS spillway_offsets; CREATE TABLE events ${TABLE}`,
      )
      const run = await drain(
        createPostgresSink({
          brokers,
          groupId: `bench-sink-pg-${round}-${Date.now()}`,
          topics: [TOPIC],
          postgres: { ...db },
          table: 'events',
        }),
      )
      const count = Number((await sql.query('SELECT count(*) AS n FROM events')).rows[0].n)
      if (count !== records) throw new Error(`the sink wrote ${count} rows, not ${records}`)
      results.push({ ...run, peer })
    }
    report(
      `PostgreSQL sink, ${records} records of 1 KiB JSON, ${PARTITIONS} partitions`,
      'plain COPY',
      results,
    )
  } finally {
    await sql.end()
    await server.stop()
  }
}

async function clickhouse(ids: readonly string[]): Promise<void> {
  const server = await ClickHouseServer.start()
  const ch = server.settings
  const TABLE =
    '(id String, topic String, partition UInt32, offset UInt64, timestamp DateTime, key Nullable(String), headers String, value String) ENGINE = ReplacingMergeTree() ORDER BY id'
  try {
    const now = Math.floor(Date.now() / 1000)
    const peerRows = ids.map((id, n) =>
      JSON.stringify({
        id,
        topic: TOPIC,
        partition: n % PARTITIONS,
        offset: n,
        timestamp: now,
        key: keyOf(n),
        headers: JSON.stringify({ 'spillway-id': id }),
        value: JSON.stringify(eventValue(n)),
      }),
    )
    // the same rows as TabSeparated lines, the format the sink sends
    const peerLines = ids.map((id, n) => tsvLine(columnValues(id, n, String(now))))
    const insert = async (rows: readonly string[], format = 'JSONEachRow'): Promise<void> => {
      const query = encodeURIComponent(`INSERT INTO plain FORMAT ${format}`)
      const response = await fetch(`http://${ch.host}:${ch.port}/?query=${query}`, {
        method: 'POST',
        headers: { authorization: `Basic ${Buffer.from(`${ch.user}:${ch.password}`).toString('base64')}` },
        body: format === 'JSONEachRow' ? `${rows.join('\n')}\n` : rows.join(''),
      })
      if (!response.ok) throw new Error(`ClickHouse refused the plain insert: ${await response.text()}`)
    }
    const results: RoundResult[] = []
    /** rows/s of inserts of 5,000 pre-built rows one after another into an empty table */
    /** Drops what earlier writes left and waits for the server's background merges to end. */
    const quiet = async (): Promise<void> => {
      for (const t of ['plain', 'events', 'spillway_offsets']) await server.query(`DROP TABLE IF EXISTS ${t}`)
      while (Number((await server.query('SELECT count() FROM system.merges')).trim()) > 0)
        await new Promise((r) => setTimeout(r, 100))
    }
    const plain = async (lines: readonly string[], format: string): Promise<number> => {
      await quiet()
      await server.query(`CREATE TABLE plain ${TABLE}`)
      const started = performance.now()
      for (let i = 0; i < lines.length; i += 5000) await insert(lines.slice(i, i + 5000), format)
      return records / ((performance.now() - started) / 1000)
    }
    for (let round = 1; round <= rounds; round++) {
      const peer = await plain(peerRows, 'JSONEachRow')
      const other = await plain(peerLines, 'TabSeparated')
      await quiet()
      const run = await drain(
        createClickHouseSink({
          brokers,
          groupId: `bench-sink-ch-${round}-${Date.now()}`,
          topics: [TOPIC],
          clickhouse: { host: ch.host, port: ch.port, user: ch.user, password: ch.password },
          table: 'events',
          createTable: true,
        }),
      )
      const count = Number((await server.query('SELECT count() FROM events FINAL')).trim())
      if (count !== records) throw new Error(`the sink wrote ${count} rows, not ${records}`)
      results.push({ ...run, peer, other })
    }
    report(
      `ClickHouse sink, ${records} records of 1 KiB JSON, ${PARTITIONS} partitions`,
      'plain JSONEachRow insert',
      results,
      'plain TabSeparated insert',
    )
  } finally {
    await server.stop()
  }
}

try {
  const ids = await fill()
  if (which === 'postgres' || which === 'both') await postgres(ids)
  if (which === 'clickhouse' || which === 'both') await clickhouse(ids)
} finally {
  await cluster.stop()
}
