/**
 * Durable log append and replay throughput, beside the raw disk in the same run.
 *
 *   npm run bench -- log            (or: node bench/log-append.ts [seconds] [dir])
 *
 * spillway: 64 concurrent appenders of 1 KiB records, fsync 'always' (group commit).
 * peers:    sequential write + fdatasync, and sequential O_DSYNC writes (what spillway does under fsync
 *           'always'), of the same batch size spillway achieved, on the same disk; the ratio is taken
 *           against the faster of the two.
 * replay:   reading the whole backlog back through a LogReader.
 */
import { constants } from 'node:fs'
import { mkdtemp, open, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { DurableLog } from '../src/log/log.ts'
import { percentile, printTable } from './report.ts'

const seconds = Number(process.argv[2] ?? 5)
const base = process.argv[3] ?? tmpdir()
const RECORD = 1024
const APPENDERS = 64

async function spillway(
  dir: string,
): Promise<{ records: number; bytes: number; fsyncs: number; latencies: number[]; ms: number }> {
  const log = await DurableLog.open({ dir, maxBytes: 64 * 1024 ** 3, fsync: 'always' })
  const payload = Buffer.alloc(RECORD, 7)
  const latencies: number[] = []
  let records = 0
  const deadline = performance.now() + seconds * 1000
  const started = performance.now()
  await Promise.all(
    Array.from({ length: APPENDERS }, async () => {
      while (performance.now() < deadline) {
        const t0 = performance.now()
        await log.append([payload])
        latencies.push(performance.now() - t0)
        records++
      }
    }),
  )
  const ms = performance.now() - started
  const { fsyncs, diskBytes } = log.stats()
  await log.close()
  return { records, bytes: diskBytes, fsyncs, latencies, ms }
}

async function rawDisk(
  file: string,
  batchBytes: number,
  mode: 'fdatasync' | 'dsync',
): Promise<{ bytes: number; ms: number }> {
  const { O_WRONLY, O_CREAT, O_TRUNC, O_DSYNC } = constants
  const handle = await open(file, mode === 'dsync' ? O_WRONLY | O_CREAT | O_TRUNC | O_DSYNC : 'w')
  const chunk = Buffer.alloc(batchBytes, 7)
  let bytes = 0
  const deadline = performance.now() + seconds * 1000
  const started = performance.now()
  while (performance.now() < deadline) {
    await handle.write(chunk, 0, chunk.length, bytes)
    if (mode === 'fdatasync') await handle.datasync()
    bytes += chunk.length
  }
  const ms = performance.now() - started
  await handle.close()
  return { bytes, ms }
}

async function replay(dir: string): Promise<{ records: number; ms: number }> {
  const log = await DurableLog.open({ dir, maxBytes: 64 * 1024 ** 3 })
  const reader = log.reader()
  let records = 0
  const started = performance.now()
  for (;;) {
    const batch = await reader.read({ maxBytes: 4 << 20, maxRecords: 20_000 })
    if (batch.length === 0) break
    records += batch.length
  }
  const ms = performance.now() - started
  await reader.close()
  await log.close()
  return { records, ms }
}

const work = await mkdtemp(join(base, 'spillway-bench-log-'))
try {
  const s = await spillway(join(work, 'log'))
  const batchBytes = Math.max(RECORD + 26, Math.round(s.bytes / Math.max(1, s.fsyncs)))
  const rawSync = await rawDisk(join(work, 'raw-fdatasync'), batchBytes, 'fdatasync')
  const rawDsync = await rawDisk(join(work, 'raw-dsync'), batchBytes, 'dsync')
  const r = await replay(join(work, 'log'))
  const sMBs = s.bytes / 1e6 / (s.ms / 1000)
  const syncMBs = rawSync.bytes / 1e6 / (rawSync.ms / 1000)
  const dsyncMBs = rawDsync.bytes / 1e6 / (rawDsync.ms / 1000)
  const rawMBs = Math.max(syncMBs, dsyncMBs)
  const appendRate = s.records / (s.ms / 1000)
  const replayRate = r.records / (r.ms / 1000)
  printTable('durable log, 1 KiB records, 64 appenders, fsync always', [
    [
      'spillway append',
      `${Math.round(appendRate)} rec/s`,
      `${sMBs.toFixed(1)} MB/s`,
      `p50 ${percentile(s.latencies, 50).toFixed(2)} ms`,
      `p99 ${percentile(s.latencies, 99).toFixed(2)} ms`,
    ],
    ['raw write+fdatasync', `batch ${batchBytes} B`, `${syncMBs.toFixed(1)} MB/s`, '', ''],
    ['raw O_DSYNC write', `batch ${batchBytes} B`, `${dsyncMBs.toFixed(1)} MB/s`, '', ''],
    ['ratio append/faster raw', (sMBs / rawMBs).toFixed(2), 'target >= 0.7', '', ''],
    [
      'spillway replay',
      `${Math.round(replayRate)} rec/s`,
      `${((r.records * (RECORD + 26)) / 1e6 / (r.ms / 1000)).toFixed(1)} MB/s`,
      '',
      '',
    ],
    ['ratio replay/append', (replayRate / appendRate).toFixed(2), 'target >= 3', '', ''],
  ])
} finally {
  await rm(work, { recursive: true, force: true })
}
