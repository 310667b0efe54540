/**
 * The delivered-cursor checkpoint: "every record before `seq` has been delivered; the record at `seq`
 * starts at `offset` in segment `segment`".
 *
 *   checkpoint = "SPWCKP01" seq:u64be segment:u64be offset:u64be crc:u32be   (36 bytes, CRC32C of the first 32)
 *
 * Written atomically: temp file, fsync, rename over the old one, fsync of the directory. A crash at any
 * step leaves either the old checkpoint or the new one, never a mix; a damaged one is detected by its
 * CRC and the log then replays from its oldest segment (duplicates, never loss).
 */

import { open, readFile, rename, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { crc32c } from '@node-rs/crc32'

const MAGIC = Buffer.from('SPWCKP01', 'ascii')
export const CHECKPOINT_FILE = 'checkpoint'
const TEMP_FILE = 'checkpoint.tmp'

export interface LogPosition {
  readonly seq: bigint
  readonly segment: bigint
  readonly offset: number
}

export function encodeCheckpoint(position: LogPosition): Buffer {
  const out = Buffer.alloc(36)
  MAGIC.copy(out, 0)
  out.writeBigUInt64BE(position.seq, 8)
  out.writeBigUInt64BE(position.segment, 16)
  out.writeBigUInt64BE(BigInt(position.offset), 24)
  out.writeUInt32BE(crc32c(out.subarray(0, 32)), 32)
  return out
}

export type CheckpointRead =
  | { readonly kind: 'missing' }
  | { readonly kind: 'ok'; readonly position: LogPosition }
  | { readonly kind: 'damaged'; readonly reason: string }

export function decodeCheckpoint(bytes: Buffer): CheckpointRead {
  if (bytes.length !== 36)
    return { kind: 'damaged', reason: `checkpoint is ${bytes.length} bytes, expected 36` }
  if (!bytes.subarray(0, 8).equals(MAGIC)) return { kind: 'damaged', reason: 'bad checkpoint magic' }
  if (crc32c(bytes.subarray(0, 32)) !== bytes.readUInt32BE(32))
    return { kind: 'damaged', reason: 'checkpoint crc mismatch' }
  return {
    kind: 'ok',
    position: {
      seq: bytes.readBigUInt64BE(8),
      segment: bytes.readBigUInt64BE(16),
      offset: Number(bytes.readBigUInt64BE(24)),
    },
  }
}

export async function readCheckpoint(dir: string): Promise<CheckpointRead> {
  let bytes: Buffer
  try {
    bytes = await readFile(join(dir, CHECKPOINT_FILE))
  } catch (error) {
    if ((error as NodeJS.ErrnoException).code === 'ENOENT') return { kind: 'missing' }
    throw error
  }
  return decodeCheckpoint(bytes)
}

export async function fsyncDirectory(dir: string): Promise<void> {
  const handle = await open(dir, 'r')
  try {
    await handle.sync()
  } finally {
    await handle.close()
  }
}

/**
 * Replaces the checkpoint: its bytes are durable before the rename, so a crash leaves the old checkpoint
 * or the new one, never a torn one. The rename itself becomes durable with the directory's next fsync
 * (`syncDirectory`, or the one the log makes before it removes a delivered segment). Until then a crash
 * may bring back the previous checkpoint, which only means replaying records already delivered; and
 * the previous checkpoint never points into a removed segment.
 */
export async function writeCheckpoint(
  dir: string,
  position: LogPosition,
  syncDirectory = true,
): Promise<void> {
  const temp = join(dir, TEMP_FILE)
  const handle = await open(temp, 'w')
  try {
    await handle.writeFile(encodeCheckpoint(position))
    await handle.sync()
  } finally {
    await handle.close()
  }
  await rename(temp, join(dir, CHECKPOINT_FILE))
  if (syncDirectory) await fsyncDirectory(dir)
}

/** A temp file left by a crash mid-write is never the truth: the renamed file is. */
export async function removeTempCheckpoint(dir: string): Promise<void> {
  await rm(join(dir, TEMP_FILE), { force: true })
}
