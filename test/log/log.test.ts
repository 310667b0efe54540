import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { mkdtemp, readdir, readFile, rm, statfs, writeFile } from 'node:fs/promises'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { isSpillwayError } from '../../src/errors.ts'
import { lockDirectory } from '../../src/log/lock.ts'
import { DurableLog, type LogRecord } from '../../src/log/log.ts'
import { tempDir } from '../helpers/fs.ts'
import { readAll } from '../helpers/log.ts'

test('appends are durable, ordered and read back byte-exact; seqs continue across reopen', async (t) => {
  const dir = await tempDir(t)
  const log = await DurableLog.open({ dir, segmentBytes: 4096 })
  const payloads = Array.from({ length: 300 }, (_, i) => Buffer.from(`record-${i}-${'x'.repeat(i % 40)}`))
  const results = await Promise.all(payloads.map((p) => log.append([p])))
  assert.deepEqual(
    results.map((r) => r.firstSeq),
    payloads.map((_, i) => BigInt(i)),
  )
  const records = await readAll(log)
  assert.equal(records.length, 300)
  records.forEach((r, i) => {
    assert.equal(r.seq, BigInt(i))
    assert.deepEqual(r.payload, payloads[i])
  })
  assert.ok(log.stats().segments > 3, 'small segments roll')
  await log.close()

  const reopened = await DurableLog.open({ dir, segmentBytes: 4096 })
  t.after(() => reopened.close())
  assert.equal((await readAll(reopened)).length, 300, 'nothing delivered yet: all replayed')
  const next = await reopened.append([Buffer.from('after')])
  assert.equal(next.firstSeq, 300n, 'seq continues after reopen')
})

test('payloads written in place are stored and checked exactly like payloads handed over as buffers', async (t) => {
  const dir = await tempDir(t)
  const log = await DurableLog.open({ dir, maxRecordBytes: 1024 })
  t.after(() => log.close())
  const payloads = [Buffer.from('first'), Buffer.alloc(0), Buffer.alloc(1000, 7)]
  const writes: number[] = []
  const written = await log.append({
    sizes: payloads.map((p) => p.length),
    write: (i, target, offset) => {
      writes.push(i)
      ;(payloads[i] as Buffer).copy(target, offset)
    },
  })
  assert.deepEqual(writes, [0, 1, 2], 'each payload written once, in order')
  await log.append([Buffer.from('copied')])
  assert.deepEqual(written, { firstSeq: 0n, count: 3 })
  assert.deepEqual(
    (await readAll(log)).map((r) => r.payload),
    [...payloads, Buffer.from('copied')],
  )
  await assert.rejects(log.append({ sizes: [10, 2048], write: () => assert.fail('nothing is written') }), {
    code: 'SPW_ERR_RECORD_TOO_LARGE',
  })
  assert.equal(log.stats().pendingRecords, 4n, 'the refused append kept nothing')
  await log.close()
  const reopened = await DurableLog.open({ dir })
  t.after(() => reopened.close())
  assert.equal((await readAll(reopened)).length, 4, 'every CRC checks out from disk')
})

test('commit advances the cursor, deletes delivered segments and survives reopen', async (t) => {
  const dir = await tempDir(t)
  const log = await DurableLog.open({ dir, segmentBytes: 4096 })
  for (let i = 0; i < 200; i++) await log.append([Buffer.alloc(100, i)])
  const reader = log.reader()
  const first = await reader.read({ maxRecords: 150 })
  assert.equal(first.length, 150)
  const segmentsBefore = log.stats().segments
  await log.commit((first.at(-1) as LogRecord).next)
  assert.ok(log.stats().segments < segmentsBefore, 'fully delivered segments are removed')
  assert.equal(log.stats().pendingRecords, 50n)
  assert.ok(log.stats().oldestPendingTimestamp !== undefined)
  await reader.close()
  await log.close()

  const reopened = await DurableLog.open({ dir, segmentBytes: 4096 })
  t.after(() => reopened.close())
  const rest = await readAll(reopened)
  assert.deepEqual(
    rest.map((r) => r.seq),
    Array.from({ length: 50 }, (_, i) => BigInt(150 + i)),
    'only undelivered records are read after reopen',
  )
})

