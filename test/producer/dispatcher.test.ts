/**
 * The dispatcher against a scripted cluster (test/helpers/fake-cluster.ts): ordering per key, cuts at
 * partition byte limits, poison isolation, late outcomes and replay counting, with no broker. The
 * real-broker behaviour is in producer.test.ts and test/incidents/.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Breaker } from '../../src/breaker/breaker.ts'
import { MemoryBacklog } from '../../src/producer/backlog.ts'
import { Dispatcher, type DispatcherOptions, type PoisonedRecord } from '../../src/producer/dispatcher.ts'
import { encodeEnvelope } from '../../src/producer/envelope.ts'
import { partitionForKey } from '../../src/producer/partitioner.ts'
import type { RecordOutcome } from '../../src/transport/transport.ts'
import { FakeCluster, OK, poison, retriable, type Script } from '../helpers/fake-cluster.ts'

interface Setup {
  readonly fake: FakeCluster
  readonly backlog: MemoryBacklog
  readonly dispatcher: Dispatcher
  readonly deadLetters: PoisonedRecord[]
}

function setup(
  t: { after(fn: () => unknown): void },
  script: Script,
  partitions: Record<string, number>,
  options: Partial<DispatcherOptions> = {},
): Setup {
  const fake = new FakeCluster(script, partitions)
  const backlog = new MemoryBacklog(64 * 1024 * 1024)
  const deadLetters: PoisonedRecord[] = []
  const dispatcher = new Dispatcher(
    { batchBytes: 1 << 20, batchRecords: 500, lingerMs: 0, deadlineMs: 2000, lateWaitMs: 5000, ...options },
    {
      backlog,
      cluster: () => fake,
      breaker: new Breaker({ cooldownMs: 5, maxCooldownMs: 20, jitter: 0 }),
      deadLetter: async (record) => {
        deadLetters.push(record)
      },
    },
  )
  t.after(() => dispatcher.stop())
  return { fake, backlog, dispatcher, deadLetters }
}

async function append(
  backlog: MemoryBacklog,
  events: readonly { id: string; topic: string; key?: string; value?: string | Buffer }[],
): Promise<void> {
  await backlog.append(
    events.map((e) =>
      encodeEnvelope({
        id: e.id,
        topic: e.topic,
        key: e.key === undefined ? undefined : Buffer.from(e.key),
        value: typeof e.value === 'string' || e.value === undefined ? Buffer.from(e.value ?? e.id) : e.value,
        headers: [],
        timestamp: 1_700_000_000_000,
      }),
    ),
  )
}

test('records of one key go to its Java-murmur2 partition, in order, once each', async (t) => {
  const { fake, backlog, dispatcher } = setup(t, () => OK, { orders: 4 })
  const events = Array.from({ length: 300 }, (_, i) => ({ id: `e${i}`, topic: 'orders', key: `k${i % 13}` }))
  await append(backlog, events)
  dispatcher.start()
  assert.ok(await dispatcher.drained(5000), 'drained')
  assert.deepEqual(
    fake.sent.map((s) => s.id),
    events.map((e) => e.id),
    'each once, in log order',
  )
  for (const s of fake.sent)
    assert.equal(s.partition, partitionForKey(Buffer.from(s.key as string), 4), `${s.key} on its partition`)
  assert.equal(dispatcher.stats.delivered, 300)
  assert.equal(dispatcher.stats.replayed, 0)
  assert.equal(backlog.cursor.seq, 300n)
})

test('a batch ends where one partition would pass partitionBytes; the rest follows in the next', async (t) => {
  const { fake, backlog, dispatcher } = setup(t, () => OK, { big: 2 }, { partitionBytes: 10_000 })
  const events = Array.from({ length: 12 }, (_, i) => ({
    id: `b${i}`,
    topic: 'big',
    value: Buffer.alloc(3000, i),
    // every record on partition 0 except b5
    ...(i === 5 ? { key: 'x' } : { key: 'same' }),
  }))
  const p0 = partitionForKey(Buffer.from('same'), 2)
  await append(backlog, events)
  dispatcher.start()
  assert.ok(await dispatcher.drained(5000))
  assert.deepEqual(
    fake.sent.map((s) => s.id),
    events.map((e) => e.id),
  )
  for (const call of fake.calls) {
    const bytes = call.filter((s) => s.partition === p0).reduce((sum, s) => sum + s.value.length, 0)
    assert.ok(bytes <= 10_000, `call carries ${bytes} bytes for one partition`)
  }
  assert.ok(fake.calls.length >= 4, `${fake.calls.length} calls for 11 records of 3000 bytes at 3 per batch`)
})

test('poison is isolated record by record: only the culprits are dead-lettered, their neighbours delivered', async (t) => {
  // Kafka refuses a whole partition batch when one of its records is too large
  const script: Script = (record, call) =>
    call.some((c) => c.partition === record.partition && c.value.startsWith('bad')) ? poison() : OK
  const { fake, backlog, dispatcher, deadLetters } = setup(t, script, { t: 1 })
  const events = Array.from({ length: 40 }, (_, i) => ({
    id: `p${i}`,
    topic: 't',
    value: i === 7 || i === 31 ? `bad ${i}` : `good ${i}`,
  }))
  await append(backlog, events)
  dispatcher.start()
  assert.ok(await dispatcher.drained(5000))
  assert.deepEqual(
    deadLetters.map((d) => d.envelope?.id),
    ['p7', 'p31'],
  )
  assert.ok(deadLetters.every((d) => d.reason === 'MESSAGE_TOO_LARGE'))
  const deliveredAlone = new Set(
    fake.calls.filter((c) => c.length === 1 && !c[0]?.value.startsWith('bad')).map((c) => c[0]?.id),
  )
  assert.ok(deliveredAlone.size > 0, 'the neighbours were tried one by one')
  assert.equal(dispatcher.stats.deadLettered, 2)
  assert.equal(dispatcher.stats.delivered, 38)
  assert.equal(backlog.cursor.seq, 40n, 'the cursor moved past the poison')
})

test('a topic that does not exist is dead-lettered without holding up the others', async (t) => {
  const { fake, backlog, dispatcher, deadLetters } = setup(t, () => OK, { here: 1 })
  await append(backlog, [
    { id: 'a', topic: 'here' },
    { id: 'b', topic: 'gone' },
    { id: 'c', topic: 'here' },
  ])
  dispatcher.start()
  assert.ok(await dispatcher.drained(5000))
  assert.deepEqual(
    fake.sent.map((s) => s.id),
    ['a', 'c'],
  )
  assert.deepEqual(
    deadLetters.map((d) => [d.envelope?.id, d.reason]),
    [['b', 'topic gone does not exist']],
  )
})

test('a request cut short by its deadline: the dispatcher waits for the real outcome instead of sending again', async (t) => {
  let releaseLate: (outcome: RecordOutcome) => void = () => undefined
  const late = new Promise<RecordOutcome>((resolve) => {
    releaseLate = resolve
  })
  const script: Script = (record) =>
    record.attempt === 1
      ? ({ ...(retriable('no answer within 2000 ms', true) as object), late } as RecordOutcome)
      : OK
  const { fake, backlog, dispatcher } = setup(t, script, { t: 1 })
  await append(
    backlog,
    Array.from({ length: 5 }, (_, i) => ({ id: `l${i}`, topic: 't' })),
  )
  dispatcher.start()
  await new Promise((r) => setTimeout(r, 100))
  assert.equal(fake.calls.length, 1, 'nothing sent again while the real outcome is pending')
  releaseLate(OK)
  assert.ok(await dispatcher.drained(5000))
  assert.equal(fake.sent.length, 5, 'each record sent once: the late answer said it was written')
  assert.equal(dispatcher.stats.replayed, 0)
  assert.equal(dispatcher.stats.delivered, 5)
})

test('a late outcome that says "not written" leads to one more send, counted as a replay', async (t) => {
  const script: Script = (record) =>
    record.attempt === 1
      ? ({
          ...(retriable('no answer', true) as object),
          late: Promise.resolve(retriable('NOT_ENOUGH_REPLICAS', true)),
        } as RecordOutcome)
      : OK
  const { fake, backlog, dispatcher } = setup(t, script, { t: 1 })
  await append(backlog, [{ id: 'x', topic: 't' }])
  dispatcher.start()
  assert.ok(await dispatcher.drained(5000))
  assert.deepEqual(
    fake.sent.map((s) => [s.id, s.attempt]),
    [
      ['x', 1],
      ['x', 2],
    ],
  )
  assert.equal(dispatcher.stats.replayed, 1, 'the ambiguous first attempt makes the second a replay')
})

test('one partition fails: the cursor keeps the acknowledged prefix; records after the failure are sent again and counted', async (t) => {
  const failing = partitionForKey(Buffer.from('red'), 2)
  const blue = ['blue', 'green', 'amber', 'k1', 'k2', 'k3'].find(
    (k) => partitionForKey(Buffer.from(k), 2) !== failing,
  )
  const script: Script = (record) => (record.partition === failing && record.attempt === 1 ? retriable() : OK)
  const { fake, backlog, dispatcher } = setup(t, script, { t: 2 })
  const events = Array.from({ length: 20 }, (_, i) => ({
    id: `r${i}`,
    topic: 't',
    key: i >= 6 && i % 3 === 0 ? 'red' : (blue as string),
  }))
  await append(backlog, events)
  dispatcher.start()
  assert.ok(await dispatcher.drained(5000))
  const firstFailure = events.findIndex((e) => e.key === 'red')
  const firstOutcomes = new Map<string, RecordOutcome>()
  for (const s of fake.sent) if (s.attempt === 1) firstOutcomes.set(s.id, script(s, []))
  const resentAfterOk = fake.sent.filter((s) => s.attempt === 2 && firstOutcomes.get(s.id)?.kind === 'ok')
  assert.ok(resentAfterOk.length > 0, 'acknowledged records after the failure went again')
  assert.ok(
    resentAfterOk.every((s) => Number(s.id.slice(1)) > firstFailure),
    'nothing before the first failure was sent again',
  )
  assert.equal(
    dispatcher.stats.replayed,
    resentAfterOk.length,
    'every re-send of an acknowledged record counted',
  )
  assert.equal(dispatcher.stats.failedBatches, 1)
  assert.deepEqual(
    [...new Set(fake.sent.map((s) => s.id))],
    events.map((e) => e.id),
  )
  // per key, the last copy of each record arrives in order
  const lastCopy = new Map<string, number>()
  for (const [i, s] of fake.sent.entries()) lastCopy.set(s.id, i)
  const red = events.filter((e) => e.key === 'red').map((e) => lastCopy.get(e.id) as number)
  assert.deepEqual(
    red,
    [...red].sort((a, b) => a - b),
    'a key keeps its order',
  )
  assert.equal(backlog.cursor.seq, 20n)
})

test('drained() resolves false when time runs out or the dispatcher stops, never rejects', async (t) => {
  const { backlog, dispatcher } = setup(t, () => retriable(), { t: 1 })
  await append(backlog, [{ id: 'stuck', topic: 't' }])
  dispatcher.start()
  assert.equal(await dispatcher.drained(100), false, 'Kafka keeps refusing: not drained')
  const waiting = dispatcher.drained(60_000)
  await dispatcher.stop()
  assert.equal(await waiting, false, 'stop() ends the wait')
})

test('the sent mark is read and written by the dispatcher but never closed by it (its owner closes it)', async (t) => {
  const fake = new FakeCluster(() => OK, { t: 1 })
  const backlog = new MemoryBacklog(1 << 20)
  const writes: bigint[] = []
  let closed = 0
  const mark = {
    read: () => -1n,
    write: async (seq: bigint) => {
      writes.push(seq)
    },
    close: async () => {
      closed++
    },
  }
  const dispatcher = new Dispatcher(
    { batchBytes: 1 << 20, batchRecords: 500, lingerMs: 0, deadlineMs: 2000 },
    {
      backlog,
      cluster: () => fake,
      breaker: new Breaker({ cooldownMs: 5, jitter: 0 }),
      deadLetter: async () => undefined,
      sentMark: mark,
    },
  )
  t.after(() => dispatcher.stop())
  await append(backlog, [
    { id: 'a', topic: 't' },
    { id: 'b', topic: 't' },
  ])
  dispatcher.start()
  assert.ok(await dispatcher.drained(5000))
  await dispatcher.stop()
  assert.deepEqual(writes, [2n], 'the mark moved past what was sent')
  assert.equal(closed, 0, 'stop() leaves the file to its owner')
})
