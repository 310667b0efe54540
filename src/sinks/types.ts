/** What every sink's writer offers the sink runtime (sink.ts), and what they exchange. */
import type { ConsumedRecord } from '../consumer/types.ts'
import type { SpillwayError } from '../errors.ts'
import type { TimestampText } from './mapping.ts'
import type { Cell } from './tsv.ts'

export interface PartitionRef {
  readonly topic: string
  readonly partition: number
}

/** One record as its table's column values, in the mapping's column order. */
export interface Row {
  readonly record: ConsumedRecord<Buffer | null>
  readonly values: readonly Cell[]
}

/** A record the database (or the mapping) would not take, and why. */
export interface Refusal {
  readonly record: ConsumedRecord<Buffer | null>
  readonly error: SpillwayError
}

/** Consecutive records of one partition; after it, the partition's next offset is `nextOffset`. */
export interface Batch {
  /** Whose offsets these are: the sink's name (its group by default). */
  readonly owner: string
  readonly topic: string
  readonly partition: number
  readonly nextOffset: bigint
  readonly rows: readonly Row[]
}

export interface WriteResult {
  /** Rows the table did not have before (copies of an id already there are not counted). */
  readonly inserted: number
  readonly refused: number
}

export interface SinkWriter {
  /** 'postgres' or 'clickhouse', for logs and the status page. */
  readonly kind: string
  /** The table written, for logs and the status page. */
  readonly target: string
  /** How the database wants `$timestamp` as text. */
  readonly timestamps: TimestampText
  /** Connects and makes sure the offsets table (and, when asked, the target table) exists. */
  open(): Promise<void>
  /** The next offset per partition, as the database has it; partitions never written are left out. */
  loadOffsets(
    owner: string,
    partitions: readonly PartitionRef[],
  ): Promise<readonly { topic: string; partition: number; offset: bigint }[]>
  /**
   * Writes the rows and advances the partition's offset, all or nothing. Rows the database refuses are
   * handed to `refused` (which dead-letters them) before anything is committed, together with `alsoRefused`
   * (records the mapping could not read). Throws SPW_ERR_SINK_UNAVAILABLE when the batch should be tried
   * again later.
   */
  write(
    batch: Batch,
    alsoRefused: readonly Refusal[],
    refused: (refusals: readonly Refusal[]) => Promise<void>,
  ): Promise<WriteResult>
  close(): Promise<void>
}
