/**
 * What every Cluster promises, run against the real broker by each implementation's own test file
 * (in-thread and worker): concurrent idempotent sends keep order within a partition, a failure confined
 * to one topic decides only that topic's outcome, and every admin operation answers through the facet.
 */
import assert from 'node:assert/strict'
import { randomUUID } from 'node:crypto'
import { test } from 'node:test'
import { Admin, Consumer } from '@platformatic/kafka'
import type { Cluster } from '../../src/transport/cluster.ts'
import type { OutboundRecord } from '../../src/transport/transport.ts'
import { createTopic, randomName, readTopic, testKafka } from './kafka.ts'
import { outbound } from './outbound.ts'

export function clusterContract(make: (brokers: string[], clientId: string) => Cluster): void {
  test('20 concurrent idempotent sends: every record once, in order within each partition', async (t) => {
    const kafka = testKafka()
    const topic = await createTopic(t, 'concurrent', { partitions: 3 })
    const transport = make(kafka.bootstrap, 'spillway-concurrent')
    t.after(() => transport.close())
    const calls = Array.from({ length: 20 }, (_, c) =>
      Array.from(
        { length: 50 },
        (_, i): OutboundRecord =>
          outbound({
            topic,
            partition: (c + i) % 3,
            value: Buffer.from(`${c}:${i}`),
            headers: [['spillway-id', Buffer.from(`${c}-${i}`)]],
          }),
      ),
    )
    const outcomes = await Promise.all(calls.map((records) => transport.producer.send(records, 10_000)))
    assert.ok(
      outcomes.flat().every((o) => o.kind === 'ok'),
      'every record acknowledged',
    )
    assert.equal(transport.producer.initializations, 1)
    const messages = await readTopic(topic, { expected: 1000, idleMs: 1000 })
    assert.equal(messages.length, 1000, 'no duplicates, nothing lost')
    assert.equal(new Set(messages.map((m) => m.value.toString())).size, 1000)
    const lastPerCallAndPartition = new Map<string, number>()
    for (const m of messages) {
      const [c, i] = m.value.toString().split(':').map(Number) as [number, number]
      const k = `${c}/${m.partition}`
      assert.ok(
        (lastPerCallAndPartition.get(k) ?? -1) < i,
        'a call’s records keep their order within a partition',
      )
      lastPerCallAndPartition.set(k, i)
    }
  })

  test('a failure confined to one topic decides only that topic’s outcome', async (t) => {
    const kafka = testKafka()
    const good = await createTopic(t, 'good')
    const small = await createTopic(t, 'small', { config: { 'max.message.bytes': '1024' } })
    const transport = make(kafka.bootstrap, 'spillway-per-topic')
    t.after(() => transport.close())
    const record = (topic: string, size: number): OutboundRecord =>
      outbound({ topic, partition: 0, value: Buffer.alloc(size) })
    const [a, b] = await transport.producer.send([record(good, 10), record(small, 5000)], 10_000)
    assert.deepEqual(a, { kind: 'ok' })
    assert.ok(
      b?.kind === 'error' && b.errorClass === 'poison',
      `the oversize record is poison: ${JSON.stringify(b)}`,
    )
    assert.equal(await transport.admin.partitions(good, 5000), 1)
    await assert.rejects(transport.admin.partitions('no-such-topic-at-all', 5000), {
      code: 'SPW_ERR_TOPIC_MISSING',
    })
  })

  test('the admin facet: metadata, offsets, configs, log dirs, groups of both protocols, committed offsets', async (t) => {
    const kafka = testKafka()
    const topic = await createTopic(t, 'admin', { partitions: 2, config: { 'retention.ms': '3600000' } })
    const cluster = make(kafka.bootstrap, 'spillway-admin-contract')
    t.after(() => cluster.close())
    const before = Date.now()
    const records = Array.from({ length: 6 }, (_, i) =>
      outbound({ topic, partition: i % 2, value: Buffer.alloc(100, i), timestamp: before + i }),
    )
    assert.ok((await cluster.producer.send(records, 10_000)).every((o) => o.kind === 'ok'))

    const snapshot = await cluster.admin.metadata([topic], 5000)
    assert.equal(snapshot.brokers.length, 1)
    const described = snapshot.topics.find((x) => x.name === topic)
    assert.deepEqual(
      described?.partitions.map((p) => [p.partition, p.replicas.length, p.isr.length]),
      [
        [0, 1, 1],
        [1, 1, 1],
      ],
    )

    const ends = await cluster.admin.listOffsets(
      [0, 1].map((partition) => ({ topic, partition, timestamp: -1n })),
      5000,
    )
    assert.deepEqual(ends.map((o) => [o.partition, o.offset]).sort(), [
      [0, 3n],
      [1, 3n],
    ])
    const [atTime] = await cluster.admin.listOffsets(
      [{ topic, partition: 0, timestamp: BigInt(before + 2) }],
      5000,
    )
    assert.equal(atTime?.offset, 1n, 'the first record at or after the timestamp')

    const [configs] = await cluster.admin.describeConfigs([{ type: 'topic', name: topic }], 5000)
    const retention = configs?.entries.find((e) => e.name === 'retention.ms')
    assert.deepEqual([retention?.value, retention?.source], ['3600000', 'topic'])
    const maxBytes = configs?.entries.find((e) => e.name === 'max.message.bytes')
    assert.equal(maxBytes?.source, 'default')

    const dirs = await cluster.admin.describeLogDirs([topic], 5000)
    assert.equal(dirs.filter((d) => d.topic === topic).length, 2)
    assert.ok(
      dirs.every((d) => d.topic !== topic || d.bytes > 0n),
      'bytes on disk per partition',
    )

    // a classic group, made by committing offsets for it
    const classic = randomName('classic-group')
    const admin = new Admin({ clientId: 'spillway-test-admin', bootstrapBrokers: kafka.bootstrap })
    t.after(() => admin.close())
    await admin.alterConsumerGroupOffsets({
      groupId: classic,
      topics: [{ name: topic, partitionOffsets: [{ partition: 0, offset: 2n }] }],
    })
    const committed = await cluster.admin.committedOffsets([classic], 5000)
    assert.deepEqual(
      committed.filter((c) => c.topic === topic && c.partition === 0).map((c) => c.offset),
      [2n],
    )

    // a KIP-848 group with a live member
    const modern = randomName('consumer-group')
    const consumer = new Consumer({
      clientId: 'spillway-test-848',
      groupId: modern,
      groupProtocol: 'consumer',
      bootstrapBrokers: kafka.bootstrap,
    } as ConstructorParameters<typeof Consumer>[0])
    t.after(() => consumer.close(true))
    const stream = await consumer.consume({ topics: [topic], autocommit: false })
    t.after(() => stream.close())
    let groups = await cluster.admin.listGroups(5000)
    for (let i = 0; i < 50 && !groups.some((g) => g.groupId === modern); i++) {
      await new Promise((r) => setTimeout(r, 200))
      groups = await cluster.admin.listGroups(5000)
    }
    assert.equal(groups.find((g) => g.groupId === modern)?.type, 'consumer')
    assert.equal(groups.find((g) => g.groupId === classic)?.type, 'classic')
    let modernDescription = (await cluster.admin.describeGroups([modern], 5000))[0]
    for (let i = 0; i < 50 && (modernDescription?.members[0]?.assignment.length ?? 0) === 0; i++) {
      await new Promise((r) => setTimeout(r, 200))
      modernDescription = (await cluster.admin.describeGroups([modern], 5000))[0]
    }
    assert.equal(modernDescription?.type, 'consumer')
    assert.equal(modernDescription?.members.length, 1)
    assert.ok((modernDescription?.members[0]?.memberEpoch ?? 0) > 0, 'a KIP-848 member epoch')
    assert.deepEqual(modernDescription?.members[0]?.assignment, [{ topic, partitions: [0, 1] }])
    const [classicDescription] = await cluster.admin.describeGroups([classic], 5000)
    assert.deepEqual([classicDescription?.type, classicDescription?.members.length], ['classic', 0])
  })

  test('the group facet: a KIP-848 member joins, fetches in a session, commits under its epoch, a stale epoch is refused', async (t) => {
    const kafka = testKafka()
    const topic = await createTopic(t, 'group', { partitions: 2 })
    const cluster = make(kafka.bootstrap, 'spillway-group-contract')
    t.after(() => cluster.close())
    const records = Array.from({ length: 6 }, (_, i) =>
      outbound({
        topic,
        partition: i % 2,
        key: Buffer.from(`k${i}`),
        value: Buffer.from(`v${i}`),
        headers: [['spillway-id', Buffer.from(`id-${i}`)]],
      }),
    )
    assert.ok((await cluster.producer.send(records, 10_000)).every((o) => o.kind === 'ok'))

    const groupId = randomName('group-facet')
    const memberId = randomUUID()
    let answer = await cluster.group.heartbeat(
      { groupId, memberId, memberEpoch: 0, rebalanceTimeoutMs: 10_000, topics: [topic], owned: [] },
      5000,
    )
    let assignment = answer.assignment
    for (let i = 0; i < 50 && !assignment?.length; i++) {
      await new Promise((r) => setTimeout(r, 200))
      answer = await cluster.group.heartbeat(
        {
          groupId,
          memberId,
          memberEpoch: answer.memberEpoch,
          rebalanceTimeoutMs: 10_000,
          topics: null,
          owned: null,
        },
        5000,
      )
      assignment = answer.assignment ?? assignment
    }
    assert.deepEqual(assignment, [{ topic, partitions: [0, 1] }])
    assert.ok(answer.memberEpoch > 0)
    assert.ok(answer.heartbeatIntervalMs > 0)
    // the member acknowledges what it owns
    answer = await cluster.group.heartbeat(
      {
        groupId,
        memberId,
        memberEpoch: answer.memberEpoch,
        rebalanceTimeoutMs: 10_000,
        topics: null,
        owned: assignment ?? [],
      },
      5000,
    )

    const snapshot = await cluster.admin.metadata([topic], 5000)
    const leader = snapshot.topics[0]?.partitions[0]?.leader ?? -1
    const fetched = await cluster.group.fetch(
      {
        session: 'contract',
        broker: leader,
        maxWaitMs: 100,
        minBytes: 1,
        maxBytes: 1024 * 1024,
        partitions: [0, 1].map((partition) => ({ topic, partition, offset: 1n, maxBytes: 65536 })),
      },
      5000,
    )
    const p0 = fetched.find((p) => p.partition === 0)
    assert.equal(p0?.error, null)
    assert.equal(p0?.highWatermark, 3n)
    assert.deepEqual(
      p0?.records.map((r) => [
        r.offset,
        r.key?.toString(),
        r.value?.toString(),
        r.headers[0]?.[1].toString(),
      ]),
      [
        [1n, 'k2', 'v2', 'id-2'],
        [2n, 'k4', 'v4', 'id-4'],
      ],
      'records from the offset asked for, with key, value and headers',
    )
    assert.equal(p0?.nextOffset, 3n)
    assert.ok((p0?.bytes ?? 0) > 0 && (p0?.largestBatch ?? 0) > 0)
    const outOfRange = await cluster.group.fetch(
      {
        session: 'contract',
        broker: leader,
        maxWaitMs: 100,
        minBytes: 1,
        maxBytes: 1024 * 1024,
        partitions: [{ topic, partition: 0, offset: 99n, maxBytes: 65536 }],
      },
      5000,
    )
    assert.equal(outOfRange.find((p) => p.partition === 0)?.error, 'OFFSET_OUT_OF_RANGE')
    await cluster.group.endSession('contract')

    const results = await cluster.group.commit(
      {
        groupId,
        memberId,
        memberEpoch: answer.memberEpoch,
        offsets: [{ topic, partition: 0, offset: 2n, metadata: 'spw1:test' }],
      },
      5000,
    )
    assert.deepEqual(results, [{ topic, partition: 0, error: null }])
    const committed = await cluster.admin.committedOffsets([groupId], 5000)
    assert.deepEqual(
      committed.filter((c) => c.partition === 0).map((c) => [c.offset, c.metadata]),
      [[2n, 'spw1:test']],
    )
    const stale = await cluster.group.commit(
      {
        groupId,
        memberId,
        memberEpoch: answer.memberEpoch + 5,
        offsets: [{ topic, partition: 1, offset: 3n, metadata: '' }],
      },
      5000,
    )
    assert.ok(
      stale[0]?.error === 'FENCED_MEMBER_EPOCH' || stale[0]?.error === 'STALE_MEMBER_EPOCH',
      `a commit under an epoch that is not the member's is refused: ${JSON.stringify(stale)}`,
    )
    await cluster.group.heartbeat(
      { groupId, memberId, memberEpoch: -1, rebalanceTimeoutMs: 10_000, topics: null, owned: null },
      5000,
    )
  })

  test('the group facet, classic protocol: a member joins with cooperative-sticky, syncs its assignment, heartbeats, commits under its generation and leaves', async (t) => {
    const { bootstrap } = testKafka()
    const cluster = make(bootstrap, 'spillway-contract-classic')
    t.after(() => cluster.close())
    const topic = await createTopic(t, 'classic-facet', { partitions: 3 })
    const groupId = randomName('classic-facet')
    const session = randomName('session')
    const joined = await cluster.group.classicJoin(
      {
        session,
        groupId,
        memberId: '',
        sessionTimeoutMs: 10_000,
        rebalanceTimeoutMs: 10_000,
        topics: [topic],
        owned: [],
        generationId: -1,
      },
      20_000,
    )
    assert.ok(joined.memberId.length > 0, 'the coordinator gave the member an id')
    assert.ok(joined.generationId >= 1)
    assert.equal(joined.leader, joined.memberId, 'the only member leads')
    assert.deepEqual(
      joined.members.map((m) => [m.memberId, m.topics]),
      [[joined.memberId, [topic]]],
    )
    const mine = await cluster.group.classicSync(
      {
        session,
        groupId,
        memberId: joined.memberId,
        generationId: joined.generationId,
        assignments: [{ memberId: joined.memberId, partitions: [{ topic, partitions: [0, 1, 2] }] }],
      },
      5000,
    )
    assert.deepEqual(mine, [{ topic, partitions: [0, 1, 2] }])
    const member = { session, groupId, memberId: joined.memberId }
    await cluster.group.classicHeartbeat({ ...member, generationId: joined.generationId }, 5000)
    const committed = await cluster.group.commit(
      {
        groupId,
        memberId: joined.memberId,
        memberEpoch: joined.generationId,
        offsets: [{ topic, partition: 1, offset: 0n, metadata: '' }],
      },
      5000,
    )
    assert.deepEqual(
      committed.map((c) => c.error),
      [null],
    )
    await assert.rejects(
      cluster.group.classicHeartbeat({ ...member, generationId: joined.generationId + 1 }, 5000),
      (e: unknown) => (e as { code?: string }).code === 'SPW_ERR_GROUP_FENCED',
    )
    await cluster.group.classicLeave(member, 5000)
  })
}
