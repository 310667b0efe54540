/**
 * The table of a cluster's operations: every method of every facet (cluster.ts), with how its
 * arguments and result cross to the transport's worker thread and back. The worker transport builds its
 * facets from this table and the worker answers from it, so a new operation is one entry here (the type
 * below refuses a facet method without one).
 *
 * Most values cross as they are (structured clone keeps bigints, arrays and plain objects). `send` has a
 * codec of its own: its records travel as one transferred buffer and its outcomes as distinct values plus
 * a slot per record, with `late` tickets for requests its deadline cut short (wire.ts).
 */
import type { Facets, FetchedPartition, FetchRequest } from './cluster.ts'
import type { OutboundRecord, RecordOutcome } from './transport.ts'
import {
  type PackedRecords,
  packOutcomes,
  packRecords,
  unpackOutcomes,
  unpackRecords,
  type WireOutcomes,
} from './wire.ts'

/** Names a late outcome with a ticket (worker side), or finds the promise a ticket stands for (main side). */
export interface LateTickets {
  ticket(late: Promise<RecordOutcome>): number
  late(ticket: number): Promise<RecordOutcome>
}

export interface Codec<Args extends unknown[], Result> {
  readonly args?: {
    pack(args: Args): { readonly value: unknown; readonly transfer: ArrayBuffer[] }
    unpack(value: unknown): Args
  }
  readonly result?: {
    pack(result: Result, tickets: LateTickets): unknown
    unpack(value: unknown, tickets: LateTickets): Result
  }
}

type MethodNames<F> = {
  [K in keyof F]: F[K] extends (...args: never[]) => Promise<unknown> ? K : never
}[keyof F]

type CodecOf<M> = M extends (...args: infer A) => Promise<infer R> ? Codec<A, R> : never

export type OperationTable = {
  readonly [F in keyof Facets]: { readonly [M in MethodNames<Facets[F]>]: CodecOf<Facets[F][M]> }
}

/** Crosses as it is. */
const AS_IS = {} as const

const send: Codec<[records: readonly OutboundRecord[], deadlineMs: number], RecordOutcome[]> = {
  args: {
    pack([records, deadlineMs]) {
      const packed = packRecords(records)
      return { value: { packed, deadlineMs }, transfer: [packed.buffer] }
    },
    unpack(value) {
      const { packed, deadlineMs } = value as { packed: PackedRecords; deadlineMs: number }
      return [unpackRecords(packed), deadlineMs]
    },
  },
  result: {
    pack: (outcomes, tickets) => packOutcomes(outcomes, (late) => tickets.ticket(late)),
    unpack: (value, tickets) => unpackOutcomes(value as WireOutcomes, (ticket) => tickets.late(ticket)),
  },
}

/** Buffers arrive from the worker as plain Uint8Arrays (structured clone); views make them Buffers again. */
const asBuffer = (bytes: Uint8Array | null): Buffer | null =>
  bytes === null ? null : Buffer.from(bytes.buffer, bytes.byteOffset, bytes.byteLength)

const fetch: Codec<[request: FetchRequest, deadlineMs: number], FetchedPartition[]> = {
  result: {
    pack: (partitions) => partitions,
    unpack: (value) =>
      (value as FetchedPartition[]).map((p) => ({
        ...p,
        records: p.records.map((r) => ({
          ...r,
          key: asBuffer(r.key),
          value: asBuffer(r.value),
          headers: r.headers.map(([k, v]) => [k, asBuffer(v) as Buffer] as const),
        })),
      })),
  },
}

export const OPERATIONS: OperationTable = {
  producer: {
    send,
    rebuild: AS_IS,
  },
  admin: {
    partitions: AS_IS,
    metadata: AS_IS,
    describeProducers: AS_IS,
    listOffsets: AS_IS,
    describeConfigs: AS_IS,
    describeLogDirs: AS_IS,
    listGroups: AS_IS,
    describeGroups: AS_IS,
    committedOffsets: AS_IS,
    createTopics: AS_IS,
    describeTransactions: AS_IS,
  },
  group: {
    heartbeat: AS_IS,
    classicJoin: AS_IS,
    classicSync: AS_IS,
    classicHeartbeat: AS_IS,
    classicLeave: AS_IS,
    commit: AS_IS,
    fetch,
    endSession: AS_IS,
  },
}

export type FacetName = keyof OperationTable

/** One request to the worker: which facet, which operation, and its packed arguments. */
export interface OperationRequest {
  readonly id: number
  readonly facet: FacetName
  readonly op: string
  readonly args: unknown
}

/** The codec of an operation named at run time (a request from the other thread). */
export function codecOf(facet: FacetName, op: string): Codec<unknown[], unknown> {
  const codec = (OPERATIONS[facet] as Record<string, Codec<unknown[], unknown>>)[op]
  if (!codec) throw new RangeError(`no operation ${facet}.${op}`)
  return codec
}
