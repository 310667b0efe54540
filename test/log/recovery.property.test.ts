/**
 * Property tests of the framing and of recovery: torn tails at every byte offset, random bit flips,
 * partially written checkpoints and half-finished deletions. After reopening, every record that was
 * complete and undamaged is present, in order and byte-exact; damaged ones are reported; none is invented.
 */
import assert from 'node:assert/strict'
import { cp, mkdtemp, open, readdir, readFile, rm, stat, truncate, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { crc32c } from '@node-rs/crc32'
import fc from 'fast-check'
import {
  decodeFrameAt,
  ENTRY_HEADER_BYTES,
  encodeFrame,
  encodeRecord,
  FRAME_HEADER_BYTES,
  SEGMENT_HEADER_BYTES,
} from '../../src/log/format.ts'
import { type CorruptionReport, DurableLog, type LogRecord } from '../../src/log/log.ts'
import { readAll } from '../helpers/log.ts'

const soak = process.env.SPILLWAY_SOAK === '1'

async function withDir<T>(fn: (dir: string) => Promise<T>): Promise<T> {
  const dir = await mkdtemp(join(tmpdir(), 'spillway-prop-'))
  try {
    return await fn(dir)
  } finally {
    await rm(dir, { recursive: true, force: true })
  }
}

async function segmentFiles(dir: string): Promise<string[]> {
  return (await readdir(dir)).filter((n) => n.startsWith('seg-')).sort()
}

const payloadArb = fc.uint8Array({ minLength: 0, maxLength: 300 }).map((a) => Buffer.from(a))

test('framing: encode then decode is the identity, and any single-bit flip is detected', () => {
  fc.assert(
    fc.property(
      fc.array(payloadArb, { minLength: 1, maxLength: 5 }),
      fc.bigInt({ min: 0n, max: 2n ** 62n }),
      fc.nat(),
      fc.nat(),
      (payloads, seq, ts, bit) => {
        const frame = encodeFrame(seq, ts, payloads)
        const decoded = decodeFrameAt(frame, 0, 1 << 20)
        assert.equal(decoded.kind, 'frame')
        if (decoded.kind !== 'frame') return
        assert.equal(decoded.frame.seq, seq)
        assert.equal(decoded.frame.timestamp, ts)
        assert.equal(decoded.frame.size, frame.length)
        assert.deepEqual(decoded.frame.payloads, payloads)
        const flipped = Buffer.from(frame)
        const at = bit % (flipped.length * 8)
        flipped[at >> 3] = (flipped[at >> 3] as number) ^ (1 << (at & 7))
        assert.notEqual(decodeFrameAt(flipped, 0, 1 << 20).kind, 'frame', `flip of bit ${at} detected`)
      },
    ),
    { numRuns: soak ? 20_000 : 1000 },
  )
})

test('framing: a record over the maximum, or entries that do not add up, are refused', () => {
  assert.deepEqual(decodeFrameAt(encodeFrame(0n, 0, [Buffer.alloc(10)]), 0, 9), {
    kind: 'invalid',
    reason: 'a record of 10 bytes exceeds the maximum 9',
  })
  // a frame whose count disagrees with its entries, with a CRC that matches: refused all the same
  const frame = encodeFrame(0n, 0, [Buffer.from('a'), Buffer.from('b')])
  frame.writeUInt32BE(3, 26)
  frame.writeUInt32BE(crc32c(frame.subarray(5)), 1)
  assert.equal(decodeFrameAt(frame, 0, 100).kind, 'invalid')
})

test('framing: records of version 1 (written by spillway 0.1) are still read, one per frame', () => {
  fc.assert(
    fc.property(payloadArb, fc.bigInt({ min: 0n, max: 2n ** 62n }), fc.nat(), (payload, seq, ts) => {
      const decoded = decodeFrameAt(encodeRecord(seq, ts, payload), 0, 1 << 20)
      assert.deepEqual(decoded, {
        kind: 'frame',
        frame: { seq, timestamp: ts, payloads: [payload], size: 26 + payload.length },
      })
    }),
  )
})

test('a log left by spillway 0.1 (version-1 records) is read, then appended to in frames', async () => {
  await withDir(async (dir) => {
    const log = await DurableLog.open({ dir })
    await log.close()
    const [segment] = await segmentFiles(dir)
    assert.ok(segment)
    const old = [Buffer.from('zero'), Buffer.from('one')].map((p, i) => encodeRecord(BigInt(i), 5, p))
    await writeFile(join(dir, segment), Buffer.concat([await readFile(join(dir, segment)), ...old]))
    const reopened = await DurableLog.open({ dir })
    await reopened.append([Buffer.from('two'), Buffer.from('three')])
    assert.deepEqual(
      (await readAll(reopened)).map((r) => [r.seq, r.payload.toString()]),
      [
        [0n, 'zero'],
        [1n, 'one'],
        [2n, 'two'],
        [3n, 'three'],
      ],
    )
    await reopened.close()
  })
})

test('a torn tail at every byte offset keeps exactly the complete records', async () => {
  await withDir(async (dir) => {
    const source = join(dir, 'source')
    const log = await DurableLog.open({ dir: source })
    const payloads = Array.from({ length: 12 }, (_, i) => Buffer.alloc(3 + ((i * 7) % 29), i + 1))
    // appends of 1, 2 and 3 records: an append is one frame, on disk whole or not at all
    const appends = [payloads.slice(0, 1), payloads.slice(1, 3), payloads.slice(3, 6), payloads.slice(6)]
    for (const a of appends) await log.append(a)
    await log.close()
    const [segment] = await segmentFiles(source)
    assert.ok(segment)
    const size = (await stat(join(source, segment))).size
    const ends: number[] = [] // per record: the end of its frame
    let offset = SEGMENT_HEADER_BYTES
    for (const a of appends) {
      offset += FRAME_HEADER_BYTES + a.reduce((n, p) => n + ENTRY_HEADER_BYTES + p.length, 0)
      for (const _ of a) ends.push(offset)
    }
    assert.equal(offset, size)

    for (let cut = 0; cut <= size; cut++) {
      const work = join(dir, `cut-${cut}`)
      await cp(source, work, { recursive: true })
      await truncate(join(work, segment), cut)
      const reopened = await DurableLog.open({ dir: work })
      const records = await readAll(reopened)
      const complete = ends.filter((end) => end <= cut).length
      assert.equal(
        records.length,
        complete,
        `cut at ${cut}: the ${complete} records of complete appends survive`,
      )
      records.forEach((r, i) => {
        assert.equal(r.seq, BigInt(i))
        assert.deepEqual(r.payload, payloads[i])
      })
      // the log stays usable: the next append continues the sequence without a collision
      const next = await reopened.append([Buffer.from('next')])
      assert.ok(next.firstSeq >= BigInt(complete))
      await reopened.close()
      await rm(work, { recursive: true, force: true })
    }
  })
})

test('random bit flips: undamaged records all survive in order, damaged ones are reported, none invented', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.array(fc.array(payloadArb, { minLength: 1, maxLength: 3 }), { minLength: 5, maxLength: 40 }),
      fc.array(fc.tuple(fc.nat(), fc.nat({ max: 7 })), { minLength: 1, maxLength: 6 }),
      async (appends, flips) => {
        const payloads = appends.flat()
        await withDir(async (dir) => {
          const log = await DurableLog.open({ dir, segmentBytes: 4096 })
          for (const a of appends) await log.append(a)
          await log.close()
          // Map every frame (one append) to its file, byte range and records, then damage bytes inside frames.
          const files = await segmentFiles(dir)
          const ranges: { file: string; start: number; end: number; records: number[] }[] = []
          let index = 0
          for (const file of files) {
            const bytes = await readFile(join(dir, file))
            let offset = SEGMENT_HEADER_BYTES
            while (offset < bytes.length) {
              const decoded = decodeFrameAt(bytes, offset, 1 << 20)
              assert.equal(decoded.kind, 'frame')
              if (decoded.kind !== 'frame') return
              const records = decoded.frame.payloads.map(() => index++)
              ranges.push({ file, start: offset, end: offset + decoded.frame.size, records })
              offset += decoded.frame.size
            }
          }
          assert.equal(ranges.length, appends.length)
          assert.equal(index, payloads.length)
          // two flips of the same bit cancel out: a record is damaged only if its bytes end up different
          const masks = new Map<string, { range: (typeof ranges)[number]; mask: number }>()
          for (const [pick, bit] of flips) {
            const range = ranges[pick % ranges.length]
            if (!range) continue
            const at = range.start + (pick % (range.end - range.start))
            const handle = await open(join(dir, range.file), 'r+')
            const byte = Buffer.alloc(1)
            await handle.read(byte, 0, 1, at)
            byte[0] = (byte[0] as number) ^ (1 << bit)
            await handle.write(byte, 0, 1, at)
            await handle.close()
            const key = `${range.file}:${at}`
            const mask = (masks.get(key)?.mask ?? 0) ^ (1 << bit)
            masks.set(key, { range, mask })
          }
          const damaged = new Set(
            [...masks.values()].filter((m) => m.mask !== 0).flatMap((m) => m.range.records),
          )
          const reports: CorruptionReport[] = []
          const reopened = await DurableLog.open({ dir, segmentBytes: 4096 })
          reopened.on('corruption', (r) => reports.push(r))
          const records = await readAll(reopened)
          const expected = payloads.map((p, i) => ({ p, i })).filter(({ i }) => !damaged.has(i))
          assert.deepEqual(
            records.map((r) => Number(r.seq)),
            expected.map(({ i }) => i),
            'exactly the undamaged records, in order',
          )
          records.forEach((r, k) => {
            assert.deepEqual(r.payload, expected[k]?.p)
          })
          const stats = reopened.stats()
          assert.ok(
            damaged.size === 0 || reports.length + (stats.tornTailBytes > 0 ? 1 : 0) > 0,
            'the damage was reported (as corruption, or as a torn tail of the last segment)',
          )
          await reopened.close()
        })
      },
    ),
    { numRuns: soak ? 2000 : 60 },
  )
})

