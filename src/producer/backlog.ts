/**
 * What the dispatcher drains: the durable log, or a bounded in-memory queue for the `memory` and
 * `kafka` ack modes. Both hand out records in order and forget them only on commit.
 */
import { EventEmitter } from 'node:events'
import { SpillwayError } from '../errors.ts'
import {
  type AppendResult,
  type LogPosition,
  type LogRecord,
  type PayloadWriter,
  payloadSizes,
  type ReadLimits,
} from '../log/log.ts'

export interface BacklogReader {
  read(limits?: ReadLimits): Promise<LogRecord[]>
  rewind(to?: LogPosition): void
  readonly position: LogPosition
  close(): Promise<void>
}

export interface Backlog {
  append(payloads: readonly Buffer[] | PayloadWriter): Promise<AppendResult>
  reader(): BacklogReader
  commit(position: LogPosition): Promise<void>
  readonly cursor: LogPosition
  on(event: 'durable', listener: () => void): unknown
  off(event: 'durable', listener: () => void): unknown
  close(): Promise<void>
}

interface Held {
  readonly seq: bigint
  readonly timestamp: number
  readonly payload: Buffer
}

/** A bounded FIFO in memory. Nothing here survives the process: the `memory` mode says so. */
export class MemoryBacklog extends EventEmitter<{ durable: [] }> implements Backlog {
  readonly maxBytes: number
  #records: Held[] = []
  #head = 0
  #bytes = 0
  #nextSeq = 0n
  #cursor = 0n
  #closed = false
  #refused = 0

  constructor(maxBytes: number) {
    super()
    this.maxBytes = maxBytes
  }

  get cursor(): LogPosition {
    return { seq: this.#cursor, segment: 0n, offset: 0 }
  }

  append(payloads: readonly Buffer[] | PayloadWriter): Promise<AppendResult> {
    if (this.#closed)
      return Promise.reject(new SpillwayError('SPW_ERR_CLOSED', 'the in-memory backlog is closed'))
    const sizes = payloadSizes(payloads)
    let bytes = 0
    for (const size of sizes) bytes += size
    if (this.#bytes + bytes > this.maxBytes) {
      this.#refused++
      return Promise.reject(
        new SpillwayError('SPW_ERR_BACKPRESSURE', `the memory budget (${this.maxBytes} bytes) is full`, {
          details: { bytes: this.#bytes, maxBytes: this.maxBytes },
        }),
      )
    }
    const firstSeq = this.#nextSeq
    const timestamp = Date.now()
    sizes.forEach((size, i) => {
      let payload: Buffer
      if (Array.isArray(payloads)) payload = payloads[i] as Buffer
      else {
        payload = Buffer.allocUnsafe(size)
        ;(payloads as PayloadWriter).write(i, payload, 0)
      }
      this.#records.push({ seq: this.#nextSeq++, timestamp, payload })
    })
    this.#bytes += bytes
    queueMicrotask(() => this.emit('durable'))
    return Promise.resolve({ firstSeq, count: sizes.length })
  }

  reader(): BacklogReader {
    let position = this.#cursor
    const read = async (limits: ReadLimits = {}): Promise<LogRecord[]> => {
      const maxBytes = limits.maxBytes ?? 1 << 20
      const maxRecords = limits.maxRecords ?? 10_000
      const out: LogRecord[] = []
      let bytes = 0
      const firstSeq = this.#records[this.#head]?.seq ?? this.#nextSeq
      if (position < firstSeq) position = firstSeq
      let index = this.#head + Number(position - firstSeq)
      while (index < this.#records.length && out.length < maxRecords && bytes < maxBytes) {
        const r = this.#records[index] as Held
        out.push({
          seq: r.seq,
          timestamp: r.timestamp,
          payload: r.payload,
          next: { seq: r.seq + 1n, segment: 0n, offset: 0 },
        })
        bytes += r.payload.length
        index++
      }
      const last = out.at(-1)
      if (last) position = last.next.seq
      return out
    }
    return {
      read,
      rewind: (to?: LogPosition) => {
        position = to?.seq ?? this.#cursor
      },
      get position() {
        return { seq: position, segment: 0n, offset: 0 }
      },
      close: async () => {},
    }
  }

  async commit(position: LogPosition): Promise<void> {
    while (this.#head < this.#records.length && (this.#records[this.#head] as Held).seq < position.seq) {
      this.#bytes -= (this.#records[this.#head] as Held).payload.length
      this.#head++
    }
    if (position.seq > this.#cursor) this.#cursor = position.seq
    // compact now and then so the array does not grow without bound
    if (this.#head > 1024 && this.#head * 2 > this.#records.length) {
      this.#records = this.#records.slice(this.#head)
      this.#head = 0
    }
  }

  stats(): { bytes: number; records: number; refused: number } {
    return { bytes: this.#bytes, records: this.#records.length - this.#head, refused: this.#refused }
  }

  async close(): Promise<void> {
    this.#closed = true
  }
}
