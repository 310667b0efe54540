/**
 * ClickHouse goes away: the server (one of this test's own) is killed for 20 s while events flow into a
 * ClickHouse sink, then started again on the same data. The sink reports the database down, holds its
 * partitions and retries; afterwards every event is in the table once (FINAL) and nothing went to the
 * dead-letter path.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { ClickHouseServer } from '../../../scripts/clickhouse/clickhouse.ts'
import { createClickHouseSink, type SinkEvent } from '../../../src/index.ts'
import { startEventFlow } from '../../helpers/event-flow.ts'
import { createTopic, randomName, testKafka } from '../../helpers/kafka.ts'
import { until } from '../../helpers/wait.ts'

const OUTAGE_MS = 20_000

test('ClickHouse killed for 20 s under load: the sink waits and retries, then every event is there once', async (t) => {
  const { bootstrap } = testKafka()
  const server = await ClickHouseServer.start()
  t.after(() => server.stop())
  const ch = server.settings
  const topic = await createTopic(t, 'sink-ch-down', { partitions: 2 })
  const sink = createClickHouseSink({
    brokers: bootstrap,
    groupId: randomName('ch-down'),
    topics: [topic],
    clickhouse: { host: ch.host, port: ch.port, user: ch.user, password: ch.password },
    table: 'events',
    createTable: true,
    maxBatchRows: 200,
    maxRetryBackoffMs: 2000,
  })
  const events: SinkEvent[] = []
  sink.on('event', (e: SinkEvent) => events.push(e))
  t.after(() => sink.close())
  await sink.run()

  const flow = await startEventFlow(t, bootstrap, topic)
  const sent = flow.sent
  const count = async (): Promise<number> =>
    Number((await server.query('SELECT count() FROM events FINAL')).trim())
  await until('rows arrive', async () => sink.stats().rowsWritten >= 200, 30_000)

  await server.kill()
  await until('the sink sees the database down', () => !sink.stats().databaseUp, 15_000)
  await until(
    'a partition waits and retries',
    () => sink.stats().partitions.some((p) => p.state === 'waiting' && p.retries > 0),
    15_000,
  )
  await new Promise((r) => setTimeout(r, OUTAGE_MS))
  const duringOutage = sent.length

  await server.restart()
  await until('the database is back', () => sink.stats().databaseUp, 30_000)
  await flow.stop()
  assert.ok(sent.length > duringOutage, 'events went on arriving')
  await until('every event is written', async () => (await count()) >= sent.length, 60_000)
  await new Promise((r) => setTimeout(r, 1000))

  assert.equal(await count(), sent.length, 'each event once after FINAL')
  const ids = new Set(
    (await server.query('SELECT id FROM events FINAL FORMAT TabSeparated')).trim().split('\n'),
  )
  assert.ok(
    sent.every((id) => ids.has(id)),
    'no event is missing',
  )
  const stats = sink.stats()
  assert.equal(stats.refused, 0, 'an outage is not a refusal: nothing went to the dead letters')
  assert.ok(stats.retries > 0)
  assert.ok(events.some((e) => e.type === 'database' && !e.up))
  assert.ok(events.some((e) => e.type === 'database' && e.up))
})
