/**
 * The log's file operations: how segments are opened for appending (O_DSYNC under fsync "always"),
 * creating a segment file durably, writes that finish what writev left short, and whether the log's
 * directory lives in memory (tmpfs), where appends are written on the caller's thread.
 */
import { constants, writevSync } from 'node:fs'
import { type FileHandle, open, rm, statfs } from 'node:fs/promises'
import { join } from 'node:path'
import { fsyncDirectory } from './checkpoint.ts'
import { encodeSegmentHeader, SEGMENT_HEADER_BYTES, segmentFileName } from './format.ts'
import type { LogOptions } from './options.ts'

/**
 * How a segment is opened for appending. Under fsync 'always' it is O_DSYNC, so one write is also the
 * sync: one trip through the thread pool per group commit instead of two (write, then fdatasync).
 */
export function segmentWriteFlags(fsync: LogOptions['fsync']): number {
  const { O_WRONLY, O_CREAT, O_TRUNC, O_DSYNC } = constants
  return O_WRONLY | O_CREAT | O_TRUNC | (fsync === 'always' ? O_DSYNC : 0)
}

/**
 * Creates the segment file for `base` with its header, synced, and its directory entry synced; a
 * failure leaves no file behind. Returns the handle to append through.
 */
export async function createSegmentFile(
  dir: string,
  base: bigint,
  fsync: LogOptions['fsync'],
): Promise<{ path: string; handle: FileHandle }> {
  const path = join(dir, segmentFileName(base))
  const handle = await open(path, segmentWriteFlags(fsync))
  try {
    await writeFully(handle, [encodeSegmentHeader(base)], SEGMENT_HEADER_BYTES, 0, false)
    await handle.sync()
    await fsyncDirectory(dir)
  } catch (error) {
    await handle.close().catch(() => undefined)
    await rm(path, { force: true }).catch(() => undefined)
    throw error
  }
  return { path, handle }
}

/** Filesystems whose files live in memory (statfs f_type): tmpfs and ramfs. */
const MEMORY_FILESYSTEMS = new Set([0x01021994, 0x858458f6])

export async function isMemoryBacked(dir: string): Promise<boolean> {
  if (process.platform !== 'linux') return false
  try {
    return MEMORY_FILESYSTEMS.has((await statfs(dir)).type)
  } catch {
    return false
  }
}

/**
 * writev may write fewer bytes than asked (a filesystem filling up does exactly that) without an error.
 * Keep writing the rest: either it all lands, or the next call fails with the real errno (ENOSPC).
 * `inline` writes on this thread (see LogStats.inlineWrites).
 */
export async function writeFully(
  file: FileHandle,
  chunks: Buffer[],
  total: number,
  position: number,
  inline: boolean,
): Promise<void> {
  let written = 0
  let pending = chunks
  while (written < total) {
    const bytesWritten = inline
      ? writevSync(file.fd, pending, position + written)
      : (await file.writev(pending, position + written)).bytesWritten
    if (bytesWritten === 0) throw Object.assign(new Error('write made no progress'), { code: 'ENOSPC' })
    written += bytesWritten
    if (written < total) {
      let skip = bytesWritten
      const rest: Buffer[] = []
      for (const chunk of pending) {
        if (skip >= chunk.length) {
          skip -= chunk.length
          continue
        }
        rest.push(skip > 0 ? chunk.subarray(skip) : chunk)
        skip = 0
      }
      pending = rest
    }
  }
}
