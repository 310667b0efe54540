/**
 * Incident 4, consumer half: a batch handled on the thread that heartbeats missed its heartbeats, the
 * group rebalanced, and the commit failed (CommitFailedException), so the batch was handled again.
 *
 * Here two members share a topic; one handler call takes three times the group's session timeout (the
 * test broker's group.consumer.session.timeout.ms is 6 s). Heartbeats run on their own timer: no member
 * is fenced, no partition moves, no commit is refused, and every record is handled once.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import {
  type ConsumedRecord,
  type ConsumerStatus,
  createConsumer,
  type SpillwayConsumer,
} from '../../src/index.ts'
import { createTopic, produceRaw, randomName, testKafka } from '../helpers/kafka.ts'
import { until } from '../helpers/wait.ts'

const SESSION_TIMEOUT_MS = 6000

test('a handler three times slower than the session timeout: no rebalance, no refused commit, handled once', async (t) => {
  const topic = await createTopic(t, 'slow', { partitions: 4 })
  const groupId = randomName('slow')
  const handled = new Map<string, number>()
  const statuses: { member: number; status: ConsumerStatus }[] = []
  const make = (): SpillwayConsumer =>
    createConsumer({
      brokers: testKafka().bootstrap,
      groupId,
      topics: [topic],
      handlerTimeoutMs: 5 * SESSION_TIMEOUT_MS,
      handler: async (record) => {
        const r = record as ConsumedRecord
        if (r.value?.toString() === 'slow')
          await new Promise((res) => setTimeout(res, 3 * SESSION_TIMEOUT_MS))
        handled.set(r.id, (handled.get(r.id) ?? 0) + 1)
      },
    })
  const members = [make(), make()]
  members.forEach((m, i) => {
    m.on('status', (status) => statuses.push({ member: i, status }))
  })
  t.after(() => Promise.all(members.map((m) => m.close())))
  for (const m of members) await m.run()
  await until('the partitions spread over both members', () => members.every((m) => m.stats().assigned === 2))
  await new Promise((r) => setTimeout(r, 1500))
  const settled = statuses.length
  const owners = members.map((m) => m.stats().partitions.map((p) => p.partition))

  await produceRaw(topic, [
    ...[0, 1, 2, 3].map((partition) => ({
      value: partition === 0 ? 'slow' : 'fast',
      partition,
      headers: { 'spillway-id': `first-${partition}` },
    })),
  ])
  const started = performance.now()
  await until('the slow record', () => handled.has('first-0'), 5 * SESSION_TIMEOUT_MS)
  const took = performance.now() - started
  assert.ok(
    took >= 3 * SESSION_TIMEOUT_MS - 100,
    `the handler ran ${Math.round(took)} ms, past three session timeouts`,
  )
  // records that arrive afterwards are still fetched and handled by the same members
  await produceRaw(
    topic,
    [0, 1, 2, 3].map((partition) => ({
      value: 'after',
      partition,
      headers: { 'spillway-id': `after-${partition}` },
    })),
  )
  await until('the later records', () => [0, 1, 2, 3].every((p) => handled.has(`after-${p}`)))
  for (const m of members) await m.commit()

  const during = statuses.slice(settled).map((s) => s.status)
  assert.deepEqual(
    during.filter((s) => s.type === 'revoked' || s.type === 'assigned' || s.type === 'commit-refused'),
    [],
    'no partition moved and no commit was refused',
  )
  assert.deepEqual(
    members.map((m) => m.stats().partitions.map((p) => p.partition)),
    owners,
    'each partition stayed with its member',
  )
  assert.ok(members.every((m) => m.stats().commitsRefused === 0))
  assert.equal(handled.size, 8)
  assert.ok(
    [...handled.values()].every((n) => n === 1),
    'each record handled once',
  )
})