test('crash states around checkpoint and retention never lose an undelivered record nor resurrect a delivered one', async () => {
  await fc.assert(
    fc.asyncProperty(
      fc.integer({ min: 20, max: 120 }),
      fc.double({ min: 0.05, max: 0.95, noNaN: true }),
      fc.constantFrom(
        'temp-checkpoint-garbage',
        'deletion-not-finished',
        'checkpoint-damaged',
        'checkpoint-segment-gone',
      ),
      async (count, fraction, crash) => {
        await withDir(async (dir) => {
          const logDir = join(dir, 'log')
          const log = await DurableLog.open({ dir: logDir, segmentBytes: 4096 })
          for (let i = 0; i < count; i++) await log.append([Buffer.alloc(50 + (i % 30), i % 251)])
          const before = join(dir, 'before')
          await cp(logDir, before, { recursive: true }) // every segment, as it was before retention
          const all = await readAll(log)
          const deliveredUpTo = Math.max(1, Math.floor(count * fraction))
          const commitAt = (all[deliveredUpTo - 1] as LogRecord).next
          await log.commit(commitAt)
          await log.close()

          let firstReadable = deliveredUpTo
          if (crash === 'temp-checkpoint-garbage') {
            await writeFile(join(logDir, 'checkpoint.tmp'), Buffer.from('SPWCKP01 half'))
          } else if (crash === 'deletion-not-finished') {
            // checkpoint is durable but the segment deletions after it never happened
            for (const name of await segmentFiles(before)) {
              if (!(await readdir(logDir)).includes(name)) await cp(join(before, name), join(logDir, name))
            }
          } else if (crash === 'checkpoint-damaged') {
            const bytes = await readFile(join(logDir, 'checkpoint'))
            bytes[10] = (bytes[10] as number) ^ 0xff
            await writeFile(join(logDir, 'checkpoint'), bytes)
            // replay from the oldest remaining segment: duplicates are allowed, loss is not
            const oldest = (await segmentFiles(logDir))[0] as string
            firstReadable = Number(BigInt(oldest.slice(4, 24)))
          } else {
            // the checkpoint's segment vanished: resume at the next segment that exists
            const cursorSegment = `seg-${commitAt.segment.toString().padStart(20, '0')}.log`
            const segments = await segmentFiles(logDir)
            if (segments.length > 1 && segments[0] === cursorSegment) {
              await rm(join(logDir, cursorSegment))
              firstReadable = Number(BigInt((segments[1] as string).slice(4, 24)))
            }
          }
          const reopened = await DurableLog.open({ dir: logDir, segmentBytes: 4096 })
          const records = await readAll(reopened)
          await reopened.close()
          assert.deepEqual(
            records.map((r) => Number(r.seq)),
            Array.from({ length: count - firstReadable }, (_, i) => firstReadable + i),
            `${crash}: records from ${firstReadable} on, exactly once, in order`,
          )
        })
      },
    ),
    { numRuns: soak ? 1000 : 40 },
  )
})
