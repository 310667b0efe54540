/**
 * Read-only views of a log directory for operators (`spillway log inspect|dump`). They take no lock and
 * change nothing, so they are safe beside a running process; they read every segment, so they cost time
 * proportional to the backlog (the running log itself never does that).
 */
import { open, readdir, stat } from 'node:fs/promises'
import { join } from 'node:path'
import { type CheckpointRead, readCheckpoint } from './checkpoint.ts'
import { decodeSegmentHeader, parseSegmentFileName, SEGMENT_HEADER_BYTES } from './format.ts'
import { logDefaults } from './options.ts'
import { type Corruption, scanSegment } from './scanner.ts'

export interface SegmentSummary {
  readonly file: string
  readonly baseSeq: bigint
  readonly bytes: number
  readonly records: number
  readonly headerOk: boolean
  readonly firstSeq: bigint | undefined
  readonly lastSeq: bigint | undefined
  readonly corruption: readonly Corruption[]
}

export interface InspectReport {
  readonly dir: string
  readonly checkpoint: CheckpointRead
  readonly segments: readonly SegmentSummary[]
  readonly totalBytes: number
  readonly totalRecords: number
  readonly pendingRecords: number
  readonly oldestPendingTimestamp: number | undefined
  readonly corruptRegions: number
  readonly corruptBytes: number
  readonly lockedBy: number | undefined
}

export interface DumpedRecord {
  readonly seq: bigint
  readonly timestamp: number
  readonly segment: string
  readonly offset: number
  readonly payload: Buffer
  readonly delivered: boolean
}

async function listSegments(dir: string): Promise<{ file: string; base: bigint; bytes: number }[]> {
  const names = (await readdir(dir)).filter((n) => parseSegmentFileName(n) !== undefined).sort()
  const out = []
  for (const file of names) {
    out.push({ file, base: parseSegmentFileName(file) as bigint, bytes: (await stat(join(dir, file))).size })
  }
  return out
}

/** Walks every record of every segment in order. */
export async function* walkLog(
  dir: string,
  options: { maxRecordBytes?: number; onSegment?: (file: string, index: number, total: number) => void } = {},
): AsyncGenerator<
  | { kind: 'segment-start'; file: string; base: bigint; bytes: number; headerOk: boolean }
  | { kind: 'record'; file: string; seq: bigint; timestamp: number; offset: number; payload: Buffer }
  | { kind: 'corruption'; file: string; corruption: Corruption }
> {
  const segments = await listSegments(dir)
  for (const [index, segment] of segments.entries()) {
    options.onSegment?.(segment.file, index, segments.length)
    const handle = await open(join(dir, segment.file), 'r')
    try {
      const header = Buffer.alloc(SEGMENT_HEADER_BYTES)
      await handle.read(header, 0, SEGMENT_HEADER_BYTES, 0)
      yield {
        kind: 'segment-start',
        file: segment.file,
        base: segment.base,
        bytes: segment.bytes,
        headerOk: decodeSegmentHeader(header) === segment.base,
      }
      for await (const item of scanSegment(handle, {
        start: SEGMENT_HEADER_BYTES,
        end: segment.bytes,
        maxPayload: options.maxRecordBytes ?? logDefaults.maxRecordBytes,
        lastSeq: segment.base - 1n,
      })) {
        if (item.kind === 'record') {
          const { seq, timestamp, offset, payload } = item.record
          yield { kind: 'record', file: segment.file, seq, timestamp, offset, payload }
        } else {
          yield { kind: 'corruption', file: segment.file, corruption: item.corruption }
        }
      }
    } finally {
      await handle.close()
    }
  }
}

async function lockOwner(dir: string): Promise<number | undefined> {
  try {
    const { readFile } = await import('node:fs/promises')
    const owner = JSON.parse(await readFile(join(dir, 'LOCK'), 'utf8')) as { pid?: number }
    return typeof owner.pid === 'number' ? owner.pid : undefined
  } catch {
    return undefined
  }
}

export async function inspectLog(
  dir: string,
  options: { maxRecordBytes?: number; onSegment?: (file: string, index: number, total: number) => void } = {},
): Promise<InspectReport> {
  const checkpoint = await readCheckpoint(dir)
  const cursor = checkpoint.kind === 'ok' ? checkpoint.position.seq : -1n
  const segments: SegmentSummary[] = []
  let current: { -readonly [K in keyof SegmentSummary]: SegmentSummary[K] } | undefined
  let corruption: Corruption[] = []
  let pendingRecords = 0
  let oldest: number | undefined
  for await (const item of walkLog(dir, options)) {
    if (item.kind === 'segment-start') {
      corruption = []
      current = {
        file: item.file,
        baseSeq: item.base,
        bytes: item.bytes,
        records: 0,
        headerOk: item.headerOk,
        firstSeq: undefined,
        lastSeq: undefined,
        corruption,
      }
      segments.push(current)
    } else if (item.kind === 'record' && current) {
      current.records++
      current.firstSeq ??= item.seq
      current.lastSeq = item.seq
      if (item.seq >= cursor) {
        pendingRecords++
        oldest ??= item.timestamp
      }
    } else if (item.kind === 'corruption') {
      corruption.push(item.corruption)
    }
  }
  const all = segments.flatMap((s) => s.corruption)
  return {
    dir,
    checkpoint,
    segments,
    totalBytes: segments.reduce((sum, s) => sum + s.bytes, 0),
    totalRecords: segments.reduce((sum, s) => sum + s.records, 0),
    pendingRecords,
    oldestPendingTimestamp: oldest,
    corruptRegions: all.length + segments.filter((s) => !s.headerOk).length,
    corruptBytes: all.reduce((sum, c) => sum + c.bytes, 0),
    lockedBy: await lockOwner(dir),
  }
}

/** Records in order, marking which the checkpoint says are delivered. */
export async function* dumpLog(
  dir: string,
  options: { includeDelivered?: boolean } = {},
): AsyncGenerator<DumpedRecord> {
  const checkpoint = await readCheckpoint(dir)
  const cursor = checkpoint.kind === 'ok' ? checkpoint.position.seq : -1n
  for await (const item of walkLog(dir)) {
    if (item.kind !== 'record') continue
    const delivered = item.seq < cursor
    if (delivered && !options.includeDelivered) continue
    yield {
      seq: item.seq,
      timestamp: item.timestamp,
      segment: item.file,
      offset: item.offset,
      payload: item.payload,
      delivered,
    }
  }
}
