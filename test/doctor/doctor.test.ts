/**
 * The doctor against the suite's broker: each situation is built for real (a producer per record,
 * doubling copies, a hot key in runs, 800 KB records), then the report is checked for what it says.
 */
import assert from 'node:assert/strict'
import { mkdtempSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { Admin, ProduceAcks, Producer } from '@platformatic/kafka'
import { runDoctor } from '../../src/doctor/doctor.ts'
import type { CheckReport, DoctorReport, Finding } from '../../src/doctor/types.ts'
import { createTopic, type PlainRecord, produceRaw, testKafka } from '../helpers/kafka.ts'

const brokers = (): string[] => testKafka().bootstrap

function check(report: DoctorReport, id: string): CheckReport {
  const found = report.checks.find((c) => c.id === id)
  assert.ok(found, `the report has a ${id} check`)
  return found
}

function findings(report: DoctorReport, id: string): Finding[] {
  return report.checks.flatMap((c) => c.findings.filter((f) => f.id === id))
}

/** What a service that makes an idempotent producer per request does: a new producer id per record. */
async function producerPerRecord(topic: string, records: number): Promise<void> {
  let next = 0
  const worker = async (): Promise<void> => {
    while (next < records) {
      const i = next++
      const producer = new Producer({
        clientId: 'producer-per-record',
        bootstrapBrokers: brokers(),
        idempotent: true,
        acks: ProduceAcks.ALL,
      } as ConstructorParameters<typeof Producer<Buffer, Buffer, Buffer, Buffer>>[0])
      try {
        await producer.send({
          messages: [{ topic, key: Buffer.from(`k${i}`), value: Buffer.from(`{"n":${i}}`) }] as never,
        })
      } finally {
        await producer.close()
      }
    }
  }
  await Promise.all(Array.from({ length: 16 }, worker))
}

async function oneLongLivedProducer(topic: string, records: number): Promise<void> {
  const producer = new Producer({
    clientId: 'long-lived',
    bootstrapBrokers: brokers(),
    idempotent: true,
    acks: ProduceAcks.ALL,
  } as ConstructorParameters<typeof Producer<Buffer, Buffer, Buffer, Buffer>>[0])
  try {
    for (let i = 0; i < records; i += 100) {
      await producer.send({
        messages: Array.from({ length: 100 }, (_, j) => ({
          topic,
          key: Buffer.from(`k${i + j}`),
          value: Buffer.from('{}'),
        })) as never,
      })
    }
  } finally {
    await producer.close()
  }
}

async function activeProducerIds(topic: string): Promise<number> {
  const report = await runDoctor({
    brokers: brokers(),
    topics: [topic],
    checks: ['producer-ids'],
    budgetMs: 2000,
  })
  return report.counts.producerIds ?? -1
}

test('producer ids: a producer per record is critical on its topic with the per-record signature; one long-lived producer is not flagged; the baseline reports the growth', async (t) => {
  const churned = await createTopic(t, 'doctor-churn', { partitions: 2 })
  const steady = await createTopic(t, 'doctor-steady', { partitions: 2 })
  const dir = mkdtempSync(join(tmpdir(), 'spillway-doctor-'))
  const baseline = join(dir, 'baseline.json')
  const before = await runDoctor({
    brokers: brokers(),
    topics: [churned, steady],
    checks: ['producer-ids'],
    budgetMs: 2000,
  })
  assert.equal(before.counts.producerIds, 0)
  writeFileSync(baseline, JSON.stringify(before))

  await producerPerRecord(churned, 2000)
  await oneLongLivedProducer(steady, 2000)

  const report = await runDoctor({
    brokers: brokers(),
    topics: [churned, steady],
    checks: ['producer-ids', 'baseline'],
    baseline,
    budgetMs: 3000,
  })
  const [perRecord, ...others] = findings(report, 'producer-ids.per-record')
  assert.ok(perRecord, JSON.stringify(check(report, 'producer-ids'), null, 2))
  assert.equal(others.length, 0)
  assert.equal(perRecord.severity, 'crit')
  assert.equal(perRecord.subject, `topic ${churned}`)
  assert.equal(perRecord.evidence.producerIds, 2000)
  assert.deepEqual(perRecord.evidence.partitions, [0, 1])
  assert.ok((perRecord.evidence.oneRecordShare as number) > 0.99)
  const all = check(report, 'producer-ids').findings
  assert.ok(!all.some((f) => f.subject.includes(steady)), 'the long-lived producer is not flagged')
  assert.equal(report.counts.producerIdsByTopic[steady], 2, 'one id on each of its two partitions')
  assert.equal(report.exitCode, 2)
  const [growth] = findings(report, 'baseline.producer-ids-growth')
  assert.ok(growth, JSON.stringify(check(report, 'baseline'), null, 2))
  assert.deepEqual([growth.evidence.before, growth.evidence.now], [0, 2002])
})

test('probe: writes through a producer that adds no producer id, and reports ack and end-to-end latency', async (t) => {
  const topic = await createTopic(t, 'doctor-probe')
  const report = await runDoctor({
    brokers: brokers(),
    topics: [topic],
    checks: ['probe'],
    probeTopic: topic,
    budgetMs: 6000,
  })
  const [latency] = findings(report, 'probe.latency')
  assert.ok(latency, JSON.stringify(check(report, 'probe'), null, 2))
  assert.equal((latency.evidence.ackMs as number[]).length, 5)
  assert.ok((latency.evidence.endToEndMs as number[]).every((ms) => ms > 0))
  assert.equal(await activeProducerIds(topic), 0)
  const admin = new Admin({ clientId: 'spillway-test-admin', bootstrapBrokers: brokers() })
  try {
    const [listed] = await admin.listOffsets({
      topics: [{ name: topic, partitions: [{ partitionIndex: 0, timestamp: -1n }] }],
    })
    assert.equal(listed?.partitions[0]?.offset, 5n)
  } finally {
    await admin.close()
  }
  const missing = await runDoctor({
    brokers: brokers(),
    checks: ['probe'],
    probeTopic: `${topic}-absent`,
    budgetMs: 3000,
  })
  assert.equal(findings(missing, 'probe.unknown').length, 1)
  assert.equal(missing.exitCode, 3)
})

test('duplicates: ids written 1, 2, 4 and 8 times give that distribution and the spiral signature; an id on two partitions is named', async (t) => {
  const topic = await createTopic(t, 'doctor-dupes', { partitions: 3 })
  const records: PlainRecord[] = []
  for (let round = 0; round < 8; round++) {
    for (const copies of [1, 2, 4, 8]) {
      for (let i = 0; i < 50; i++) {
        if (round >= copies) continue
        const id = `e-${copies}-${i}`
        records.push({ key: id, value: `{"id":"${id}","round":${round}}`, headers: { 'spillway-id': id } })
      }
    }
  }
  for (let i = 0; i < 5; i++) {
    // a retry that changed the key: the same id on partitions 0 and 1
    records.push({ key: 'a', value: '{}', partition: 0, headers: { 'spillway-id': `moved-${i}` } })
    records.push({ key: 'b', value: '{}', partition: 1, headers: { 'spillway-id': `moved-${i}` } })
  }
  await produceRaw(topic, records)
  const report = await runDoctor({
    brokers: brokers(),
    topics: [topic],
    checks: ['duplicates'],
    budgetMs: 3000,
  })
  const [spiral] = findings(report, 'duplicates.spiral')
  assert.ok(spiral, JSON.stringify(check(report, 'duplicates'), null, 2))
  assert.equal(spiral.severity, 'crit')
  assert.equal(spiral.confidence, 'high')
  assert.deepEqual(spiral.evidence.distribution, {
    '1': 50,
    '2': 55,
    '3': 0,
    '4': 50,
    '5': 0,
    '6': 0,
    '7': 0,
    '8+': 50,
  })
  assert.equal((spiral.evidence.top as { copies: number }[])[0]?.copies, 8)
  const [moved] = findings(report, 'duplicates.cross-partition')
  assert.ok(moved)
  assert.deepEqual((moved.evidence.ids as { id: string; partitions: number[] }[]).map((x) => x.id).sort(), [
    'moved-0',
    'moved-1',
    'moved-2',
    'moved-3',
    'moved-4',
  ])
})

test('skew: a hot key written in runs of 250 is found as partition skew, a hot key and a run', async (t) => {
  const topic = await createTopic(t, 'doctor-skew', { partitions: 6 })
  const value = 'x'.repeat(1000)
  const records: PlainRecord[] = []
  for (let run = 0; run < 8; run++) {
    for (let i = 0; i < 250; i++) records.push({ key: 'hot-customer', value })
    for (let i = 0; i < 60; i++) records.push({ key: `customer-${run}-${i}`, value })
  }
  await produceRaw(topic, records)
  const report = await runDoctor({ brokers: brokers(), topics: [topic], checks: ['skew'], budgetMs: 3000 })
  const detail = JSON.stringify(check(report, 'skew'), null, 2)
  const [partitions] = findings(report, 'skew.partitions')
  const [hot] = findings(report, 'skew.hot-key')
  const [run] = findings(report, 'skew.key-run')
  assert.ok(partitions && hot && run, detail)
  assert.ok(
    (partitions.evidence.lastHourRatio as number | null) === null ||
      (partitions.evidence.lastHourRatio as number) >= 3,
  )
  assert.equal((hot.evidence.byCount as { key: string }[])[0]?.key, 'hot-customer')
  assert.equal(run.evidence.key, 'hot-customer')
  assert.ok((run.evidence.length as number) >= 250, detail)
})

test('record size: 800 KB records against a 1 MiB consumer fetch are flagged; 1 KB records are not', async (t) => {
  const large = await createTopic(t, 'doctor-large', {
    config: { 'max.message.bytes': String(2 * 1024 * 1024) },
  })
  const small = await createTopic(t, 'doctor-small')
  await produceRaw(
    large,
    Array.from({ length: 12 }, (_, i) => ({ key: `k${i}`, value: Buffer.alloc(800_000, i) })),
    { chunk: 1 },
  )
  await produceRaw(
    small,
    Array.from({ length: 200 }, (_, i) => ({ key: `k${i}`, value: 'y'.repeat(1000) })),
  )
  const report = await runDoctor({
    brokers: brokers(),
    topics: [large, small],
    checks: ['record-size'],
    budgetMs: 3000,
  })
  const detail = JSON.stringify(check(report, 'record-size'), null, 2)
  const [perFetch] = findings(report, 'record-size.one-per-fetch')
  const [average] = findings(report, 'record-size.large-average')
  assert.ok(perFetch && average, detail)
  assert.equal(perFetch.subject, `topic ${large}`)
  assert.equal(perFetch.evidence.sampledRecords, 12)
  assert.ok((perFetch.evidence.recordsPerFetch as number) < 2)
  assert.equal(perFetch.evidence.maxMessageBytes, 2 * 1024 * 1024)
  assert.ok(!check(report, 'record-size').findings.some((f) => f.subject.includes(small)), detail)
  const bigger = await runDoctor({
    brokers: brokers(),
    topics: [large],
    checks: ['record-size'],
    consumerFetchBytes: 8 * 1024 * 1024,
    budgetMs: 3000,
  })
  assert.equal(findings(bigger, 'record-size.one-per-fetch').length, 0, 'a fetch of 8 MiB holds ten of them')
})
