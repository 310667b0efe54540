/**
 * The PostgreSQL sink against a plain COPY of the same rows, in the same run.
 *
 *   node bench/sink.ts [records] [rounds]      # default 200,000 records of 1 KiB JSON, 3 rounds
 *
 * Each round writes the same records into a fresh table twice:
 *   - spillway: createPostgresSink reading them from Kafka (6 partitions), until the table has them all:
 *     COPY into a temporary table, INSERT … ON CONFLICT (id) DO NOTHING and the offsets row, per batch;
 *   - peer: one COPY of the same column values, already in memory, straight into an identical table.
 * The ratio is spillway's rows/s (from its first batch on; the group join is shown apart) over the peer's
 * in the same round. Target: ≥ 0.7×.
 */

import { pipeline } from 'node:stream/promises'
import { Admin } from '@platformatic/kafka'
import pg from 'pg'
import { from as copyFrom } from 'pg-copy-streams'
import { KafkaCluster } from '../scripts/kafka/cluster.ts'
import { PostgresServer } from '../scripts/postgres/postgres.ts'
import { createPostgresSink, createProducer } from '../src/index.ts'
import { copyLine } from '../src/sinks/postgres/copy-text.ts'
import { printTable } from './report.ts'

const records = Number(process.argv[2] ?? 200_000)
const rounds = Number(process.argv[3] ?? 3)
const PARTITIONS = 6

const cluster = await KafkaCluster.start({ nodes: 1, heapMb: 1024 })
const server = await PostgresServer.start()
const brokers = cluster.bootstrap
const db = server.settings
const sql = new pg.Client(db)
await sql.connect()
const TABLE =
  '(id text PRIMARY KEY, topic text NOT NULL, "partition" integer NOT NULL, "offset" bigint NOT NULL, "timestamp" timestamptz NOT NULL, key text, headers jsonb, value jsonb)'

try {
  const topic = 'bench-sink'
  const admin = new Admin({ clientId: 'bench', bootstrapBrokers: brokers })
  await admin.createTopics({ topics: [topic], partitions: PARTITIONS, replicas: 1 })
  await admin.close()
  const filler = 'x'.repeat(900)
  const producer = await createProducer({ brokers, ack: 'kafka', transportLingerMs: 5 })
  const ids: string[] = []
  for (let i = 0; i < records; i += 1000) {
    const results = await producer.send(
      topic,
      Array.from({ length: Math.min(1000, records - i) }, (_, j) => ({
        key: `user-${(i + j) % 5000}`,
        value: { n: i + j, kind: 'page_view', url: `/p/${(i + j) % 977}`, filler },
      })),
    )
    for (const r of results) {
      if (r.status !== 'accepted') throw new Error(`the producer refused a record: ${r.error.message}`)
      ids.push(r.id)
    }
  }
  await producer.close()
  // the peer's rows: the same column values the sink writes
  const now = new Date().toISOString()
  const peerLines = ids.map((id, n) =>
    copyLine([
      id,
      topic,
      String(n % PARTITIONS),
      String(n),
      now,
      `user-${n % 5000}`,
      JSON.stringify({ 'spillway-id': id }),
      JSON.stringify({ n, kind: 'page_view', url: `/p/${n % 977}`, filler }),
    ]),
  )

  const rows: string[][] = [
    ['round', 'spillway sink rows/s', 'with the group join', 'plain COPY rows/s', 'ratio'],
  ]
  const ratios: number[] = []
  for (let round = 1; round <= rounds; round++) {
    // peer: one COPY of every row into an identical empty table
    await sql.query(`DROP TABLE IF EXISTS plain; CREATE TABLE plain ${TABLE}`)
    const peerStart = performance.now()
    const stream = sql.query(copyFrom('COPY plain FROM STDIN'))
    await pipeline(peerLines, stream)
    const peerRate = records / ((performance.now() - peerStart) / 1000)

    // spillway: a new group and a fresh table read the topic from the beginning
    await sql.query(
      `DROP TABLE IF EXISTS events; DROP TABLE IF EXISTS spillway_offsets; CREATE TABLE events ${TABLE}`,
    )
    const sink = createPostgresSink({
      brokers,
      groupId: `bench-sink-${round}-${Date.now()}`,
      topics: [topic],
      postgres: { ...db },
      table: 'events',
    })
    const start = performance.now()
    await sink.run()
    // steady rate: from the first batch committed (the group join is a fixed cost, not throughput)
    while (sink.stats().rowsWritten === 0) await new Promise((r) => setTimeout(r, 2))
    const firstAt = performance.now()
    const firstRows = sink.stats().rowsWritten
    while (sink.stats().rowsWritten < records) await new Promise((r) => setTimeout(r, 10))
    const end = performance.now()
    const rate = (records - firstRows) / ((end - firstAt) / 1000)
    const withJoin = records / ((end - start) / 1000)
    await sink.close()
    const count = Number((await sql.query('SELECT count(*) AS n FROM events')).rows[0].n)
    if (count !== records) throw new Error(`the sink wrote ${count} rows, not ${records}`)
    ratios.push(rate / peerRate)
    rows.push([
      String(round),
      rate.toFixed(0),
      withJoin.toFixed(0),
      peerRate.toFixed(0),
      (rate / peerRate).toFixed(2),
    ])
  }
  printTable(`PostgreSQL sink, ${records} records of 1 KiB JSON, ${PARTITIONS} partitions`, rows)
  const sorted = [...ratios].sort((a, b) => a - b)
  process.stdout.write(
    `median ratio ${(sorted[Math.floor(sorted.length / 2)] as number).toFixed(2)} (target ≥ 0.7)\n`,
  )
} finally {
  await sql.end()
  await server.stop()
  await cluster.stop()
}
