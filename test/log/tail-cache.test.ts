import assert from 'node:assert/strict'
import { test } from 'node:test'
import { DurableLog, type LogRecord } from '../../src/log/log.ts'
import { tempDir } from '../helpers/fs.ts'
import { readAll, readRest } from '../helpers/log.ts'

const payload = (i: number): Buffer => Buffer.from(`record-${i}-${'y'.repeat(i % 90)}`)

test('the tail cache hands out exactly what the disk holds, positions included, across segment rolls', async (t) => {
  const dir = await tempDir(t)
  const log = await DurableLog.open({ dir, segmentBytes: 4096 })
  for (let i = 0; i < 400; i += 4)
    await log.append([payload(i), payload(i + 1), payload(i + 2), payload(i + 3)])
  assert.ok(log.stats().segments > 5, 'small segments roll')
  const fromMemory = await readAll(log, 7)
  assert.ok(log.stats().cachedReads > 0, 'the reader took records from the cache')
  await log.close()

  const reopened = await DurableLog.open({ dir, segmentBytes: 4096 })
  t.after(() => reopened.close())
  const fromDisk = await readAll(reopened, 7)
  assert.equal(reopened.stats().cachedReads, 0, 'a reopened log has nothing cached')
  assert.equal(fromMemory.length, 400)
  assert.deepEqual(fromMemory, fromDisk)
  for (const [i, r] of fromMemory.entries()) assert.deepEqual(r.payload, payload(i))
})

test('a full cache keeps the oldest undelivered records; the rest is read from disk; delivery frees it', async (t) => {
  const dir = await tempDir(t)
  const budget = 8 * 1024
  const log = await DurableLog.open({ dir, tailCacheBytes: budget })
  t.after(() => log.close())
  for (let i = 0; i < 1000; i++) {
    await log.append([payload(i)])
    assert.ok(log.stats().tailCacheBytes <= budget, 'never over the budget')
  }
  assert.ok(log.stats().tailCacheBytes > budget / 2, 'the cache filled up')
  const reader = log.reader()
  const first = await reader.read({ maxRecords: 300 })
  const fromMemory = log.stats().cachedReads
  assert.ok(
    fromMemory > 0 && fromMemory < 300,
    `the oldest records came from memory (${fromMemory}), the rest from disk`,
  )
  assert.deepEqual(
    first.map((r) => r.seq),
    Array.from({ length: 300 }, (_, i) => BigInt(i)),
  )
  for (const r of first) assert.deepEqual(r.payload, payload(Number(r.seq)))
  // delivered records leave the cache, and later appends are cached in the space they free
  await log.commit((first.at(-1) as LogRecord).next)
  assert.equal(log.stats().tailCacheBytes, 0)
  for (let i = 1000; i < 1010; i++) await log.append([payload(i)])
  assert.ok(log.stats().tailCacheBytes > 0)
  const rest = await readRest(reader, 50)
  await reader.close()
  assert.ok(log.stats().cachedReads > fromMemory, 'the reader reached the newly cached tail')
  assert.deepEqual(
    rest.map((r) => r.seq),
    Array.from({ length: 710 }, (_, i) => BigInt(i + 300)),
  )
  for (const r of rest) assert.deepEqual(r.payload, payload(Number(r.seq)))
  await log.commit((rest.at(-1) as LogRecord).next)
  assert.equal(log.stats().tailCacheBytes, 0)
})

test('tailCacheBytes 0 turns the cache off; a bad value is refused with the key named', async (t) => {
  const dir = await tempDir(t)
  const log = await DurableLog.open({ dir, tailCacheBytes: 0 })
  t.after(() => log.close())
  for (let i = 0; i < 50; i++) await log.append([payload(i)])
  assert.equal((await readAll(log)).length, 50)
  assert.equal(log.stats().cachedReads, 0)
  assert.equal(log.stats().tailCacheBytes, 0)
  await assert.rejects(DurableLog.open({ dir: await tempDir(t), tailCacheBytes: -1 }), /log\.tailCacheBytes/)
})

test('under an interval fsync policy the cache serves nothing before it is durable', async (t) => {
  const dir = await tempDir(t)
  const log = await DurableLog.open({ dir, fsync: { intervalMs: 60_000 } })
  t.after(() => log.close())
  const pending = log.append([payload(1), payload(2)])
  await new Promise((r) => setTimeout(r, 50))
  const reader = log.reader()
  assert.deepEqual(await reader.read(), [], 'written but not yet synced: not readable')
  await log.flush()
  await pending
  const records = await reader.read()
  await reader.close()
  assert.deepEqual(
    records.map((r) => r.payload.toString()),
    [payload(1).toString(), payload(2).toString()],
  )
})