test('many concurrent appends share writes (group commit)', async (t) => {
  const dir = await tempDir(t)
  const log = await DurableLog.open({ dir })
  t.after(() => log.close())
  await Promise.all(Array.from({ length: 2000 }, (_, i) => log.append([Buffer.alloc(256, i)])))
  const { fsyncs, appendedRecords } = log.stats()
  assert.equal(appendedRecords, 2000)
  assert.ok(fsyncs < 200, `2000 appends needed only ${fsyncs} fsyncs`)
})

test('the disk budget refuses at once with SPW_ERR_LOG_FULL and recovers after delivery', async (t) => {
  const dir = await tempDir(t)
  const log = await DurableLog.open({ dir, maxBytes: 64 * 1024, segmentBytes: 8192 })
  t.after(() => log.close())
  let refused: unknown
  for (let i = 0; i < 1000 && !refused; i++) {
    try {
      await log.append([Buffer.alloc(1000)])
    } catch (error) {
      refused = error
    }
  }
  assert.ok(isSpillwayError(refused, 'SPW_ERR_LOG_FULL'), `refused with LOG_FULL, got ${String(refused)}`)
  assert.equal((refused as { retriable: boolean }).retriable, true)
  const started = performance.now()
  await assert.rejects(log.append([Buffer.alloc(1000)]), { code: 'SPW_ERR_LOG_FULL' })
  assert.ok(performance.now() - started < 50, 'refusal does not wait on disk')
  assert.ok(log.stats().refusedFull >= 2)

  const reader = log.reader()
  let last: LogRecord | undefined
  for (;;) {
    const batch = await reader.read()
    if (batch.length === 0) break
    last = batch.at(-1)
  }
  await reader.close()
  assert.ok(last)
  await log.commit(last.next)
  await log.append([Buffer.alloc(1000)])
})

test('oversize records and empty appends are refused with coded errors', async (t) => {
  const dir = await tempDir(t)
  const log = await DurableLog.open({ dir, maxRecordBytes: 1024 })
  t.after(() => log.close())
  await assert.rejects(log.append([Buffer.alloc(2048)]), {
    code: 'SPW_ERR_RECORD_TOO_LARGE',
    retriable: false,
  })
  await assert.rejects(log.append([Buffer.alloc(10), Buffer.alloc(2048)]), {
    code: 'SPW_ERR_RECORD_TOO_LARGE',
  })
  assert.equal(
    log.stats().pendingRecords,
    0n,
    'all or nothing: the valid record of a refused append is not kept',
  )
  await assert.rejects(log.append([]), { code: 'SPW_ERR_BAD_REQUEST' })
})

test('a second owner of the directory is refused with SPW_ERR_LOG_LOCKED', async (t) => {
  const dir = await tempDir(t)
  const { spawn } = await import('node:child_process')
  const child = spawn(
    process.execPath,
    [
      '-e',
      `import('${new URL('../../src/log/log.ts', import.meta.url).href}').then(async (m) => { await m.DurableLog.open({ dir: ${JSON.stringify(dir)} }); console.log('open'); setInterval(() => {}, 1000) })`,
    ],
    { stdio: ['ignore', 'pipe', 'inherit'] },
  )
  t.after(() => child.kill('SIGKILL'))
  await new Promise<void>((resolve) => child.stdout.once('data', () => resolve()))
  await assert.rejects(DurableLog.open({ dir }), (error: unknown) => {
    assert.ok(isSpillwayError(error, 'SPW_ERR_LOG_LOCKED'))
    assert.match((error as Error).message, new RegExp(`live process ${child.pid}`))
    return true
  })
  child.kill('SIGKILL')
  await new Promise((r) => child.once('exit', r))
  const log = await DurableLog.open({ dir })
  await log.close()
})

test('interval and never fsync policies resolve appends and keep data across reopen', async (t) => {
  for (const fsync of [{ intervalMs: 5 }, 'never'] as const) {
    const dir = await tempDir(t)
    const log = await DurableLog.open({ dir, fsync })
    await Promise.all(Array.from({ length: 100 }, (_, i) => log.append([Buffer.from(`r${i}`)])))
    await log.close()
    const reopened = await DurableLog.open({ dir })
    assert.equal((await readAll(reopened)).length, 100, `policy ${JSON.stringify(fsync)}`)
    await reopened.close()
  }
})

