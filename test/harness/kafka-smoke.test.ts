/**
 * The foundation every other test stands on: a real broker started by scripts/test.ts, written to by
 * @platformatic/kafka (idempotent, acks=all) and read back both by a consumer group and by Kafka's own
 * console consumer, a peer that spillway did not write.
 */
import assert from 'node:assert/strict'
import { createHash } from 'node:crypto'
import { test } from 'node:test'
import { ProduceAcks, Producer } from '@platformatic/kafka'
import { createTopic, kafkaTool, readTopic, testKafka } from '../helpers/kafka.ts'

const RECORDS = 10_000
const PARTITIONS = 6

function payload(i: number): Buffer {
  // varied sizes and non-UTF-8 bytes, so "byte-exact" means something
  const size = 16 + (i % 97)
  const body = createHash('sha256').update(String(i)).digest()
  return Buffer.concat([Buffer.from(`${i}:`), Buffer.alloc(size, body)])
}

test('10,000 keyed records round-trip through a real broker, exact and in per-partition order', async (t) => {
  const kafka = testKafka()
  const topic = await createTopic(t, 'smoke', { partitions: PARTITIONS })
  const producer = new Producer({
    clientId: 'spillway-smoke',
    bootstrapBrokers: kafka.bootstrap,
    idempotent: true,
    acks: ProduceAcks.ALL,
  })
  t.after(() => producer.close())

  const sent = new Map<string, Buffer>()
  for (let start = 0; start < RECORDS; start += 500) {
    const messages = []
    for (let i = start; i < start + 500; i++) {
      const value = payload(i)
      sent.set(String(i), value)
      messages.push({
        topic,
        key: Buffer.from(`key-${i % 50}`),
        value,
        headers: new Map([[Buffer.from('seq'), Buffer.from(String(i))]]),
      })
    }
    const result = await producer.send({ messages })
    assert.ok(result.offsets && result.offsets.length > 0, 'send returned offsets')
  }
  assert.ok(producer.producerId !== undefined, 'the producer obtained an idempotent producer id')

  const received = await readTopic(topic, { expected: RECORDS, idleMs: 1500 })
  assert.equal(received.length, RECORDS, 'exact count, no duplicates')

  const partitionsSeen = new Set<number>()
  const lastSeqPerKey = new Map<string, number>()
  const lastOffsetPerPartition = new Map<number, bigint>()
  const keyPartition = new Map<string, number>()
  for (const message of received) {
    const seq = message.headers.get(Buffer.from('seq'))
    const key = message.key.toString()
    // Map<Buffer,…> lookups are by identity; find the header by content
    const seqHeader = seq ?? message.headerEntries.find(([k]) => k.toString() === 'seq')?.[1]
    assert.ok(seqHeader, 'seq header survives')
    const n = Number(seqHeader.toString())
    assert.deepEqual(message.value, sent.get(String(n)), `record ${n} is byte-exact`)
    assert.equal(key, `key-${n % 50}`)
    partitionsSeen.add(message.partition)
    const previousOffset = lastOffsetPerPartition.get(message.partition)
    if (previousOffset !== undefined)
      assert.ok(message.offset > previousOffset, 'offsets rise within a partition')
    lastOffsetPerPartition.set(message.partition, message.offset)
    const previousSeq = lastSeqPerKey.get(key)
    if (previousSeq !== undefined) assert.ok(n > previousSeq, `per-key order kept for ${key}`)
    lastSeqPerKey.set(key, n)
    const p = keyPartition.get(key)
    if (p !== undefined) assert.equal(p, message.partition, 'a key stays on one partition')
    keyPartition.set(key, message.partition)
  }
  assert.equal(partitionsSeen.size, PARTITIONS, 'keys spread over every partition')
  assert.equal(
    new Set(received.map((m) => m.headerEntries.find(([k]) => k.toString() === 'seq')?.[1]?.toString())).size,
    RECORDS,
  )

  // Kafka's own console consumer sees the same records.
  const out = await kafkaTool('org.apache.kafka.tools.consumer.ConsoleConsumer', [
    '--bootstrap-server',
    kafka.bootstrap.join(','),
    '--topic',
    topic,
    '--from-beginning',
    '--max-messages',
    String(RECORDS),
    '--timeout-ms',
    '30000',
    '--formatter-property',
    'print.key=true',
    '--formatter-property',
    'print.headers=true',
    '--formatter-property',
    'print.value=false',
    '--formatter-property',
    'key.separator=|',
  ])
  const lines = out.split('\n').filter((l) => l.length > 0)
  assert.equal(lines.length, RECORDS, 'the console consumer reads exactly as many records')
  const consoleSeqs = new Set<string>()
  for (const line of lines) {
    const match = /seq:(\d+)\|(key-\d+)/.exec(line)
    assert.ok(match, `console line has header and key: ${line}`)
    const [, seq = '', key = ''] = match
    assert.equal(key, `key-${Number(seq) % 50}`)
    consoleSeqs.add(seq)
  }
  assert.equal(consoleSeqs.size, RECORDS, 'the console consumer sees every record once')
})
