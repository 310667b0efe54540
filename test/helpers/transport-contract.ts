/**
 * What every Transport promises, run against the real broker by each transport's own test file:
 * concurrent idempotent sends keep order within a partition, and a failure confined to one topic
 * decides only that topic's outcome.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import type { OutboundRecord, Transport } from '../../src/transport/transport.ts'
import { createTopic, readTopic, testKafka } from './kafka.ts'
import { outbound } from './outbound.ts'

export function transportContract(make: (brokers: string[], clientId: string) => Transport): void {
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
    const outcomes = await Promise.all(calls.map((records) => transport.send(records, 10_000)))
    assert.ok(
      outcomes.flat().every((o) => o.kind === 'ok'),
      'every record acknowledged',
    )
    assert.equal(transport.initializations, 1)
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
    const [a, b] = await transport.send([record(good, 10), record(small, 5000)], 10_000)
    assert.deepEqual(a, { kind: 'ok' })
    assert.ok(
      b?.kind === 'error' && b.errorClass === 'poison',
      `the oversize record is poison: ${JSON.stringify(b)}`,
    )
    assert.equal(await transport.partitions(good, 5000), 1)
    await assert.rejects(transport.partitions('no-such-topic-at-all', 5000), { errorClass: 'poison' })
  })
}
