/**
 * The sinks against a plain write of the same rows to the same database, in the same run.
 *
 *   node bench/sink.ts [records] [rounds] [postgres|clickhouse|both]   # default 200,000, 3, both
 *
 * 1 KiB JSON events are produced once into a topic of 6 partitions. Each round then writes them with the
 * sink and with the peers, each into a fresh table:
 *   - PostgreSQL. spillway: createPostgresSink reading them from Kafka until the table has them all (a
 *     COPY per batch, and the offsets row in the same transaction). Peer: one COPY of the same column
 *     values, already in memory, straight into an identical table.
 *   - ClickHouse. spillway: createClickHouseSink (TabSeparated inserts over HTTP into a ReplacingMergeTree,
 *     and the offsets). Peer: the same rows, already in memory, posted as JSONEachRow inserts of 5,000 rows
 *     (the sink's batch size) one after the other over a kept-alive node:http connection, into an identical
 *     table. Beside it: the same rows as TabSeparated (the sink's own format), and a hand-written
 *     Kafka-to-ClickHouse pipeline (a raw @platformatic/kafka consumer, an insert per 5,000 rows, offsets
 *     committed to Kafka after each), which does the reading the sink does and nothing else.
 * The peers' rows are built before they are timed, as one buffer per insert, so the process that then
 * runs the sink carries no heap of prepared strings.
 *
 * The ratio is spillway's rows/s (from its first batch on; the group join is shown apart) over each peer's
 * in the same round. Target: ≥ 0.7× the plain write. The CPU each process spent per row while the sink ran
 * is shown too: on a small machine the sink, Kafka and the database share the cores, where a plain write
 * of rows in memory leaves them all to the database.
 */

import { readdirSync, readFileSync } from 'node:fs'
import http from 'node:http'
import { pipeline } from 'node:stream/promises'
import { Admin, Consumer, MessagesStreamModes } from '@platformatic/kafka'
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
const INSERT_ROWS = 5000
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

/** The peer's rows, one buffer per insert, built before anything is timed. */
function bodies(ids: readonly string[], row: (id: string, n: number) => string): Buffer[] {
  const out: Buffer[] = []
  for (let i = 0; i < ids.length; i += INSERT_ROWS)
    out.push(
      Buffer.from(
        ids
          .slice(i, i + INSERT_ROWS)
          .map((id, k) => row(id, i + k))
          .join(''),
      ),
    )
  return out
}

/** CPU seconds (user + system) so far of the other processes whose command line holds `pattern`. */
function cpuOf(pattern: string): number {
  let ticks = 0
  for (const pid of readdirSync('/proc').filter((d) => /^\d+$/.test(d) && Number(d) !== process.pid)) {
    try {
      if (!readFileSync(`/proc/${pid}/cmdline`, 'utf8').includes(pattern)) continue
      // utime and stime, in clock ticks (100 a second), after the command name
      const fields = readFileSync(`/proc/${pid}/stat`, 'utf8').split(') ')[1]?.split(' ') ?? []
      ticks += Number(fields[11]) + Number(fields[12])
    } catch {
      // the process ended between the listing and the read
    }
  }
  return ticks / 100
}

/** CPU µs per row spent by this process, the database server and Kafka while `rows` were written. */
interface CpuPerRow {
  self: number
  database: number
  kafka: number
}

function cpuMeter(database: string): (rows: number) => CpuPerRow {
  const self = process.cpuUsage()
  const db = cpuOf(database)
  const kafka = cpuOf('kafka.Kafka')
  return (rows) => {
    const used = process.cpuUsage(self)
    return {
      self: (used.user + used.system) / rows,
      database: ((cpuOf(database) - db) * 1e6) / rows,
      kafka: ((cpuOf('kafka.Kafka') - kafka) * 1e6) / rows,
    }
  }
}

/** rows/s and CPU per row of one timed write of every record. */
interface Run {
  rate: number
  cpu: CpuPerRow
}

/** Runs a sink over the whole topic; rows/s from its first written batch, and with the group join. */
async function drain(sink: SpillwaySink, database: string): Promise<Run & { withJoin: number }> {
  const start = performance.now()
  await sink.run()
  // steady rate: from the first batch committed (the group join is a fixed cost, not throughput)
  while (sink.stats().rowsWritten === 0) await new Promise((r) => setTimeout(r, 2))
  const firstAt = performance.now()
  const firstRows = sink.stats().rowsWritten
  const meter = cpuMeter(database)
  while (sink.stats().rowsWritten < records) await new Promise((r) => setTimeout(r, 10))
  const end = performance.now()
  const cpu = meter(records - firstRows)
  await sink.close()
  return {
    rate: (records - firstRows) / ((end - firstAt) / 1000),
    withJoin: records / ((end - start) / 1000),
    cpu,
  }
}

