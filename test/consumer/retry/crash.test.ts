/**
 * kill -9 while records are being moved to a retry tier: a consumer in a process of its own, whose handler
 * fails every record of the source topic, is killed five times mid-stream and started again. Each kill
 * can land inside a forwarding transaction; the coordinator aborts what the dead process left open, and
 * the next member waits for that before reading the group's offsets. Afterwards every event was handled
 * from the tier, and Kafka's console consumer (read_committed) finds exactly one copy of each in the tier.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { createTopic, kafkaTool, produceRaw, randomName, testKafka } from '../../helpers/kafka.ts'
import { until } from '../../helpers/wait.ts'
import { type ConsumerProcess, readJournal, startConsumerProcess } from '../journal.ts'

const EVENTS = 1500
const KILLS = 5

test('kill -9 five times while records move to a tier: every event handled from the tier, one copy of each there', async (t) => {
  const topic = await createTopic(t, 'tier-crash', { partitions: 3 })
  await produceRaw(
    topic,
    Array.from({ length: EVENTS }, (_, i) => ({
      key: `k${i % 61}`,
      value: `${i}`,
      headers: { 'spillway-id': `e-${i}` },
    })),
  )
  const dir = await mkdtemp(join(tmpdir(), 'spillway-tier-crash-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const journal = join(dir, 'journal')
  const config = {
    brokers: testKafka().bootstrap,
    topic,
    groupId: randomName('tier-crash'),
    journal,
    concurrency: 16,
    handlerMs: 20,
    commitIntervalMs: 200,
    retry: { tiers: [{ delayMs: 200 }], transactionTimeoutMs: 3000 },
    failInSource: true,
  }
  const done = (): Set<string> =>
    new Set(
      readJournal(journal)
        .filter((l) => l.kind === 'done')
        .map((l) => l.id),
    )
  let current: ConsumerProcess | undefined
  t.after(() => current?.child.kill('SIGKILL'))
  let midStream = 0
  for (let kill = 0; kill < KILLS; kill++) {
    current = await startConsumerProcess(config)
    const before = readJournal(journal).length
    // let it work a little: at least some new starts, then a moment more
    const started = current
    // progress, or nothing left to do (a fast consumer may finish the stream before the last kills)
    await until(
      'the consumer makes progress',
      () => readJournal(journal).length > before + 50 || done().size === EVENTS,
      60_000,
    ).catch((error: Error) => {
      throw new Error(`${error.message} after kill ${kill}; it said:\n${started.stderr().slice(-4000)}`)
    })
    await new Promise((r) => setTimeout(r, 200 + Math.random() * 600))
    if (done().size < EVENTS) midStream++
    current.child.kill('SIGKILL')
    await current.exited
  }
  assert.ok(midStream >= 2, `at least two kills land while events remain (${midStream} did)`)
  current = await startConsumerProcess(config)
  await until('every event handled from the tier', () => done().size === EVENTS, 120_000)

  const out = await kafkaTool('org.apache.kafka.tools.consumer.ConsoleConsumer', [
    '--bootstrap-server',
    testKafka().bootstrap.join(','),
    '--topic',
    `${topic}.retry-1`,
    '--from-beginning',
    '--isolation-level',
    'read_committed',
    '--max-messages',
    String(EVENTS),
    '--timeout-ms',
    '20000',
    '--formatter-property',
    'print.headers=true',
    '--formatter-property',
    'print.value=false',
  ])
  const ids = out
    .split('\n')
    .map((line) => /spillway-id:([^,\s]+)/.exec(line)?.[1])
    .filter((id): id is string => id !== undefined)
  const copies = new Map<string, number>()
  for (const id of ids) copies.set(id, (copies.get(id) ?? 0) + 1)
  assert.equal(copies.size, EVENTS, 'every event is in the tier')
  for (const [id, n] of copies) assert.equal(n, 1, `${id} has ${n} committed copies in the tier`)
  const journalLines = readJournal(journal)
  const handledTwice = journalLines.filter((l) => l.kind === 'done').length - EVENTS
  t.diagnostic(
    `${KILLS} kills, ${midStream} of them while events remained; ${handledTwice} tier records handled again after a kill (at least once there)`,
  )
})
