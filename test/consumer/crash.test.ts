/**
 * Scenario 3 of the consumer: kill -9 mid-work under `ordering: 'key'` with completions out of order (a
 * hot key holds its partition's watermark back while other keys finish beyond it), then a restart. No
 * record is skipped, and what is handled twice is bounded by what was in flight at the kill: handlers
 * running, plus what completed after the last commit. Completed offsets beyond the watermark travel in
 * the commit's metadata, so the restart does not redo them.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { createTopic, produceRaw, randomName, testKafka } from '../helpers/kafka.ts'
import { until } from '../helpers/wait.ts'
import { readJournal, startConsumerProcess } from './journal.ts'

test('kill -9 mid-work and restart: nothing skipped, duplicates bounded by what was in flight', async (t) => {
  const topic = await createTopic(t, 'crash', { partitions: 4 })
  const total = 3000
  const records = Array.from({ length: total }, (_, i) => ({
    key: i % 200 === 0 ? `hot${(i / 200) % 8}` : `k${i % 97}`,
    value: `${i}`,
    headers: { 'spillway-id': `e-${i}` },
  }))
  await produceRaw(topic, records)
  const dir = await mkdtemp(join(tmpdir(), 'spillway-crash-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const journal = join(dir, 'journal')
  const config = {
    brokers: testKafka().bootstrap,
    topic,
    groupId: randomName('crash'),
    journal,
    concurrency: 16,
    handlerMs: 30,
    hotKey: 'hot',
    hotMs: 4000,
    commitIntervalMs: 200,
  }
  const first = await startConsumerProcess(config)
  t.after(() => first.child.kill('SIGKILL'))
  await until(
    '800 records done',
    () => readJournal(journal).filter((l) => l.kind === 'done').length >= 800,
    60_000,
  )
  first.child.kill('SIGKILL')
  const killedAt = Date.now()
  await first.exited
  const before = readJournal(journal)

  const second = await startConsumerProcess(config)
  t.after(() => second.child.kill('SIGKILL'))
  await until(
    `all ${total} records done`,
    () =>
      new Set(
        readJournal(journal)
          .filter((l) => l.kind === 'done')
          .map((l) => l.id),
      ).size >= total,
    120_000,
  ).catch((error: unknown) => {
    const lines = readJournal(journal)
    throw new Error(
      `${String(error)}; done ${new Set(lines.filter((l) => l.kind === 'done').map((l) => l.id)).size}, second: ${second.stderr()}`,
    )
  })
  second.child.kill('SIGTERM')
  assert.equal(await second.exited, 0, second.stderr())

  const lines = readJournal(journal)
  const done = new Set(lines.filter((l) => l.kind === 'done').map((l) => l.id))
  assert.equal(done.size, total, 'no record skipped')
  const starts = new Map<string, number>()
  for (const l of lines) if (l.kind === 'start') starts.set(l.id, (starts.get(l.id) ?? 0) + 1)
  const twice = [...starts.values()].filter((n) => n > 1).length

  // in flight at the kill: handlers running, and records completed since the last commit could land
  const startedBefore = new Set(before.filter((l) => l.kind === 'start').map((l) => l.id))
  const doneBefore = before.filter((l) => l.kind === 'done')
  const running = [...startedBefore].filter((id) => !doneBefore.some((l) => l.id === id)).length
  const sinceLastCommit = doneBefore.filter((l) => l.at >= killedAt - config.commitIntervalMs - 100).length
  const bound = running + sinceLastCommit
  // what a commit of the watermark alone would redo: every completion beyond each partition's watermark
  const beyond = beyondWatermark(doneBefore)
  process.stdout.write(
    `# crash: ${doneBefore.length} done before the kill, ${running} running, ${sinceLastCommit} done in the last commit interval; handled twice ${twice} (bound ${bound}); ${beyond} completions were beyond their partition's watermark\n`,
  )
  assert.ok(twice <= bound, `handled twice ${twice} ≤ in flight ${bound}`)
  // a commit of the watermark alone would redo every completion beyond it, plus what was running
  assert.ok(
    twice < beyond + running,
    `the completed-offset metadata saved work a watermark-only commit would redo (${twice} < ${beyond + running})`,
  )
})

/** Completions above the first not-done offset of their partition, at the end of `done`. */
function beyondWatermark(done: readonly { partition: number; offset: bigint }[]): number {
  const byPartition = new Map<number, Set<bigint>>()
  for (const l of done)
    byPartition.set(l.partition, (byPartition.get(l.partition) ?? new Set()).add(l.offset))
  let beyond = 0
  for (const offsets of byPartition.values()) {
    let watermark = 0n
    while (offsets.has(watermark)) watermark++
    for (const o of offsets) if (o > watermark) beyond++
  }
  return beyond
}
