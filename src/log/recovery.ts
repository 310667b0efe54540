/**
 * Opening a log directory after whatever happened to the process: reads only the checkpoint and the
 * last segment, finishes retention a crash interrupted, truncates a torn tail so new bytes never follow
 * garbage, and starts a fresh active segment. What it finds is handed to the DurableLog.
 */
import type { FileHandle } from 'node:fs/promises'
import { open, readdir, rm, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { type LogPosition, readCheckpoint, removeTempCheckpoint } from './checkpoint.ts'
import { createSegmentFile } from './disk.ts'
import { decodeSegmentHeader, parseSegmentFileName, SEGMENT_HEADER_BYTES } from './format.ts'
import type { ResolvedLogOptions } from './options.ts'
import { scanSegment } from './scanner.ts'
import type { Segment } from './segments.ts'

export interface RecoveredLog {
  /** Oldest first; the last is the fresh active segment. */
  readonly segments: Segment[]
  readonly active: FileHandle
  readonly nextSeq: bigint
  readonly cursor: LogPosition
  readonly diskBytes: number
  readonly tornTailBytes: number
  /** The path of a segment whose header was damaged (its records are still read), if any. */
  readonly headerDamage: string | undefined
}

export async function recoverLog(options: ResolvedLogOptions): Promise<RecoveredLog> {
  const dir = options.dir
  await removeTempCheckpoint(dir)
  const names = (await readdir(dir)).filter((n) => parseSegmentFileName(n) !== undefined).sort()
  const segments: Segment[] = []
  for (const name of names) {
    const path = join(dir, name)
    segments.push({ base: parseSegmentFileName(name) as bigint, path, size: (await stat(path)).size })
  }
  const checkpoint = await readCheckpoint(dir)
  const firstBase = segments[0]?.base ?? 0n
  let cursor: LogPosition =
    checkpoint.kind === 'ok'
      ? checkpoint.position
      : { seq: firstBase, segment: firstBase, offset: SEGMENT_HEADER_BYTES }

  // Finish retention a crash interrupted: segments wholly before the cursor's segment were delivered.
  while (
    segments.length > 1 &&
    (segments[1] as Segment).base <= cursor.seq &&
    (segments[0] as Segment).base < cursor.segment
  ) {
    const dead = segments.shift() as Segment
    await rm(dead.path, { force: true })
  }
  const cursorSegment = segments.find((s) => s.base === cursor.segment)
  if (cursorSegment === undefined) {
    // The cursor's segment is gone (delivered to its end and removed): resume at the first segment at or past it.
    const next = segments.find((s) => s.base >= cursor.seq) ?? segments[0]
    if (next)
      cursor = {
        seq: next.base > cursor.seq ? next.base : cursor.seq,
        segment: next.base,
        offset: SEGMENT_HEADER_BYTES,
      }
  }

  // Find the valid end of the last segment; truncate a torn tail so new bytes never follow garbage.
  let nextSeq = cursor.seq
  let tornTailBytes = 0
  let headerDamage: string | undefined
  const last = segments.at(-1)
  if (last) {
    const handle = await open(last.path, 'r+')
    try {
      let validEnd = SEGMENT_HEADER_BYTES
      let lastSeq = last.base - 1n
      if (last.size < SEGMENT_HEADER_BYTES) {
        // created by a roll that crashed before its header was complete: it holds nothing
        tornTailBytes = last.size
        validEnd = 0
      } else {
        const header = Buffer.alloc(SEGMENT_HEADER_BYTES)
        await handle.read(header, 0, SEGMENT_HEADER_BYTES, 0)
        if (decodeSegmentHeader(header) !== last.base) headerDamage = last.path
        // the file name carries the base seq too, so records survive a damaged header
        for await (const item of scanSegment(handle, {
          start: SEGMENT_HEADER_BYTES,
          end: last.size,
          maxPayload: options.maxRecordBytes,
          lastSeq,
          chunkBytes: options.readChunkBytes,
        })) {
          if (item.kind === 'record') {
            lastSeq = item.record.seq
            validEnd = item.record.offset + item.record.size
          } else if (item.corruption.tail) {
            tornTailBytes = item.corruption.bytes
          }
        }
      }
      if (validEnd < last.size) {
        await handle.truncate(validEnd)
        await handle.sync()
        last.size = validEnd
      }
      nextSeq = lastSeq + 1n > nextSeq ? lastSeq + 1n : nextSeq
    } finally {
      await handle.close()
    }
    if (last.size <= SEGMENT_HEADER_BYTES) {
      // holds no record: drop it and let the new active segment take its place
      await rm(last.path, { force: true })
      segments.pop()
    }
  }
  if (nextSeq < cursor.seq) nextSeq = cursor.seq

  const { path, handle: active } = await createSegmentFile(dir, nextSeq, options.fsync)
  segments.push({ base: nextSeq, path, size: SEGMENT_HEADER_BYTES })
  if (!segments.some((s) => s.base === cursor.segment)) {
    cursor = { seq: cursor.seq, segment: nextSeq, offset: SEGMENT_HEADER_BYTES }
  }
  const diskBytes = segments.reduce((sum, s) => sum + s.size, 0)
  return { segments, active, nextSeq, cursor, diskBytes, tornTailBytes, headerDamage }
}
