/**
 * Scenario 4 of the consumer: three consumer processes in one group, restarted one by one (SIGTERM, then
 * a new process) while records keep arriving. Every handler call is journaled with its process, member
 * epoch and partition: no two processes handle the same partition at the same time, nothing is skipped,
 * and what is handled twice is bounded by what was in flight at the restarts.
 */
import assert from 'node:assert/strict'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { createTopic, produceRaw, randomName, testKafka } from '../helpers/kafka.ts'
import { type ConsumerProcess, type JournalLine, readJournal, startConsumerProcess } from './journal.ts'

test('rolling restart of three members under load: one owner per partition at a time, nothing skipped', async (t) => {
  const topic = await createTopic(t, 'rolling', { partitions: 6 })
  const dir = await mkdtemp(join(tmpdir(), 'spillway-rolling-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const journal = join(dir, 'journal')
  const config = {
    brokers: testKafka().bootstrap,
    topic,
    groupId: randomName('rolling'),
    journal,
    concurrency: 8,
    handlerMs: 10,
    commitIntervalMs: 200,
  }
  const members: ConsumerProcess[] = []
  t.after(() => {
    for (const m of members) m.child.kill('SIGKILL')
  })
  for (let i = 0; i < 3; i++) members.push(await startConsumerProcess(config))

  let produced = 0
  let producing = true
  const load = (async () => {
    while (producing) {
      const batch = Array.from({ length: 40 }, (_, i) => ({
        key: `k${(produced + i) % 31}`,
        value: `${produced + i}`,
        headers: { 'spillway-id': `r-${produced + i}` },
      }))
      await produceRaw(topic, batch)
      produced += batch.length
      await new Promise((r) => setTimeout(r, 100))
    }
  })()

  const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
  await sleep(3000)
  for (let i = 0; i < 3; i++) {
    const old = members[i] as ConsumerProcess
    old.child.kill('SIGTERM')
    assert.equal(await old.exited, 0, `member ${i} closes cleanly: ${old.stderr()}`)
    members[i] = await startConsumerProcess(config)
    await sleep(2500)
  }
  producing = false
  await load
  const deadline = performance.now() + 90_000
  for (;;) {
    const done = new Set(
      readJournal(journal)
        .filter((l) => l.kind === 'done')
        .map((l) => l.id),
    )
    if (done.size >= produced) break
    if (performance.now() > deadline) throw new Error(`only ${done.size} of ${produced} records done`)
    await sleep(200)
  }
  for (const m of members) m.child.kill('SIGTERM')
  await Promise.all(members.map((m) => m.exited))

  const lines = readJournal(journal)
  const done = new Set(lines.filter((l) => l.kind === 'done').map((l) => l.id))
  assert.equal(done.size, produced, 'nothing skipped')
  const overlaps = ownershipOverlaps(lines)
  assert.deepEqual(overlaps, [], 'no partition handled by two processes at once')
  const starts = new Map<string, number>()
  for (const l of lines) if (l.kind === 'start') starts.set(l.id, (starts.get(l.id) ?? 0) + 1)
  const twice = [...starts.values()].filter((n) => n > 1).length
  process.stdout.write(
    `# rolling restart: ${produced} records, ${twice} handled twice, ${new Set(lines.map((l) => l.pid)).size} processes\n`,
  )
  // graceful restarts finish and commit their work: at most what was running at each of the 3 restarts
  assert.ok(twice <= 3 * config.concurrency, `handled twice ${twice} ≤ ${3 * config.concurrency}`)
})

/** Per partition, handler intervals [start, done] of different processes that intersect. */
function ownershipOverlaps(lines: readonly JournalLine[]): string[] {
  const intervals = new Map<number, { pid: number; from: number; to: number; id: string }[]>()
  const open = new Map<string, JournalLine>()
  for (const l of lines) {
    const key = `${l.pid}:${l.id}`
    if (l.kind === 'start') open.set(key, l)
    else {
      const s = open.get(key)
      if (!s) continue
      open.delete(key)
      const list = intervals.get(l.partition) ?? []
      list.push({ pid: l.pid, from: s.at, to: l.at, id: l.id })
      intervals.set(l.partition, list)
    }
  }
  const out: string[] = []
  for (const [partition, list] of intervals) {
    // each process's span on this partition, split where another process took over in between
    list.sort((a, b) => a.from - b.from)
    for (let i = 0; i < list.length; i++) {
      for (
        let j = i + 1;
        j < list.length && (list[j] as { from: number }).from <= (list[i] as { to: number }).to;
        j++
      ) {
        const a = list[i] as { pid: number; from: number; to: number; id: string }
        const b = list[j] as { pid: number; from: number; to: number; id: string }
        if (a.pid !== b.pid)
          out.push(`partition ${partition}: ${a.id} (pid ${a.pid}) and ${b.id} (pid ${b.pid})`)
      }
    }
  }
  return out
}
