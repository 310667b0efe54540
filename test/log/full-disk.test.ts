/**
 * A real full disk: the log lives on a small tmpfs that fills up. It refuses cleanly with
 * SPW_ERR_LOG_FULL, keeps every acknowledged record, and accepts again once space returns.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { mkdtemp, rm, rmdir, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { type TestContext, test } from 'node:test'
import { isSpillwayError } from '../../src/errors.ts'
import { DurableLog } from '../../src/log/log.ts'

function tryMount(dir: string): string | undefined {
  try {
    execFileSync('mount', ['-t', 'tmpfs', '-o', 'size=3m', 'tmpfs', dir], { stdio: 'pipe' })
    return undefined
  } catch (error) {
    return String((error as { stderr?: Buffer }).stderr ?? error)
  }
}

for (const inlineWrites of [true, false]) {
  const how = inlineWrites ? 'written inline (as tmpfs is by default)' : 'written through the thread pool'
  test(`a full filesystem, appends ${how}: clean refusal, nothing acknowledged lost, recovery when space returns`, async (t) => {
    await fullDisk(t, inlineWrites)
  })
}

async function fullDisk(t: TestContext, inlineWrites: boolean): Promise<void> {
  const mountpoint = await mkdtemp(join(tmpdir(), 'spillway-fulldisk-'))
  const failure = tryMount(mountpoint)
  if (failure !== undefined) {
    await rmdir(mountpoint)
    t.skip(`needs root to mount a tmpfs (${failure.trim()})`)
    return
  }
  t.after(async () => {
    execFileSync('umount', [mountpoint])
    await rmdir(mountpoint)
  })
  const filler = join(mountpoint, 'filler')
  await writeFile(filler, Buffer.alloc(1024 * 1024))
  const dir = join(mountpoint, 'log')
  const log = await DurableLog.open({
    dir,
    maxBytes: 100 * 1024 * 1024,
    segmentBytes: 256 * 1024,
    ...(inlineWrites ? {} : { inlineWrites }),
  })
  assert.equal(log.stats().inlineWrites, inlineWrites, 'a log on tmpfs writes inline unless told otherwise')

  const acked: Buffer[] = []
  let refusal: unknown
  for (let i = 0; i < 10_000 && refusal === undefined; i++) {
    const payload = Buffer.alloc(8 * 1024, i % 256)
    payload.writeUInt32BE(i, 0)
    try {
      await log.append([payload])
      acked.push(payload)
    } catch (error) {
      refusal = error
    }
  }
  assert.ok(
    isSpillwayError(refusal, 'SPW_ERR_LOG_FULL'),
    `the full disk surfaces as LOG_FULL: ${String(refusal)}`,
  )
  assert.equal((refusal as { retriable: boolean }).retriable, true)
  assert.equal(log.status.state, 'disk-full')
  assert.ok(acked.length > 50, `some appends succeeded first (${acked.length})`)

  const started = performance.now()
  await assert.rejects(log.append([Buffer.alloc(100)]), { code: 'SPW_ERR_LOG_FULL' })
  assert.ok(performance.now() - started < 20, 'while the disk is full, refusal is immediate')

  // space returns
  await rm(filler)
  const deadline = performance.now() + 5000
  const state = (): string => log.status.state
  while (state() !== 'open' && performance.now() < deadline) await new Promise((r) => setTimeout(r, 50))
  assert.equal(state(), 'open', 'the log notices free space and accepts again')
  const after = Buffer.from('after-space-returned')
  await log.append([after])
  acked.push(after)
  await log.close()

  const reopened = await DurableLog.open({ dir })
  const reader = reopened.reader()
  const got: Buffer[] = []
  for (;;) {
    const batch = await reader.read({ maxRecords: 1000 })
    if (batch.length === 0) break
    got.push(...batch.map((r) => Buffer.from(r.payload)))
  }
  await reader.close()
  await reopened.close()
  const missing = acked.findIndex((a, i) => !got[i]?.equals(a))
  assert.equal(
    got.length,
    acked.length,
    `every acknowledged record, nothing more (first mismatch at ${missing} of ${acked.length})`,
  )
  got.forEach((g, i) => {
    assert.ok(g.equals(acked[i] as Buffer), `record ${i} byte-exact`)
  })
}
