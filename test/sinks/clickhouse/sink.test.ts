/**
 * The ClickHouse sink against the real broker and Debian's ClickHouse server (18.16): every event once
 * when read with FINAL (copies at the input included), offsets resumed from ClickHouse, and a row of the
 * wrong type dead-lettered with ClickHouse's message while the partition keeps moving.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ClickHouseServer } from '../../../scripts/clickhouse/clickhouse.ts'
import { createClickHouseSink, createProducer } from '../../../src/index.ts'
import { createTopic, produceRaw, randomName, readTopic, testKafka } from '../../helpers/kafka.ts'
import { until } from '../../helpers/wait.ts'

test('ClickHouse: every event once with FINAL, copies at the input included; resumed from the stored offsets; a wrong type is dead-lettered', async (t) => {
  const { bootstrap } = testKafka()
  const server = await ClickHouseServer.start()
  t.after(() => server.stop())
  const ch = server.settings
  const count = async (table: string, final = true): Promise<number> =>
    Number((await server.query(`SELECT count() FROM ${table}${final ? ' FINAL' : ''}`)).trim())

  const topic = await createTopic(t, 'sink-ch', { partitions: 3 })
  const producer = await createProducer({ brokers: bootstrap, ack: 'kafka', transportLingerMs: 0 })
  t.after(() => producer.close())
  const first = await producer.send(
    topic,
    Array.from({ length: 1200 }, (_, i) => ({ key: `user-${i % 29}`, value: { n: i, page: `/p/${i % 7}` } })),
  )
  assert.ok(first.every((r) => r.status === 'accepted'))
  const again = await producer.sendTo(
    first.map((r, i) => ({
      topic,
      event: { id: r.id, key: `user-${i % 29}`, value: { n: i, page: `/p/${i % 7}` } },
    })),
  )
  assert.ok(again.every((r) => r.status === 'accepted'))

  const options = {
    brokers: bootstrap,
    groupId: randomName('ch-sink'),
    topics: [topic],
    clickhouse: { host: ch.host, port: ch.port, user: ch.user, password: ch.password },
    table: 'events',
    createTable: true,
    maxBatchRows: 300,
  }
  const sink = createClickHouseSink(options)
  await sink.run()
  await until('every copy is read and written', () => sink.stats().rowsWritten >= 2400, 60_000)
  await sink.close()
  assert.equal(await count('events'), 1200, 'FINAL folds the copies: each id once')
  const ids = new Set(
    (await server.query('SELECT id FROM events FINAL FORMAT TabSeparated')).trim().split('\n'),
  )
  assert.ok(first.every((r) => ids.has(r.id)))
  const row = JSON.parse(
    (
      await server.query(
        `SELECT topic, partition, key, value, timestamp FROM events FINAL WHERE id = '${first[5]?.id}' FORMAT JSONEachRow`,
      )
    ).trim(),
  )
  assert.equal(row.topic, topic)
  assert.equal(row.key, 'user-5')
  assert.deepEqual(JSON.parse(row.value), { n: 5, page: '/p/5' })

  // a restart reads only what came after the stored offsets
  const more = await producer.send(
    topic,
    Array.from({ length: 150 }, (_, i) => ({ key: `user-${i % 29}`, value: { n: 1200 + i } })),
  )
  assert.ok(more.every((r) => r.status === 'accepted'))
  const resumed = createClickHouseSink(options)
  await resumed.run()
  await until('the new events are written', async () => (await count('events')) >= 1350, 60_000)
  await new Promise((r) => setTimeout(r, 500))
  await resumed.close()
  assert.equal(resumed.stats().rowsWritten, 150, 'nothing before the stored offsets was read again')
  assert.equal(await count('events'), 1350)

  // poison: a value of the wrong type for its column
  const orders = await createTopic(t, 'sink-ch-orders')
  const deadLetters = await createTopic(t, 'sink-ch-dlt')
  await server.query(
    'CREATE TABLE orders (event_id String, customer String, total UInt32) ENGINE = ReplacingMergeTree() ORDER BY event_id',
  )
  await produceRaw(orders, [
    { key: 'a', value: JSON.stringify({ customer: 'c1', total: 10 }), headers: { 'spillway-id': 'ok-1' } },
    {
      key: 'a',
      value: JSON.stringify({ customer: 'c2', total: 'lots' }),
      headers: { 'spillway-id': 'wrong-type' },
    },
    { key: 'a', value: JSON.stringify({ customer: 'c3', total: 30 }), headers: { 'spillway-id': 'ok-2' } },
  ])
  const typed = createClickHouseSink({
    brokers: bootstrap,
    groupId: randomName('ch-orders'),
    topics: [orders],
    deadLetterTopics: { '*': deadLetters },
    clickhouse: { host: ch.host, port: ch.port, user: ch.user, password: ch.password },
    table: 'orders',
    columns: { event_id: '$id', customer: 'customer', total: 'total' },
  })
  t.after(() => typed.close())
  await typed.run()
  await until('the good orders are written', async () => (await count('orders')) === 2, 30_000)
  const dead = await readTopic(deadLetters, { expected: 1, timeoutMs: 20_000 })
  const header = (name: string): string | undefined =>
    dead[0]?.headerEntries.find(([k]) => k.toString() === name)?.[1].toString()
  assert.equal(header('spillway-id'), 'wrong-type')
  assert.equal(header('spillway-error-code'), 'SPW_ERR_SINK_REFUSED')
  assert.match(header('spillway-error') ?? '', /ClickHouse refused the row: Code: \d+/)
  assert.equal((await server.query('SELECT sum(total) FROM orders FINAL')).trim(), '40')
})
