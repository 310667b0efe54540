/**
 * consumer-lag against real groups on the suite's broker: a lagging KIP-848 group, a group that stopped,
 * a group whose offsets are moved back during the run, a member that starves one partition while it
 * keeps the other caught up, and a classic group that is caught up on an idle topic.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { Admin, Consumer, MessagesStreamModes, ProduceAcks, Producer } from '@platformatic/kafka'
import { createConsumer } from '../../src/consumer/consumer.ts'
import type { ConsumedRecord } from '../../src/consumer/types.ts'
import { runDoctor } from '../../src/doctor/doctor.ts'
import type { Finding } from '../../src/doctor/types.ts'
import { createTopic, type PlainRecord, produceRaw, randomName, testKafka } from '../helpers/kafka.ts'
import { until } from '../helpers/wait.ts'

const TEN_MINUTES_AGO = (): number => Date.now() - 600_000
const old = (n: number, partition?: number): PlainRecord[] =>
  Array.from({ length: n }, (_, i) => ({
    key: `k${i}`,
    value: `{"n":${i}}`,
    timestamp: TEN_MINUTES_AGO(),
    ...(partition !== undefined ? { partition } : {}),
  }))

async function committed(admin: Admin, groupId: string, topic: string, partition: number): Promise<bigint> {
  const [group] = await admin.listConsumerGroupOffsets({ groups: [groupId] })
  const p = group?.topics
    .find((t) => t.name === topic)
    ?.partitions.find((x) => x.partitionIndex === partition)
  return p?.committedOffset ?? -1n
}

test('consumer lag: WARN, STOP, REWIND and STARVED groups each get their status; a caught-up classic group on an idle topic is OK', async (t) => {
  const { bootstrap } = testKafka()
  const admin = new Admin({ clientId: 'spillway-test-admin', bootstrapBrokers: bootstrap })
  t.after(() => admin.close())
  const [lagging, stopped, rewound, starved, idle] = await Promise.all([
    createTopic(t, 'lag-warn'),
    createTopic(t, 'lag-stop'),
    createTopic(t, 'lag-rewind'),
    createTopic(t, 'lag-starved', { partitions: 2 }),
    createTopic(t, 'lag-idle'),
  ])
  const groups = {
    warn: randomName('g-warn'),
    stop: randomName('g-stop'),
    rewind: randomName('g-rewind'),
    starved: randomName('g-starved'),
    idle: randomName('g-idle'),
  }
  await Promise.all([
    produceRaw(lagging, old(1000)),
    produceRaw(stopped, old(100)),
    produceRaw(rewound, old(100)),
    produceRaw(starved, [...old(20, 0), ...old(50, 1)]),
    produceRaw(idle, old(50)),
  ])

  // STOP: a group that committed offset 10 and has no members any more
  await admin.alterConsumerGroupOffsets({
    groupId: groups.stop,
    topics: [{ name: stopped, partitionOffsets: [{ partition: 0, offset: 10n }] }],
  })
  await admin.alterConsumerGroupOffsets({
    groupId: groups.rewind,
    topics: [{ name: rewound, partitionOffsets: [{ partition: 0, offset: 80n }] }],
  })

  // WARN: a KIP-848 member handling 20 records a second from a backlog that grows by 40 a second
  const slow = createConsumer({
    brokers: bootstrap,
    groupId: groups.warn,
    topics: [lagging],
    ordering: 'partition',
    concurrency: 1,
    commitIntervalMs: 200,
    dedupe: false,
    closeTimeoutMs: 500,
    handler: () => new Promise<void>((r) => setTimeout(r, 50)),
  })
  t.after(() => slow.close())
  // STARVED: one member; partition 0 is handled at once, partition 1 blocks from its sixth record on
  const stuck = createConsumer({
    brokers: bootstrap,
    groupId: groups.starved,
    topics: [starved],
    ordering: 'partition',
    commitIntervalMs: 200,
    dedupe: false,
    closeTimeoutMs: 500,
    handler: async (record) => {
      const r = record as ConsumedRecord
      if (r.partition === 1 && r.offset >= 5n) await new Promise<void>(() => undefined)
    },
  })
  t.after(() => stuck.close())
  // OK: a classic-protocol group that read its idle topic to the end and stays joined
  const classic = new Consumer({
    clientId: 'classic-reader',
    groupId: groups.idle,
    bootstrapBrokers: bootstrap,
    maxWaitTime: 200,
  })
  t.after(() => classic.close(true))
  const stream = await classic.consume({
    topics: [idle],
    mode: MessagesStreamModes.EARLIEST,
    autocommit: 100,
  })
  t.after(() => stream.close())
  stream.on('data', () => undefined)
  await Promise.all([slow.run(), stuck.run()])
  await until('the slow group commits', async () => (await committed(admin, groups.warn, lagging, 0)) > 0n)
  await until(
    'the starved partition commits its first five',
    async () => (await committed(admin, groups.starved, starved, 1)) === 5n,
  )
  await until(
    'partition 0 caught up',
    async () => (await committed(admin, groups.starved, starved, 0)) === 20n,
  )
  await until(
    'the classic group caught up',
    async () => (await committed(admin, groups.idle, idle, 0)) === 50n,
  )

  // during the run: the backlog grows by 40 a second, and the rewound group's offset is moved back
  const writer = new Producer({
    clientId: 'lag-writer',
    bootstrapBrokers: bootstrap,
    acks: ProduceAcks.LEADER,
  } as ConstructorParameters<typeof Producer<Buffer, Buffer, Buffer, Buffer>>[0])
  let writing = true
  const writes = (async () => {
    while (writing) {
      await writer.send({
        messages: old(4).map((r) => ({
          topic: lagging,
          key: Buffer.from(String(r.key)),
          value: Buffer.from(String(r.value)),
          timestamp: BigInt(r.timestamp ?? 0),
        })) as never,
      })
      await new Promise((r) => setTimeout(r, 100))
    }
  })()
  const rewind = (async () => {
    await new Promise((r) => setTimeout(r, 1500))
    await admin.alterConsumerGroupOffsets({
      groupId: groups.rewind,
      topics: [{ name: rewound, partitionOffsets: [{ partition: 0, offset: 20n }] }],
    })
  })()
  const report = await runDoctor({
    brokers: bootstrap,
    topics: [lagging, stopped, rewound, starved, idle],
    groups: Object.values(groups),
    checks: ['consumer-lag'],
    budgetMs: 6000,
  })
  writing = false
  await Promise.all([writes, rewind])
  await writer.close()

  const lag = report.checks.find((c) => c.id === 'consumer-lag')
  assert.ok(lag)
  const detail = JSON.stringify(lag, null, 2)
  const of = (group: string): Finding[] => lag.findings.filter((f) => f.subject === `group ${group}`)
  assert.deepEqual(
    of(groups.warn).map((f) => f.id),
    ['consumer-lag.warn'],
    detail,
  )
  assert.deepEqual(
    of(groups.stop).map((f) => f.id),
    ['consumer-lag.stop'],
    detail,
  )
  assert.deepEqual(
    of(groups.rewind).map((f) => f.id),
    ['consumer-lag.rewind'],
    detail,
  )
  assert.deepEqual(
    of(groups.starved).map((f) => f.id),
    ['consumer-lag.starved'],
    detail,
  )
  assert.deepEqual(of(groups.idle), [], detail)

  const [stop] = of(groups.stop)
  const [p] = (stop?.evidence.partitions ?? []) as { lag: string; lagSeconds: number }[]
  assert.equal(p?.lag, '90')
  // exact: the record at offset 10 was written ten minutes ago
  assert.ok((p?.lagSeconds ?? 0) >= 595 && (p?.lagSeconds ?? 0) < 700, detail)
  const [starvedFinding] = of(groups.starved)
  assert.equal(starvedFinding?.evidence.protocol, 'consumer')
  assert.deepEqual(
    ((starvedFinding?.evidence.partitions ?? []) as { partition: number; committed: string }[]).map((x) => [
      x.partition,
      x.committed,
    ]),
    [[1, '5']],
  )
  const idleRow = lag.table?.rows.find((r) => r[0] === groups.idle)
  assert.ok(idleRow, detail)
  assert.equal(idleRow[1], 'classic')
  assert.notEqual(idleRow[3], '-', 'the classic member owns the partition')
  assert.equal(idleRow[8], 'OK')
  assert.ok(report.windowMs >= 3000, `window ${report.windowMs} ms`)
})
