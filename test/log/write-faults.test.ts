/**
 * Storage faults that must never be answered as durable: the log directory deleted while the log runs,
 * and a write refused with EPERM (a real one: `chattr +i` on ext4 refuses writes even to root) that
 * later goes away. The full disk has its own file (full-disk.test.ts).
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { readdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { test } from 'node:test'
import { isSpillwayError } from '../../src/errors.ts'
import { DurableLog } from '../../src/log/log.ts'
import { tempDir } from '../helpers/fs.ts'
import { readAll } from '../helpers/log.ts'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

test('the directory deleted under a running log: appends are refused, never acknowledged into a deleted file', async (t) => {
  const dir = await tempDir(t)
  const log = await DurableLog.open({ dir, inlineWrites: false })
  t.after(() => log.close())
  await log.append([Buffer.from('before')])
  await rm(dir, { recursive: true, force: true })
  await assert.rejects(log.append([Buffer.from('after')]), (error: unknown) => {
    assert.ok(isSpillwayError(error, 'SPW_ERR_LOG_IO'), String(error))
    assert.match((error as Error).message, /was removed/)
    assert.equal((error as { retriable: boolean }).retriable, true)
    return true
  })
  assert.equal(log.status.state, 'failed')
  await assert.rejects(log.append([Buffer.from('later')]), { code: 'SPW_ERR_LOG_IO' })
  await sleep(20)
  const stats = log.stats()
  assert.ok(stats.faultyForMs > 0, 'how long it has been faulty is reported')
  assert.match(stats.fault ?? '', /was removed/)
})

function chattr(flag: '+i' | '-i', file: string): void {
  execFileSync('chattr', [flag, file])
}

async function activeSegment(dir: string): Promise<string> {
  const names = (await readdir(dir)).filter((n) => n.startsWith('seg-')).sort()
  return join(dir, names.at(-1) as string)
}

for (const inlineWrites of [false, true])
  test(`EPERM on the active segment (${inlineWrites ? 'inline' : 'thread-pool'} writes): refused while it lasts, open again once it is gone, nothing acknowledged lost`, async (t) => {
    const dir = await tempDir(t)
    const log = await DurableLog.open({ dir, inlineWrites })
    const segment = await activeSegment(dir)
    t.after(async () => {
      try {
        execFileSync('chattr', ['-i', segment], { stdio: 'ignore' })
      } catch {
        // already writable, or already removed
      }
      await log.close()
    })
    const acked: string[] = []
    for (let i = 0; i < 5; i++) {
      await log.append([Buffer.from(`a${i}`)])
      acked.push(`a${i}`)
    }
    chattr('+i', segment)
    await assert.rejects(log.append([Buffer.from('refused-1')]), (error: unknown) => {
      assert.ok(isSpillwayError(error, 'SPW_ERR_LOG_IO'), String(error))
      assert.match((error as Error).message, /EPERM/)
      return true
    })
    assert.equal(log.status.state, 'unwritable')
    await assert.rejects(log.append([Buffer.from('refused-2')]), { code: 'SPW_ERR_LOG_IO' })
    assert.match(log.stats().fault ?? '', /EPERM/)
    chattr('-i', segment)
    for (let i = 0; i < 100 && !log.status.is('open'); i++) await sleep(50)
    assert.equal(log.status.state, 'open', 'the probe found the fault gone')
    assert.equal(log.stats().faultyForMs, 0)
    for (let i = 0; i < 5; i++) {
      await log.append([Buffer.from(`b${i}`)])
      acked.push(`b${i}`)
    }
    await log.close()
    const reopened = await DurableLog.open({ dir })
    const records = (await readAll(reopened)).map((r) => r.payload.toString())
    await reopened.close()
    assert.deepEqual(records, acked, 'every acknowledged record, in order, and none of the refused ones')
  })
