/**
 * Events of a topic that does not exist yet wait in the waiting log, without holding up other topics,
 * and leave in order once the topic exists, or as dead letters after unknownTopicTimeoutMs. A scripted
 * cluster (no broker) and real logs in a temporary directory; the real-broker case is in
 * test/gateway/missing-topic.test.ts.
 */
import assert from 'node:assert/strict'
import { join } from 'node:path'
import { test } from 'node:test'
import { Breaker } from '../../src/breaker/breaker.ts'
import { DurableLog } from '../../src/log/log.ts'
import { DeadLetters } from '../../src/producer/dead-letters.ts'
import { Dispatcher } from '../../src/producer/dispatcher.ts'
import { encodeEnvelope } from '../../src/producer/envelope.ts'
import { WaitingRoom } from '../../src/producer/waiting.ts'
import { FakeCluster, OK } from '../helpers/fake-cluster.ts'
import { tempDir } from '../helpers/fs.ts'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

async function setup(t: { after(fn: () => unknown): void }, timeoutMs: number | undefined, dir?: string) {
  const root = dir ?? (await tempDir(t))
  const main = await DurableLog.open({ dir: join(root, 'main') })
  const deadLetterLog = await DurableLog.open({ dir: join(root, 'dead-letter') })
  const fake = new FakeCluster(() => OK, { here: 2 })
  const letters: string[] = []
  const deadLetters = new DeadLetters({ deadLetterLog, outboxLog: undefined }, {}, (s) => {
    if (s.type === 'dead-letter') letters.push(`${s.id}: ${s.reason}`)
  })
  const dispatch = { batchBytes: 1 << 20, batchRecords: 50, lingerMs: 0, deadlineMs: 2000 }
  const breaker = { cooldownMs: 20, maxCooldownMs: 60, jitter: 0 }
  const room = new WaitingRoom(
    {
      dir: join(root, 'main', 'waiting'),
      log: main.options,
      timeoutMs,
      dispatch,
      breaker,
      cluster: () => fake,
    },
    deadLetters,
  )
  const mainDispatcher = new Dispatcher(dispatch, {
    backlog: main,
    cluster: () => fake,
    breaker: new Breaker(breaker),
    deadLetter: (r) => deadLetters.store(r),
    wait: (r) => room.park(r),
    divert: (topic) => room.holds(topic),
  })
  let closed = false
  const close = async () => {
    if (closed) return
    closed = true
    await mainDispatcher.stop()
    await room.close()
    await Promise.all([main.close(), deadLetterLog.close()])
  }
  t.after(close)
  const append = async (events: { id: string; topic: string; key?: string }[]) => {
    await main.append(
      events.map((e) =>
        encodeEnvelope({
          id: e.id,
          topic: e.topic,
          key: Buffer.from(e.key ?? 'k'),
          value: Buffer.from(e.id),
          headers: [],
          timestamp: Date.now(),
        }),
      ),
    )
  }
  mainDispatcher.start()
  return { fake, room, append, mainDispatcher, letters, close, root }
}

test('a missing topic waits without holding up the others, then leaves in order once it exists', async (t) => {
  const { fake, room, append, mainDispatcher, letters } = await setup(t, undefined)
  const first = Array.from({ length: 30 }, (_, i) => ({ id: `e${i}`, topic: i % 3 === 0 ? 'later' : 'here' }))
  await append(first)
  assert.ok(await mainDispatcher.drained(5000), 'the main log drains: nothing blocks its cursor')
  const here = fake.sent.filter((s) => s.topic === 'here').map((s) => s.id)
  assert.deepEqual(
    here,
    first.filter((e) => e.topic === 'here').map((e) => e.id),
    'the other topic flowed',
  )
  assert.deepEqual(room.stats(), { events: 10, topics: { later: 10 } })
  await sleep(200)
  assert.equal(fake.sent.filter((s) => s.topic === 'later').length, 0, 'still waiting while it is missing')
  assert.deepEqual(letters, [], 'not dead-lettered')

  // the topic appears, and new events for it arrive meanwhile: they must follow the waiting ones
  fake.partitionCounts.set('later', 1)
  await append(Array.from({ length: 5 }, (_, i) => ({ id: `n${i}`, topic: 'later' })))
  assert.ok(await room.empty(10_000), 'everything left the waiting log')
  const later = fake.sent.filter((s) => s.topic === 'later').map((s) => s.id)
  const expected = [
    ...first.filter((e) => e.topic === 'later').map((e) => e.id),
    'n0',
    'n1',
    'n2',
    'n3',
    'n4',
  ]
  assert.deepEqual(later, expected, 'every waiting event once, in the order it came, new ones after')
  assert.deepEqual(room.stats(), { events: 0, topics: {} })
})

test('an event that waited longer than unknownTopicTimeoutMs becomes a dead letter with the reason', async (t) => {
  const { room, append, letters, fake } = await setup(t, 300)
  await append([
    { id: 'x1', topic: 'never' },
    { id: 'x2', topic: 'never' },
  ])
  const deadline = performance.now() + 5000
  while (letters.length < 2 && performance.now() < deadline) await sleep(20)
  assert.equal(letters.length, 2)
  assert.match(letters[0] ?? '', /^x1: topic never did not appear within 300 ms/)
  // a dead letter is reported before its append to the dead-letter log finishes; it leaves the room after
  await room.empty(5000)
  assert.deepEqual(room.stats(), { events: 0, topics: {} })
  assert.equal(fake.sent.length, 0)
})

test('what waits survives a restart, in order, and still goes before newer events of its topic', async (t) => {
  const first = await setup(t, undefined)
  await first.append([
    { id: 'old-1', topic: 'later' },
    { id: 'old-2', topic: 'later' },
  ])
  assert.ok(await first.mainDispatcher.drained(5000))
  assert.deepEqual(first.room.stats(), { events: 2, topics: { later: 2 } })
  await first.close()

  const second = await setup(t, undefined, first.root)
  assert.equal(second.room.holds('later'), true, 'known before the first batch')
  await second.append([{ id: 'new-1', topic: 'later' }])
  assert.ok(await second.mainDispatcher.drained(5000))
  second.fake.partitionCounts.set('later', 1)
  assert.ok(await second.room.empty(10_000), 'everything left the waiting log')
  assert.deepEqual(
    second.fake.sent.filter((s) => s.topic === 'later').map((s) => s.id),
    ['old-1', 'old-2', 'new-1'],
  )
})
