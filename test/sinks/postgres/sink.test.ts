/**
 * The PostgreSQL sink against the real broker and a real PostgreSQL 15: every event once (copies at the
 * input included), offsets kept in the database and resumed from, a mapping of JSON paths into typed
 * columns, and poison (not JSON, a wrong type, a constraint) dead-lettered with the database's message
 * while the partition keeps moving.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { createPostgresSink, createProducer } from '../../../src/index.ts'
import { createTopic, produceRaw, randomName, readTopic, testKafka } from '../../helpers/kafka.ts'
import { freshDatabase, pgClient } from '../../helpers/postgres.ts'
import { until } from '../../helpers/wait.ts'

test('every event lands once, copies at the input included; a restarted sink resumes from the offsets in PostgreSQL', async (t) => {
  const { bootstrap } = testKafka()
  const topic = await createTopic(t, 'sink-pg', { partitions: 3 })
  const db = await freshDatabase(t)
  const sql = await pgClient(t, db)
  const producer = await createProducer({ brokers: bootstrap, ack: 'kafka', transportLingerMs: 0 })
  t.after(() => producer.close())
  const events = Array.from({ length: 1500 }, (_, i) => ({ key: `user-${i % 37}`, value: { n: i } }))
  const first = await producer.send(topic, events)
  assert.ok(first.every((r) => r.status === 'accepted'))
  // the same events again, with the same ids: an outbox that re-sent everything
  const again = await producer.sendTo(
    first.map((r, i) => ({ topic, event: { id: r.id, key: `user-${i % 37}`, value: { n: i } } })),
  )
  assert.ok(again.every((r) => r.status === 'accepted'))

  const options = {
    brokers: bootstrap,
    groupId: randomName('warehouse'),
    topics: [topic],
    postgres: { host: db.host, port: db.port, database: db.database, user: db.user, password: db.password },
    table: 'events',
    createTable: true,
    maxBatchRows: 200,
  }
  const sink = createPostgresSink(options)
  await sink.run()
  await until(
    'every event is in the table',
    async () => Number((await sql.query('SELECT count(*) AS n FROM events')).rows[0].n) >= 1500,
    60_000,
  )
  await until(
    'every copy was read',
    () => sink.stats().rowsWritten + sink.stats().rowsExisting >= 3000,
    30_000,
  )
  await sink.close()

  const rows = await sql.query('SELECT id, topic, "partition", "offset", key, value FROM events')
  assert.equal(rows.rowCount, 1500)
  assert.deepEqual(new Set(rows.rows.map((r) => r.id)), new Set(first.map((r) => r.id)))
  const row = rows.rows.find((r) => r.id === first[7]?.id)
  assert.deepEqual(row?.value, { n: 7 })
  assert.equal(row?.key, 'user-7')
  assert.equal(row?.topic, topic)
  const stats = sink.stats()
  assert.equal(stats.rowsWritten, 1500)
  assert.equal(stats.rowsExisting, 1500, 'the second copy of each id was read and not written')
  assert.equal(stats.refused, 0)
  const offsets = await sql.query(
    'SELECT "partition", next_offset FROM spillway_offsets WHERE owner = $1 AND topic = $2 ORDER BY 1',
    [options.groupId, topic],
  )
  const total = offsets.rows.reduce((n, r) => n + Number(r.next_offset), 0)
  assert.equal(total, 3000, 'the offsets in the database cover every record read')

  // more events; a new sink starts from the database's offsets, so nothing is read twice
  const more = await producer.send(
    topic,
    Array.from({ length: 300 }, (_, i) => ({ key: `user-${i % 37}`, value: { n: 1500 + i } })),
  )
  assert.ok(more.every((r) => r.status === 'accepted'))
  const resumed = createPostgresSink(options)
  await resumed.run()
  await until(
    'the new events are in the table',
    async () => Number((await sql.query('SELECT count(*) AS n FROM events')).rows[0].n) >= 1800,
    60_000,
  )
  await resumed.close()
  assert.equal(resumed.stats().rowsWritten, 300)
  assert.equal(resumed.stats().rowsExisting, 0, 'nothing before the stored offsets was read again')
  assert.equal(Number((await sql.query('SELECT count(DISTINCT id) AS n FROM events')).rows[0].n), 1800)
})

test('poison: a value that is not JSON, a wrong type and a broken constraint are dead-lettered with the reason; the rest is written', async (t) => {
  const { bootstrap } = testKafka()
  const topic = await createTopic(t, 'sink-pg-poison', { partitions: 1 })
  const deadLetters = await createTopic(t, 'sink-pg-poison-dlt', { partitions: 1 })
  const db = await freshDatabase(t)
  const sql = await pgClient(t, db)
  await sql.query(
    'CREATE TABLE orders (event_id text PRIMARY KEY, customer text NOT NULL, total numeric CHECK (total >= 0), placed_at timestamptz, raw jsonb)',
  )
  const order = (n: number, extra: Record<string, unknown> = {}): string =>
    JSON.stringify({ customer: { id: `c${n}` }, total: n, ...extra })
  await produceRaw(topic, [
    { key: 'a', value: order(1), headers: { 'spillway-id': 'ok-1' } },
    { key: 'a', value: '{"customer": oops', headers: { 'spillway-id': 'not-json' } },
    { key: 'b', value: order(2, { total: 'twelve' }), headers: { 'spillway-id': 'wrong-type' } },
    { key: 'b', value: order(3, { total: -5 }), headers: { 'spillway-id': 'negative' } },
    { key: 'c', value: order(4), headers: { 'spillway-id': 'ok-2' } },
  ])
  const sink = createPostgresSink({
    brokers: bootstrap,
    groupId: randomName('orders-sink'),
    topics: [topic],
    postgres: { host: db.host, port: db.port, database: db.database, user: db.user, password: db.password },
    deadLetterTopics: { '*': deadLetters },
    table: 'orders',
    columns: {
      event_id: '$id',
      customer: 'customer.id',
      total: 'total',
      placed_at: '$timestamp',
      raw: '$value',
    },
  })
  t.after(() => sink.close())
  await sink.run()
  await until(
    'the good rows are written',
    async () => (await sql.query('SELECT 1 FROM orders')).rowCount === 2,
    30_000,
  )
  // the partition keeps moving after the poison
  await produceRaw(topic, [{ key: 'd', value: order(5), headers: { 'spillway-id': 'ok-3' } }])
  await until(
    'a later row is written',
    async () => (await sql.query('SELECT 1 FROM orders')).rowCount === 3,
    30_000,
  )
  await sink.close()

  const written = await sql.query(
    'SELECT event_id, customer, total::int AS total, raw FROM orders ORDER BY event_id',
  )
  assert.deepEqual(
    written.rows.map((r) => [r.event_id, r.customer, r.total]),
    [
      ['ok-1', 'c1', 1],
      ['ok-2', 'c4', 4],
      ['ok-3', 'c5', 5],
    ],
  )
  assert.deepEqual(written.rows[0]?.raw, { customer: { id: 'c1' }, total: 1 })
  const dead = await readTopic(deadLetters, { expected: 3, timeoutMs: 20_000 })
  const header = (m: (typeof dead)[number], name: string): string | undefined =>
    m.headerEntries.find(([k]) => k.toString() === name)?.[1].toString()
  const reasons = new Map(
    dead.map((m) => [
      header(m, 'spillway-id'),
      [header(m, 'spillway-error-code'), header(m, 'spillway-error')],
    ]),
  )
  assert.equal(reasons.size, 3)
  assert.equal(reasons.get('not-json')?.[0], 'SPW_ERR_SINK_DECODE')
  assert.match(reasons.get('not-json')?.[1] ?? '', /not JSON/)
  assert.equal(reasons.get('wrong-type')?.[0], 'SPW_ERR_SINK_REFUSED')
  assert.match(reasons.get('wrong-type')?.[1] ?? '', /invalid input syntax for type numeric.*SQLSTATE 22P02/)
  assert.equal(reasons.get('negative')?.[0], 'SPW_ERR_SINK_REFUSED')
  assert.match(reasons.get('negative')?.[1] ?? '', /orders_total_check.*SQLSTATE 23514/)
  assert.equal(sink.stats().refused, 3)
  const offsets = await sql.query('SELECT next_offset FROM spillway_offsets WHERE topic = $1', [topic])
  assert.equal(offsets.rows[0]?.next_offset, '6')
})

test('a table without a unique id, or no table at all, is a clear error at start', async (t) => {
  const { bootstrap } = testKafka()
  const topic = await createTopic(t, 'sink-pg-setup')
  const db = await freshDatabase(t)
  const sql = await pgClient(t, db)
  await sql.query('CREATE TABLE loose (id text, value jsonb)')
  const base = {
    brokers: bootstrap,
    groupId: randomName('setup'),
    topics: [topic],
    postgres: { host: db.host, port: db.port, database: db.database, user: db.user, password: db.password },
  }
  const loose = createPostgresSink({ ...base, table: 'loose', columns: { id: '$id', value: '$value' } })
  await assert.rejects(loose.run(), /SPW_ERR_INVALID_OPTION|needs a unique index on its id column id/)
  await loose.close()
  const missing = createPostgresSink({ ...base, table: 'nowhere' })
  await assert.rejects(missing.run(), /table nowhere does not exist/)
  await missing.close()
  assert.throws(
    () => createPostgresSink({ ...base, table: 'x', columns: { value: '$value' } }),
    /exactly one column mapped from \$id/,
  )
  assert.throws(
    () => createPostgresSink({ ...base, table: 'x', postgres: { ...base.postgres, port: 'five' as never } }),
    /postgres\.port/,
  )
})
