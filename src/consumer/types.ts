/** What the consumer hands to handlers and reports: records, error policies, status events and stats. */
import type { ErrorCode } from '../errors.ts'

export const ID_HEADER = 'spillway-id'

export interface ConsumedRecord<T = Buffer | null> {
  readonly topic: string
  readonly partition: number
  readonly offset: bigint
  /** ms since the epoch, as Kafka stored it. */
  readonly timestamp: number
  readonly key: Buffer | null
  /** The value, through `decode` when one is set. */
  readonly value: T
  /** Headers in order; a name may appear more than once. */
  readonly headers: readonly (readonly [string, Buffer])[]
  /**
   * The event's id: its `spillway-id` header (the producer's id), or for a record without one a
   * deterministic id from topic, partition and offset.
   */
  readonly id: string
}

export interface HandlerContext {
  /** Aborted when the handler's time (handlerTimeoutMs) is up or its partition was revoked. */
  readonly signal: AbortSignal
  /** 1 on the first try, then 2, 3… for retries in place. */
  readonly attempt: number
  /**
   * Sends some of this call's records to their dead-letter topics now, with `error` as the reason, and
   * resolves once Kafka has them (a sink's rows the database refused). The call then finishes normally
   * and those records count as done. Rejects when the dead-letter topic cannot be written.
   */
  readonly deadLetter: (records: readonly ConsumedRecord<unknown>[], error: unknown) => Promise<void>
}

/** Takes one record. */
export type RecordHandler<T> = (record: ConsumedRecord<T>, context: HandlerContext) => unknown
/** With `batch: true`: takes one key's buffered records, in offset order. */
export type BatchHandler<T> = (records: readonly ConsumedRecord<T>[], context: HandlerContext) => unknown
export type Handler<T> = RecordHandler<T> | BatchHandler<T>

/**
 * What to do with a record whose handler failed or timed out:
 *   retry        in place with back-off, blocking only its key, `retries` times, then `afterRetries`;
 *   skip         count it, report it and go on (it is committed as done);
 *   dead-letter  write it to its dead-letter topic (with the error in headers), then go on.
 */
export type ErrorAction = 'retry' | 'skip' | 'dead-letter'

export interface ErrorContext<T> {
  readonly records: readonly ConsumedRecord<T>[]
  readonly error: unknown
  readonly code: ErrorCode
  readonly attempt: number
}

export type ConsumerState = 'created' | 'starting' | 'running' | 'closing' | 'closed'

/** Where a partition stands, for lag reports and the status page. */
export type PartitionState = 'starting' | 'fetching' | 'paused' | 'blocked' | 'retrying' | 'delayed' | 'idle'

export interface PartitionStats {
  readonly topic: string
  readonly partition: number
  readonly state: PartitionState
  /** Everything before it is done (and committed, or about to be). */
  readonly watermark: bigint
  readonly highWatermark: bigint
  /** Records between the watermark and the log end. */
  readonly lagRecords: bigint
  /** Now minus the timestamp of the oldest record not yet done, s; 0 when nothing is waiting. */
  readonly lagSeconds: number
  readonly bufferedBytes: number
  readonly bufferedRecords: number
  readonly inFlight: number
  readonly fetchBytes: number
  /** ms since the partition last completed a record while it had records waiting; 0 when not stalled. */
  readonly stalledMs: number
}

export interface ConsumerStats {
  readonly state: ConsumerState
  readonly groupId: string | undefined
  readonly memberId: string | undefined
  /** The member epoch (KIP-848), or the generation (classic protocol). */
  readonly memberEpoch: number
  /** The group protocol in use: 'consumer' (KIP-848) or 'classic'; null without a group. */
  readonly groupProtocol: 'consumer' | 'classic' | null
  readonly handled: number
  readonly failed: number
  readonly retried: number
  readonly skipped: number
  readonly deadLettered: number
  /** Records moved on to a retry tier (retry tiers only). */
  readonly tiered: number
  /** Records moved to a tier unhandled, behind their key's earlier records there (retry.blockKey). */
  readonly blockedBehind: number
  /** Records held in retry tiers until due, now. */
  readonly delayed: number
  /** Forwarding transactions begun, and how many of them were aborted (retry tiers only). */
  readonly transactions: number
  readonly transactionsAborted: number
  readonly duplicates: number
  readonly coalesced: number
  readonly alreadyDone: number
  readonly handlerTimeouts: number
  readonly handlerCalls: number
  readonly fetches: number
  readonly fetchedRecords: number
  /** Fetch answers that brought records for a partition (one per partition per answer). */
  readonly deliveries: number
  readonly fetchedBytes: number
  readonly commits: number
  readonly commitsRefused: number
  readonly rebalances: number
  readonly abandoned: number
  readonly dropped: number
  readonly running: number
  readonly bufferedBytes: number
  readonly assigned: number
  readonly stalledPartitions: number
  readonly lagRecords: bigint
  readonly partitions: readonly PartitionStats[]
  /** Per topic: records seen, their total bytes and the largest one. */
  readonly recordSizes: Readonly<
    Record<string, { readonly count: number; readonly bytes: number; readonly max: number }>
  >
}

export type ConsumerStatus =
  | {
      readonly type: 'lifecycle'
      readonly from: ConsumerState
      readonly to: ConsumerState
      readonly reason: string
    }
  | {
      readonly type: 'assigned'
      readonly partitions: readonly { topic: string; partition: number }[]
      readonly epoch: number
    }
  | {
      readonly type: 'revoked'
      readonly partitions: readonly { topic: string; partition: number }[]
      /** Handlers still running at the deadline: their records are not committed. */
      readonly abandoned: number
      readonly lost: boolean
    }
  | {
      readonly type: 'connection'
      readonly ok: boolean
      readonly code?: ErrorCode
      readonly message?: string
    }
  | {
      readonly type: 'record-error'
      readonly code: ErrorCode
      readonly message: string
      readonly topic: string
      readonly partition: number
      readonly offset: bigint
      readonly id: string
      readonly action: ErrorAction
      readonly attempt: number
    }
  | { readonly type: 'stalled'; readonly topic: string; readonly partition: number; readonly forMs: number }
  | { readonly type: 'unstalled'; readonly topic: string; readonly partition: number }
  | {
      readonly type: 'large-records'
      readonly topic: string
      readonly averageBytes: number
      readonly maxBytes: number
      readonly limit: number
    }
  | {
      readonly type: 'commit-refused'
      readonly error: string
      readonly partitions: readonly { topic: string; partition: number }[]
    }
