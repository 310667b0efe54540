import { invalid, readInteger, readObject, readString, rejectUnknownKeys } from '../options.ts'
import { frameSize } from './format.ts'

/** When an append counts as durable. */
export type FsyncPolicy = 'always' | 'never' | { readonly intervalMs: number }

export interface LogOptions {
  /** Directory owned by this log (one process per directory). */
  readonly dir: string
  /** Target size of one segment file. Default 64 MiB. */
  readonly segmentBytes?: number
  /** Disk budget for all segments; appends past it fail with SPW_ERR_LOG_FULL. Default 1 GiB. */
  readonly maxBytes?: number
  /** Largest single record payload. Default 1 MiB. */
  readonly maxRecordBytes?: number
  /** Bytes accepted but not yet written (waiting for the current write+fsync). Default 64 MiB. */
  readonly maxQueuedBytes?: number
  /** Default 'always': an append resolves after fdatasync. */
  readonly fsync?: FsyncPolicy
  /** Read window of scanners. Default 1 MiB. */
  readonly readChunkBytes?: number
  /**
   * Recently written records kept in memory, so a reader close behind the writer takes them from there
   * instead of reading them back from disk. 0 turns it off. Default 8 MiB.
   */
  readonly tailCacheBytes?: number
}

export interface ResolvedLogOptions {
  readonly dir: string
  readonly segmentBytes: number
  readonly maxBytes: number
  readonly maxRecordBytes: number
  readonly maxQueuedBytes: number
  readonly fsync: FsyncPolicy
  readonly readChunkBytes: number
  readonly tailCacheBytes: number
}

const MiB = 1024 * 1024
const KEYS = [
  'dir',
  'segmentBytes',
  'maxBytes',
  'maxRecordBytes',
  'maxQueuedBytes',
  'fsync',
  'readChunkBytes',
  'tailCacheBytes',
] as const

export const logDefaults = {
  segmentBytes: 64 * MiB,
  maxBytes: 1024 * MiB,
  maxRecordBytes: MiB,
  maxQueuedBytes: 64 * MiB,
  fsync: 'always' as FsyncPolicy,
  readChunkBytes: MiB,
  tailCacheBytes: 8 * MiB,
}

export function resolveLogOptions(input: unknown, prefix = 'log'): ResolvedLogOptions {
  const o = readObject(input, prefix)
  rejectUnknownKeys(o, prefix, KEYS)
  const maxRecordBytes = readInteger(
    o.maxRecordBytes,
    `${prefix}.maxRecordBytes`,
    logDefaults.maxRecordBytes,
    {
      min: 1,
      max: 256 * MiB,
    },
  )
  const segmentBytes = readInteger(o.segmentBytes, `${prefix}.segmentBytes`, logDefaults.segmentBytes, {
    min: 4096,
    max: 1024 * MiB,
  })
  const maxBytes = readInteger(o.maxBytes, `${prefix}.maxBytes`, logDefaults.maxBytes, { min: 4096 })
  return {
    dir: readString(o.dir, `${prefix}.dir`),
    segmentBytes,
    maxBytes,
    maxRecordBytes,
    // the queue must hold at least one frame of one maximal record, or such a record is always refused
    maxQueuedBytes: readInteger(o.maxQueuedBytes, `${prefix}.maxQueuedBytes`, logDefaults.maxQueuedBytes, {
      min: frameSize([maxRecordBytes]),
    }),
    fsync: readFsync(o.fsync, `${prefix}.fsync`),
    readChunkBytes: readInteger(o.readChunkBytes, `${prefix}.readChunkBytes`, logDefaults.readChunkBytes, {
      min: 4096,
      max: 64 * MiB,
    }),
    tailCacheBytes: readInteger(o.tailCacheBytes, `${prefix}.tailCacheBytes`, logDefaults.tailCacheBytes, {
      min: 0,
      max: 1024 * MiB,
    }),
  }
}

function readFsync(value: unknown, key: string): FsyncPolicy {
  if (value === undefined) return logDefaults.fsync
  if (value === 'always' || value === 'never') return value
  if (typeof value === 'object' && value !== null && !Array.isArray(value)) {
    const o = value as Record<string, unknown>
    rejectUnknownKeys(o, key, ['intervalMs'])
    return { intervalMs: readInteger(o.intervalMs, `${key}.intervalMs`, 10, { min: 1, max: 60_000 }) }
  }
  throw invalid(key, value, '"always", "never" or { intervalMs: number }')
}