test('invalid options name the key, the value and what is allowed', async () => {
  await assert.rejects(DurableLog.open({ dir: '/tmp/x', maxBytes: -1 }), {
    code: 'SPW_ERR_INVALID_OPTION',
    message: 'option log.maxBytes is -1; expected an integer from 4096 to 9007199254740991',
  })
  await assert.rejects(DurableLog.open({ dir: '/tmp/x', fsync: 'sometimes' as 'always' }), {
    message: /option log\.fsync is "sometimes"; expected "always", "never" or \{ intervalMs: number \}/,
  })
  await assert.rejects(DurableLog.open({ dir: '/tmp/x', colour: 'blue' } as unknown as { dir: string }), {
    message: /unknown option log\.colour; allowed: dir, segmentBytes/,
  })
})

test('a directory left with only a torn segment header opens cleanly', async (t) => {
  const dir = await tempDir(t)
  const log = await DurableLog.open({ dir })
  await log.append([Buffer.from('a')])
  await log.close()
  const { writeFile } = await import('node:fs/promises')
  await writeFile(join(dir, 'seg-00000000000000000001.log'), Buffer.from('SPWSEG0'))
  const reopened = await DurableLog.open({ dir })
  t.after(() => reopened.close())
  assert.deepEqual(
    (await readAll(reopened)).map((r) => r.payload.toString()),
    ['a'],
  )
  assert.ok((await readdir(dir)).every((n) => n !== 'checkpoint.tmp'))
})

test('the oldest pending timestamp follows the cursor, whether its frame is cached or on disk only', async (t) => {
  for (const tailCacheBytes of [0, 1024 * 1024]) {
    const dir = await tempDir(t)
    let now = 1_000
    const log = await DurableLog.open({ dir, segmentBytes: 4096, tailCacheBytes, wallClock: () => now })
    for (let i = 0; i < 30; i++) {
      await log.append([Buffer.alloc(300, i)])
      now += 1_000
    }
    assert.equal(log.stats().oldestPendingTimestamp, 1_000)
    const records = await readAll(log)
    for (const delivered of [1, 7, 13, 29]) {
      // past segment boundaries too: 300-byte records in 4 KiB segments
      await log.commit((records[delivered - 1] as LogRecord).next)
      assert.equal(
        log.stats().oldestPendingTimestamp,
        1_000 + delivered * 1_000,
        `cache of ${tailCacheBytes} bytes, ${delivered} delivered`,
      )
    }
    await log.commit((records.at(-1) as LogRecord).next)
    assert.equal(log.stats().oldestPendingTimestamp, undefined, 'nothing pending')
    await log.close()
  }
})

test('a log on tmpfs writes appends inline, one on disk through the thread pool; both read back and reopen', async (t) => {
  const dirs: [string, boolean][] = [[await tempDir(t), false]]
  if (existsSync('/dev/shm')) {
    const shm = await mkdtemp(join('/dev/shm', 'spillway-'))
    t.after(() => rm(shm, { recursive: true, force: true }))
    dirs.push([shm, true])
  }
  for (const [dir, inline] of dirs) {
    const onTmpfs = (await statfs(dir)).type === 0x01021994
    const log = await DurableLog.open({ dir, segmentBytes: 4096 })
    assert.equal(log.stats().inlineWrites, onTmpfs, `${dir}: inline exactly when on tmpfs`)
    if (inline) assert.ok(onTmpfs, '/dev/shm is a tmpfs')
    const payloads = Array.from({ length: 100 }, (_, i) => Buffer.from(`record-${i}`))
    await Promise.all(payloads.map((p) => log.append([p])))
    assert.deepEqual(
      (await readAll(log)).map((r) => r.payload.toString()),
      payloads.map((p) => p.toString()),
    )
    await log.close()
    const reopened = await DurableLog.open({ dir, segmentBytes: 4096 })
    assert.equal((await readAll(reopened)).length, 100)
    await reopened.close()
  }
})

