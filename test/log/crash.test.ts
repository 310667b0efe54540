/**
 * Real crashes: a child appends with fsync 'always' and reports every acknowledged record; the parent
 * kill -9s it at a random moment, reopens the log and checks that every acknowledged record not yet
 * delivered is present, intact, in order and exactly once, and that delivered ones do not come back.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { DurableLog } from '../../src/log/log.ts'

const child = fileURLToPath(new URL('./fixtures/crash-child.ts', import.meta.url))
const iterations = process.env.SPILLWAY_SOAK === '1' ? 2000 : 100

interface Run {
  acked: Map<string, bigint>
  /** Records below this are delivered for sure. */
  committed: bigint
  /** Records below this may be delivered (a commit was under way). */
  committing: bigint
}

async function runAndKill(dir: string, iteration: number, killAfterMs: number): Promise<Run> {
  const proc = spawn(process.execPath, [child, dir, String(iteration)], { stdio: ['ignore', 'pipe', 'pipe'] })
  const acked = new Map<string, bigint>()
  let committed = -1n
  let committing = -1n
  let buffer = ''
  let stderr = ''
  proc.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d
  })
  const ready = new Promise<void>((resolve) => {
    proc.stdout.setEncoding('utf8').on('data', (d: string) => {
      buffer += d
      const lines = buffer.split('\n')
      buffer = lines.pop() ?? ''
      for (const line of lines) {
        if (line === 'R') resolve()
        const [kind, a, b] = line.split(' ')
        if (kind === 'A' && a && b) acked.set(b, BigInt(a))
        if (kind === 'C' && a) committed = BigInt(a)
        if (kind === 'c' && a) committing = BigInt(a)
      }
    })
  })
  const exited = new Promise<number | null>((resolve) => proc.once('exit', (code) => resolve(code)))
  await Promise.race([ready, exited])
  await new Promise((r) => setTimeout(r, killAfterMs))
  proc.kill('SIGKILL')
  const code = await exited
  assert.equal(code, null, `the child was killed, not crashed on its own: ${stderr}`)
  return { acked, committed, committing }
}

test(`kill -9 during appends loses no acknowledged record (${iterations} iterations)`, async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'spillway-crash-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  let totalAcked = 0
  let totalReplayedUnacked = 0
  for (let i = 0; i < iterations; i++) {
    const run = await runAndKill(dir, i, 5 + Math.floor(Math.random() * 120))
    totalAcked += run.acked.size
    const log = await DurableLog.open({ dir, segmentBytes: 16 * 1024 })
    const reader = log.reader()
    const seen = new Map<string, bigint>()
    let previous = -1n
    for (;;) {
      const batch = await reader.read({ maxRecords: 1000 })
      if (batch.length === 0) break
      for (const record of batch) {
        assert.ok(record.seq > previous, 'order is kept')
        previous = record.seq
        const [iter, n] = record.payload.toString().split(':')
        const id = `${iter}:${n}`
        assert.ok(!seen.has(id), `record ${id} appears once`)
        seen.set(id, record.seq)
        if (Number(iter) === i && !run.acked.has(id)) totalReplayedUnacked++
      }
    }
    for (const [id, seq] of run.acked) {
      if (seq < run.committed) {
        assert.ok(!seen.has(id), `delivered record ${id} (seq ${seq}) is not resurrected`)
      } else if (seq < run.committing) {
        // its commit was under way at the kill: present or delivered, either is correct
        if (seen.has(id)) assert.equal(seen.get(id), seq)
      } else {
        assert.equal(
          seen.get(id),
          seq,
          `acknowledged record ${id} (seq ${seq}) survived kill -9 in iteration ${i}`,
        )
      }
    }
    // deliver everything so the next iteration starts from a clean cursor
    if (previous >= 0n) {
      reader.rewind()
      let last: Awaited<ReturnType<typeof reader.read>>[number] | undefined
      for (;;) {
        const batch = await reader.read({ maxRecords: 1000 })
        if (batch.length === 0) break
        last = batch.at(-1)
      }
      if (last) await log.commit(last.next)
    }
    await reader.close()
    await log.close()
  }
  assert.ok(totalAcked > iterations, `appends were acknowledged before the kills (${totalAcked})`)
  t.diagnostic(
    `acknowledged ${totalAcked}; written but unacknowledged and found after restart: ${totalReplayedUnacked}`,
  )
})