/** Times `write`, which writes every record. */
async function timed(database: string, write: () => Promise<void>): Promise<Run> {
  const meter = cpuMeter(database)
  const started = performance.now()
  await write()
  const seconds = (performance.now() - started) / 1000
  return { rate: records / seconds, cpu: meter(records) }
}

interface RoundResult {
  sink: Run & { withJoin: number }
  /** The peers in the order they are named in the report; the first is the one the target is set against. */
  peers: Run[]
}

function report(title: string, peerNames: readonly string[], results: readonly RoundResult[]): void {
  const rows: string[][] = [
    [
      'round',
      'spillway sink rows/s',
      'with the group join',
      ...peerNames.flatMap((name) => [`${name} rows/s`, 'ratio']),
    ],
  ]
  for (const [i, r] of results.entries())
    rows.push([
      String(i + 1),
      r.sink.rate.toFixed(0),
      r.sink.withJoin.toFixed(0),
      ...r.peers.flatMap((p) => [p.rate.toFixed(0), (r.sink.rate / p.rate).toFixed(2)]),
    ])
  printTable(title, rows)
  const sorted = results.map((r) => r.sink.rate / (r.peers[0] as Run).rate).sort((a, b) => a - b)
  process.stdout.write(
    `median ratio to the ${peerNames[0]} ${(sorted[Math.floor(sorted.length / 2)] as number).toFixed(2)} (target ≥ 0.7)\n`,
  )
  // where the CPU went, per row: medians over the rounds
  const median = (values: number[]): string =>
    (values.sort((a, b) => a - b)[Math.floor(values.length / 2)] as number).toFixed(1)
  const cpuRow = (name: string, runs: Run[]): string[] => [
    name,
    median(runs.map((r) => r.cpu.self)),
    median(runs.map((r) => r.cpu.database)),
    median(runs.map((r) => r.cpu.kafka)),
    median(runs.map((r) => 1e6 / r.rate)),
  ]
  printTable(
    "CPU µs per row (medians): each writer's own process, the database server, Kafka; and wall µs per row",
    [
      ['writer', 'own process', 'database', 'Kafka', 'wall'],
      cpuRow(
        'spillway sink',
        results.map((r) => r.sink),
      ),
      ...peerNames.map((name, k) =>
        cpuRow(
          name,
          results.map((r) => r.peers[k] as Run),
        ),
      ),
    ],
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
    const peerLines = bodies(ids, (id, n) => tsvLine(columnValues(id, n, now)))
    const results: RoundResult[] = []
    for (let round = 1; round <= rounds; round++) {
      // peer: one COPY of every row into an identical empty table
      await sql.query(`DROP TABLE IF EXISTS plain; CREATE TABLE plain ${TABLE}`)
      const peer = await timed('postgres', () =>
        pipeline(peerLines, sql.query(copyFrom('COPY plain FROM STDIN'))),
      )
      // spillway: a new group and a fresh table read the topic from the beginning
      await sql.query(
        `DROP TABLE IF EXISTS events; DROP TABLE IF EXISTS spillway_offsets; CREATE TABLE events ${TABLE}`,
      )
      const sink = await drain(
        createPostgresSink({
          brokers,
          groupId: `bench-sink-pg-${round}-${Date.now()}`,
          topics: [TOPIC],
          postgres: { ...db },
          table: 'events',
        }),
        'postgres',
      )
      const count = Number((await sql.query('SELECT count(*) AS n FROM events')).rows[0].n)
      if (count !== records) throw new Error(`the sink wrote ${count} rows, not ${records}`)
      results.push({ sink, peers: [peer] })
    }
    report(
      `PostgreSQL sink, ${records} records of 1 KiB JSON, ${PARTITIONS} partitions`,
      ['plain COPY'],
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
  // node:http with a kept-alive connection, as the sink posts: the cheapest plain client
  const agent = new http.Agent({ keepAlive: true, maxSockets: 1 })
  const authorization = `Basic ${Buffer.from(`${ch.user}:${ch.password}`).toString('base64')}`
  const insert = (body: Buffer, format: string): Promise<void> =>
    new Promise((resolve, reject) => {
      const path = `/?query=${encodeURIComponent(`INSERT INTO plain FORMAT ${format}`)}`
      const request = http.request(
        { host: ch.host, port: ch.port, path, method: 'POST', agent, headers: { authorization } },
        (response) => {
          const chunks: Buffer[] = []
          response.on('data', (chunk: Buffer) => chunks.push(chunk))
          response.on('end', () =>
            response.statusCode === 200
              ? resolve()
              : reject(new Error(`ClickHouse refused the plain insert: ${Buffer.concat(chunks)}`)),
          )
        },
      )
      request.on('error', reject)
      request.end(body)
    })
  /** Drops what earlier writes left, waits for the server's background merges to end, makes `plain`. */
  const fresh = async (): Promise<void> => {
    for (const t of ['plain', 'events', 'spillway_offsets']) await server.query(`DROP TABLE IF EXISTS ${t}`)
    while (Number((await server.query('SELECT count() FROM system.merges')).trim()) > 0)
      await new Promise((r) => setTimeout(r, 100))
    await server.query(`CREATE TABLE plain ${TABLE}`)
  }
  const plain = async (inserts: readonly Buffer[], format: string): Promise<Run> => {
    await fresh()
    return await timed('clickhouse', async () => {
      for (const body of inserts) await insert(body, format)
    })
  }
  /**
   * Kafka to ClickHouse by hand: the records read with a raw @platformatic/kafka consumer, as TabSeparated
   * lines, an insert every 5,000 records, then each partition's offset committed to Kafka.
   */
  const handWritten = async (round: number): Promise<Run> => {
    await fresh()
    const consumer = new Consumer({
      clientId: 'bench-hand',
      groupId: `bench-sink-hand-${round}-${Date.now()}`,
      bootstrapBrokers: brokers,
      maxWaitTime: 500,
    })
    const stream = await consumer.consume({
      topics: [TOPIC],
      mode: MessagesStreamModes.EARLIEST,
      autocommit: false,
    })
    let lines = ''
    let inBatch = 0
    let written = 0
    let run: Run | undefined
    let meter: ((rows: number) => CpuPerRow) | undefined
    let started = 0
    const last = new Map<number, { commit: () => unknown }>()
    for await (const m of stream) {
      if (meter === undefined) {
        meter = cpuMeter('clickhouse')
        started = performance.now()
      }
      const id = m.headers.get(Buffer.from('spillway-id'))?.toString() ?? ''
      lines += tsvLine([
        id,
        m.topic,
        String(m.partition),
        String(m.offset),
        String(Math.floor(Number(m.timestamp) / 1000)),
        m.key.toString(),
        JSON.stringify({ 'spillway-id': id }),
        m.value.toString(),
      ])
      last.set(m.partition, m)
      if (++inBatch < INSERT_ROWS && written + inBatch < records) continue
      await insert(Buffer.from(lines), 'TabSeparated')
      for (const message of last.values()) await message.commit()
      written += inBatch
      lines = ''
      inBatch = 0
      last.clear()
      if (written >= records) {
        run = { rate: records / ((performance.now() - started) / 1000), cpu: meter(records) }
        break
      }
    }
    await stream.close()
    await consumer.close(true)
    if (!run) throw new Error('the hand-written pipeline ended early')
    return run
  }
  try {
    const now = Math.floor(Date.now() / 1000)
    const peerRows = bodies(
      ids,
      (id, n) =>
        `${JSON.stringify({
          id,
          topic: TOPIC,
          partition: n % PARTITIONS,
          offset: n,
          timestamp: now,
          key: keyOf(n),
          headers: JSON.stringify({ 'spillway-id': id }),
          value: JSON.stringify(eventValue(n)),
        })}\n`,
    )
    // the same rows as TabSeparated lines, the format the sink sends
    const peerLines = bodies(ids, (id, n) => tsvLine(columnValues(id, n, String(now))))
    const results: RoundResult[] = []
    for (let round = 1; round <= rounds; round++) {
      const peers = [
        await plain(peerRows, 'JSONEachRow'),
        await plain(peerLines, 'TabSeparated'),
        await handWritten(round),
      ]
      await fresh()
      const sink = await drain(
        createClickHouseSink({
          brokers,
          groupId: `bench-sink-ch-${round}-${Date.now()}`,
          topics: [TOPIC],
          clickhouse: { host: ch.host, port: ch.port, user: ch.user, password: ch.password },
          table: 'events',
          createTable: true,
        }),
        'clickhouse',
      )
      const count = Number((await server.query('SELECT count() FROM events FINAL')).trim())
      if (count !== records) throw new Error(`the sink wrote ${count} rows, not ${records}`)
      results.push({ sink, peers })
    }
    report(
      `ClickHouse sink, ${records} records of 1 KiB JSON, ${PARTITIONS} partitions`,
      ['plain JSONEachRow insert', 'plain TabSeparated insert', 'hand-written Kafka pipeline'],
      results,
    )
  } finally {
    agent.destroy()
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
