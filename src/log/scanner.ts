/**
 * Streams the records of one segment file through a bounded window, resynchronising past damage.
 * Used by recovery (to find the tail), by readers (to deliver) and by `spillway log inspect|dump`.
 * Memory: one window of `chunkBytes`, grown only to fit a single frame.
 */
import type { FileHandle } from 'node:fs/promises'
import { decodeFrameAt, plausibleSeq, RECORD_HEADER_BYTES, RECORD_MAGIC } from './format.ts'

/** One record, and where the frame holding it lies. */
export interface ScannedRecord {
  readonly seq: bigint
  readonly timestamp: number
  /** A view into the scanned buffer; copy it if it must outlive the next read. */
  readonly payload: Buffer
  /** File offset of the first byte of the record's frame. */
  readonly offset: number
  /** Size of the record's frame. */
  readonly size: number
  /** True for the frame's last record: the next record starts after the frame. */
  readonly last: boolean
}

export interface Corruption {
  /** File offset where damage starts. */
  readonly offset: number
  /** Bytes skipped before the next good record (or the end of the scanned range). */
  readonly bytes: number
  readonly reason: string
  /** True when nothing valid follows: a torn tail rather than damage in the middle. */
  readonly tail: boolean
}

export type ScanItem =
  | { readonly kind: 'record'; readonly record: ScannedRecord }
  | { readonly kind: 'corruption'; readonly corruption: Corruption }

export interface ScanOptions {
  readonly start: number
  /** Exclusive end: the file size, or the durable end of the active segment. */
  readonly end: number
  readonly maxPayload: number
  /** The seq of the last good record before `start` (baseSeq - 1 at a segment's start). */
  readonly lastSeq: bigint | undefined
  readonly chunkBytes?: number
}

class Window {
  #buffer: Buffer = Buffer.alloc(0)
  #start = 0
  readonly #file: FileHandle
  readonly #end: number
  readonly #chunk: number

  constructor(file: FileHandle, end: number, chunk: number) {
    this.#file = file
    this.#end = end
    this.#chunk = chunk
  }

  /** True when bytes [offset, offset+need) are already in memory. */
  has(offset: number, need: number): boolean {
    return offset >= this.#start && offset + need <= this.#start + this.#buffer.length
  }

  /** Bytes from `offset` on (at least `need` unless the range ends first), and the offset they start at. */
  async at(offset: number, need: number): Promise<Buffer> {
    const have = this.#start + this.#buffer.length
    if (offset >= this.#start && offset + need <= have) return this.#buffer.subarray(offset - this.#start)
    const size = Math.min(Math.max(need, this.#chunk), this.#end - offset)
    if (size <= 0) return Buffer.alloc(0)
    const buffer = Buffer.allocUnsafe(size)
    let read = 0
    while (read < size) {
      const { bytesRead } = await this.#file.read(buffer, read, size - read, offset + read)
      if (bytesRead === 0) break
      read += bytesRead
    }
    this.#buffer = buffer.subarray(0, read)
    this.#start = offset
    return this.#buffer
  }
}

/** One item at a time (recovery, inspection). */
export async function* scanSegment(file: FileHandle, options: ScanOptions): AsyncGenerator<ScanItem> {
  for await (const batch of scanSegmentBatches(file, options)) yield* batch
}

/**
 * The items of one window at a time: the hot path for readers, one await per window instead of one per
 * record.
 */
export async function* scanSegmentBatches(
  file: FileHandle,
  options: ScanOptions,
): AsyncGenerator<ScanItem[]> {
  const window = new Window(file, options.end, options.chunkBytes ?? 1 << 20)
  let offset = options.start
  let lastSeq = options.lastSeq
  let damage: { offset: number; reason: string } | undefined
  let pending: ScanItem[] = []

  while (offset < options.end) {
    // hand over what is decoded before touching the disk again, and in bounded slices, so a reader that
    // stops at its limit never pays for more than one window
    if (pending.length >= 1024 || (pending.length > 0 && !window.has(offset, RECORD_HEADER_BYTES))) {
      yield pending
      pending = []
    }
    const view = await window.at(offset, RECORD_HEADER_BYTES)
    let result = decodeFrameAt(view, 0, options.maxPayload)
    if (result.kind === 'short' && offset + result.need <= options.end) {
      if (pending.length > 0) {
        yield pending
        pending = []
      }
      result = decodeFrameAt(await window.at(offset, result.need), 0, options.maxPayload)
    }
    if (
      result.kind === 'frame' &&
      (damage === undefined || plausibleSeq(result.frame.seq, lastSeq, offset - damage.offset))
    ) {
      if (damage) {
        pending.push({
          kind: 'corruption',
          corruption: {
            offset: damage.offset,
            bytes: offset - damage.offset,
            reason: damage.reason,
            tail: false,
          },
        })
        damage = undefined
      }
      const { seq, timestamp, payloads, size } = result.frame
      const lastOfFrame = seq + BigInt(payloads.length - 1)
      if (lastSeq === undefined || lastOfFrame > lastSeq) {
        // a reader that starts inside a frame skips the records before its position
        payloads.forEach((payload, i) => {
          const recordSeq = seq + BigInt(i)
          if (lastSeq !== undefined && recordSeq <= lastSeq) return
          const last = i === payloads.length - 1
          pending.push({ kind: 'record', record: { seq: recordSeq, timestamp, payload, offset, size, last } })
        })
        lastSeq = lastOfFrame
      } else {
        // a well-formed frame that goes backwards can only be stale bytes; treat as damage
        damage = { offset, reason: `seq ${seq} does not follow ${lastSeq}` }
      }
      offset += size
      continue
    }
    // Damage (or a short record that runs past the end): remember where it began, then step one byte
    // and look for the next magic byte.
    damage ??= { offset, reason: result.kind === 'invalid' ? result.reason : 'record runs past the end' }
    offset = await nextMagic(window, offset + 1, options.end)
  }
  if (damage) {
    pending.push({
      kind: 'corruption',
      corruption: {
        offset: damage.offset,
        bytes: options.end - damage.offset,
        reason: damage.reason,
        tail: true,
      },
    })
  }
  if (pending.length > 0) yield pending
}

async function nextMagic(window: Window, from: number, end: number): Promise<number> {
  let offset = from
  while (offset < end) {
    const view = await window.at(offset, 1)
    const index = view.indexOf(RECORD_MAGIC)
    if (index >= 0) return offset + index
    offset += view.length
    if (view.length === 0) break
  }
  return end
}
