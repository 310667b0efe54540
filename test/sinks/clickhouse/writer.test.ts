/**
 * The ClickHouse writer on its own against Debian's ClickHouse server (18.16): batches that wait while an
 * insert is under way go in one insert; a row ClickHouse refuses in such a group sends each batch on its
 * own and only that row to the dead letters; a null for a column that is not Nullable is refused instead
 * of being stored as the column's default; a mapped column the table lacks is a configuration error.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ClickHouseServer } from '../../../scripts/clickhouse/clickhouse.ts'
import type { ConsumedRecord } from '../../../src/consumer/types.ts'
import { isSpillwayError } from '../../../src/errors.ts'
import { readClickHouseTable } from '../../../src/sinks/clickhouse/options.ts'
import { ClickHouseWriter } from '../../../src/sinks/clickhouse/writer.ts'
import { mapRecord } from '../../../src/sinks/mapping.ts'
import type { Batch, Refusal } from '../../../src/sinks/types.ts'

const record = (partition: number, offset: number, value: unknown): ConsumedRecord<Buffer | null> => ({
  topic: 'orders',
  partition,
  offset: BigInt(offset),
  timestamp: 1_700_000_000_000,
  key: Buffer.from(`k${offset}`),
  value: Buffer.from(JSON.stringify(value)),
  headers: [],
  id: `orders-${partition}-${offset}`,
})

test('ClickHouse writer: waiting batches share an insert; a refused row sends each batch alone; a missing value is refused, not defaulted', async (t) => {
  const server = await ClickHouseServer.start()
  t.after(() => server.stop())
  const ch = server.settings
  await server.query(
    'CREATE TABLE orders (event_id String, customer String, note Nullable(String), total UInt32) ENGINE = ReplacingMergeTree() ORDER BY event_id',
  )
  const options = readClickHouseTable({
    clickhouse: { host: ch.host, port: ch.port, user: ch.user, password: ch.password },
    table: 'orders',
    columns: { event_id: '$id', customer: 'customer', note: 'note', total: 'total' },
  })
  const writer = new ClickHouseWriter(options)
  t.after(() => writer.close())
  await writer.open()

  const batch = (partition: number, values: unknown[]): Batch => {
    const records = values.map((v, i) => record(partition, i, v))
    return {
      owner: 'writer-test',
      topic: 'orders',
      partition,
      nextOffset: BigInt(values.length),
      rows: records.map((r) => ({ record: r, values: mapRecord(options.mapping, r, writer.timestamps) })),
    }
  }
  const refusedBy = new Map<number, Refusal[]>()
  const write = (b: Batch) =>
    writer.write(b, [], async (refusals) => {
      refusedBy.set(b.partition, [...refusals])
    })
  // each insert makes one part of level 0; a merge makes a new part and leaves those listed, inactive
  const inserts = async (): Promise<number> =>
    Number(
      (
        await server.query(
          "SELECT count() FROM system.parts WHERE database = currentDatabase() AND table = 'orders' AND level = 0",
        )
      ).trim(),
    )

  // three batches written at once: the first goes alone, the two that waited for it go together
  const ok = (p: number) =>
    Array.from({ length: 50 }, (_, i) => ({ customer: `c${p}-${i}`, total: i, note: i % 2 ? 'n' : null }))
  const results = await Promise.all([write(batch(0, ok(0))), write(batch(1, ok(1))), write(batch(2, ok(2)))])
  assert.deepEqual(
    results.map((r) => r.inserted),
    [50, 50, 50],
  )
  assert.equal(await inserts(), 2, 'two inserts (parts) for three batches')
  assert.equal((await server.query("SELECT count() FROM orders FINAL WHERE note = 'n'")).trim(), '75')
  assert.equal((await server.query('SELECT count() FROM orders FINAL WHERE isNull(note)')).trim(), '75')
  const offsets = (
    await server.query(
      "SELECT partition, max(next_offset) FROM spillway_offsets WHERE owner = 'writer-test' GROUP BY partition ORDER BY partition FORMAT TabSeparated",
    )
  ).trim()
  assert.equal(offsets, '0\t50\n1\t50\n2\t50')

  // a group ClickHouse refuses for one row: every other row is written, that row is refused with its message
  const wrong = ok(5).map((v, i) => (i === 7 ? { ...v, total: 'lots' } : v))
  const missing = ok(6).map((v, i) => (i === 3 ? { total: 1 } : v))
  const [first, second, third] = await Promise.all([
    write(batch(4, ok(4))),
    write(batch(5, wrong)),
    write(batch(6, missing)),
  ])
  assert.equal(first?.inserted, 50)
  assert.deepEqual([second?.inserted, second?.refused], [49, 1])
  assert.deepEqual([third?.inserted, third?.refused], [49, 1])
  const [typeRefusal] = refusedBy.get(5) ?? []
  assert.equal(typeRefusal?.record.offset, 7n)
  assert.equal(typeRefusal?.error.code, 'SPW_ERR_SINK_REFUSED')
  assert.match(typeRefusal?.error.message ?? '', /ClickHouse refused the row: Code: \d+/)
  const [nullRefusal] = refusedBy.get(6) ?? []
  assert.equal(nullRefusal?.record.offset, 3n)
  assert.match(nullRefusal?.error.message ?? '', /no value for column customer, which is not Nullable/)
  assert.equal(refusedBy.has(4), false)
  assert.equal((await server.query('SELECT count() FROM orders FINAL')).trim(), String(150 + 50 + 49 + 49))
  assert.equal(
    (await server.query("SELECT count() FROM orders FINAL WHERE customer = ''")).trim(),
    '0',
    'no default stored for a missing value',
  )

  // a mapped column the table does not have: a configuration error at open, naming it
  const typo = new ClickHouseWriter(
    readClickHouseTable({
      clickhouse: { host: ch.host, port: ch.port, user: ch.user, password: ch.password },
      table: 'orders',
      columns: { event_id: '$id', custmer: 'customer' },
    }),
  )
  t.after(() => typo.close())
  await assert.rejects(
    typo.open(),
    (e: unknown) =>
      isSpillwayError(e) && e.code === 'SPW_ERR_INVALID_OPTION' && /has no column custmer/.test(e.message),
  )
})