test('frames built in the write arena: concurrent appends past its size, and its wrap-around, land byte-exact', async (t) => {
  const dir = await tempDir(t)
  // no tail cache, so every record is read back from the disk, as written from the arena
  const log = await DurableLog.open({ dir, tailCacheBytes: 0, maxRecordBytes: 512 * 1024 })
  const payloads: Buffer[] = []
  const make = (i: number, size: number): Buffer => {
    const b = Buffer.alloc(size, i % 251)
    b.writeUInt32BE(i, 0)
    payloads.push(b)
    return b
  }
  // a payload writer that throws appends nothing and leaves the arena as it was
  assert.throws(
    () =>
      log.append({
        sizes: [100, 100],
        write: (index) => {
          if (index === 1) throw new Error('encoding failed')
        },
      }),
    /encoding failed/,
  )
  let i = 0
  // 64 appends of ~300 KiB at once: ~19 MiB in flight against a 4 MiB arena, so most find it full
  await Promise.all(Array.from({ length: 64 }, () => log.append([make(i++, 300 * 1024)])))
  // then a stream that keeps appending while earlier frames are being written, with sizes that do not
  // divide the arena, so regions wrap around its end: a region given back before its write finished
  // would be overwritten under that write
  const pending: Promise<unknown>[] = []
  for (let k = 0; k < 400; k++) {
    pending.push(log.append([make(i++, 1000 + ((k * 7919) % 90_000)), make(i++, 17)]))
    if (k % 5 === 0) await new Promise((resolve) => setImmediate(resolve))
  }
  await Promise.all(pending)
  const read = await readAll(log, 100_000)
  assert.equal(read.length, payloads.length)
  read.forEach((r, n) => {
    assert.ok(r.payload.equals(payloads[n] as Buffer), `record ${n} byte-exact`)
  })
  await log.close()
})

test('a second open of the same directory in the same process is refused, however the path is spelt', async (t) => {
  const dir = await tempDir(t)
  const log = await DurableLog.open({ dir })
  t.after(() => log.close())
  await assert.rejects(DurableLog.open({ dir: `${dir}/./` }), (error: unknown) => {
    assert.ok(isSpillwayError(error, 'SPW_ERR_LOG_LOCKED'))
    assert.match((error as Error).message, /already open in this process/)
    return true
  })
  await log.close()
  const again = await DurableLog.open({ dir })
  await again.close()
})

test('a LOCK naming this pid but not held by this process is stale (a restart that got the same pid)', async (t) => {
  const dir = await tempDir(t)
  await writeFile(join(dir, 'LOCK'), JSON.stringify({ pid: process.pid, host: hostname(), token: 'old' }))
  const log = await DurableLog.open({ dir })
  await log.close()
})

test('release() leaves a lock another owner holds', async (t) => {
  const dir = await tempDir(t)
  const lock = await lockDirectory(dir)
  // another owner's lock in its place (ours was removed and taken over meanwhile)
  const theirs = JSON.stringify({ pid: 1, host: hostname(), token: 'theirs' })
  await writeFile(join(dir, 'LOCK'), theirs)
  await lock.release()
  assert.equal(await readFile(join(dir, 'LOCK'), 'utf8'), theirs, 'their lock is still there')
})

test('every write-queue size the options accept takes one record of the maximal size', async (t) => {
  for (const maxQueuedBytes of [1000 + 26, 1000 + 30, 1000 + 34, 1000 + 64]) {
    const dir = await tempDir(t)
    let log: DurableLog
    try {
      log = await DurableLog.open({ dir, maxRecordBytes: 1000, maxQueuedBytes })
    } catch (error) {
      assert.ok(isSpillwayError(error, 'SPW_ERR_INVALID_OPTION'), String(error))
      assert.match((error as Error).message, /log\.maxQueuedBytes/)
      continue
    }
    try {
      const { count } = await log.append([Buffer.alloc(1000, 7)])
      assert.equal(count, 1, `maxQueuedBytes ${maxQueuedBytes} takes a maximal record`)
    } finally {
      await log.close()
    }
  }
})
