/**
 * What crosses between the process's event loop and the transport's worker thread.
 *
 * A batch of outbound records travels as one transferable buffer (moved, not copied, by postMessage)
 * plus a table of the topic names it uses:
 *
 *   record = topic u16 (index into names) partition i32be timestamp f64be body-length u32be body
 *
 * Outcomes travel back as the distinct outcomes of the call plus, per record, the index of its outcome;
 * a request cut short by its deadline names a `late` ticket whose real outcome follows in its own message.
 */
import { SpillwayError } from '../errors.ts'
import {
  type ErrorClass,
  type OutboundRecord,
  type OutcomeOf,
  type RecordOutcome,
  TransportError,
} from './transport.ts'

export interface PackedRecords {
  readonly buffer: ArrayBuffer
  readonly names: readonly string[]
  readonly count: number
}

export function packRecords(records: readonly OutboundRecord[]): PackedRecords {
  const names: string[] = []
  const index = new Map<string, number>()
  let size = 0
  for (const r of records) size += 18 + r.body.length
  const buffer = new ArrayBuffer(size)
  const out = Buffer.from(buffer)
  let o = 0
  for (const r of records) {
    let topic = index.get(r.topic)
    if (topic === undefined) {
      topic = names.length
      if (topic > 0xffff) throw new RangeError('more than 65536 distinct topics in one batch')
      names.push(r.topic)
      index.set(r.topic, topic)
    }
    out.writeUInt16BE(topic, o)
    out.writeInt32BE(r.partition, o + 2)
    out.writeDoubleBE(r.timestamp, o + 6)
    out.writeUInt32BE(r.body.length, o + 14)
    o += 18 + r.body.copy(out, o + 18)
  }
  return { buffer, names, count: records.length }
}

/** The records of a packed batch; their bodies are views of the one buffer. */
export function unpackRecords(packed: PackedRecords): OutboundRecord[] {
  const bytes = Buffer.from(packed.buffer)
  const records: OutboundRecord[] = new Array(packed.count)
  let o = 0
  for (let r = 0; r < packed.count; r++) {
    if (o + 18 > bytes.length) throw new RangeError(`packed record #${r} runs past the end`)
    const topic = packed.names[bytes.readUInt16BE(o)]
    if (topic === undefined) throw new RangeError(`packed record #${r} names a topic the table lacks`)
    const partition = bytes.readInt32BE(o + 2)
    const timestamp = bytes.readDoubleBE(o + 6)
    const length = bytes.readUInt32BE(o + 14)
    o += 18
    if (o + length > bytes.length) throw new RangeError(`packed record #${r} runs past the end`)
    records[r] = { topic, partition, timestamp, body: bytes.subarray(o, o + length) }
    o += length
  }
  if (o !== bytes.length) throw new RangeError(`packed records end at byte ${o} of ${bytes.length}`)
  return records
}

/** An outcome as it crosses the thread: a late outcome is the number of the ticket it will follow under. */
export type WireOutcome = OutcomeOf<number>

export interface WireOutcomes {
  readonly distinct: readonly WireOutcome[]
  /** Per record, the index of its outcome in `distinct`. */
  readonly slots: readonly number[]
}

/** Folds per-record outcomes (usually one per topic) into their distinct values; `ticket` names a late one. */
export function packOutcomes(
  outcomes: readonly RecordOutcome[],
  ticket: (late: Promise<RecordOutcome>) => number,
): WireOutcomes {
  const distinct: WireOutcome[] = []
  const seen = new Map<RecordOutcome, number>()
  const slots = outcomes.map((outcome) => {
    let slot = seen.get(outcome)
    if (slot === undefined) {
      slot = distinct.length
      seen.set(outcome, slot)
      distinct.push(toWire(outcome, ticket))
    }
    return slot
  })
  return { distinct, slots }
}

export function toWire(o: RecordOutcome, ticket?: (late: Promise<RecordOutcome>) => number): WireOutcome {
  if (o.kind === 'ok') return { kind: 'ok' }
  const wire = { kind: 'error', errorClass: o.errorClass, reason: o.reason, ambiguous: o.ambiguous } as const
  return o.late && ticket ? { ...wire, late: ticket(o.late) } : wire
}

export function unpackOutcomes(
  wire: WireOutcomes,
  late: (ticket: number) => Promise<RecordOutcome>,
): RecordOutcome[] {
  const distinct = wire.distinct.map((o) => fromWire(o, late))
  return wire.slots.map((slot) => distinct[slot] as RecordOutcome)
}

export function fromWire(o: WireOutcome, late?: (ticket: number) => Promise<RecordOutcome>): RecordOutcome {
  if (o.kind === 'ok') return { kind: 'ok' }
  const { late: ticket, ...rest } = o
  return ticket !== undefined && late ? { ...rest, late: late(ticket) } : rest
}

export interface WireError {
  readonly message: string
  readonly errorClass?: ErrorClass
  readonly ambiguous?: boolean
  readonly code?: string
}

export function errorToWire(error: unknown): WireError {
  if (error instanceof TransportError)
    return { message: error.message, errorClass: error.errorClass, ambiguous: error.ambiguous }
  if (error instanceof SpillwayError) return { message: error.message, code: error.code }
  return { message: error instanceof Error ? error.message : String(error) }
}

export function errorFromWire(wire: WireError): Error {
  if (wire.errorClass) return new TransportError(wire.message, wire.errorClass, wire.ambiguous ?? false)
  if (wire.code) return new SpillwayError(wire.code as SpillwayError['code'], wire.message)
  return new Error(wire.message)
}
