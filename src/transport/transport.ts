/**
 * The types every part of transport/ shares: how to reach a cluster, the records going out and their
 * outcomes. Only adapters in this folder import a Kafka client; everything above talks to a Cluster
 * (cluster.ts) and its facets.
 */
import type { SaslOptions, TlsOptions } from './connection.ts'

export type { SaslOptions, TlsOptions }

export interface KafkaConnectionOptions {
  readonly brokers: readonly string[]
  readonly clientId: string
  readonly tls?: TlsOptions
  readonly sasl?: SaslOptions
  /** Per-request timeout inside the client, ms. Default 5000. */
  readonly requestTimeoutMs?: number
  /** Client-internal retries of a request (a produce keeps its sequence numbers). Default 2. */
  readonly clientRetries?: number
  /** Where the Kafka client runs (see TransportThread). Default 'auto'. */
  readonly thread?: TransportThread
  /** How long the cluster's topic metadata (partition counts, leaders) is trusted. Default 30 000. */
  readonly metadataMaxAgeMs?: number
}

/**
 * Where the Kafka client runs. 'worker': a worker thread of its own, so building requests never holds up
 * the caller's event loop. 'main': on the caller's event loop. 'auto': 'worker' when the machine has at
 * least AUTO_WORKER_CORES cores; with fewer, the extra thread competes for the same cores and the cost
 * of handing batches across outweighs what it takes off the event loop (docs/architecture.md).
 */
export type TransportThread = 'auto' | 'worker' | 'main'

export const AUTO_WORKER_CORES = 4

/**
 * One record on its way to Kafka. `body` is Kafka's encoding of the record from its key on (key, value,
 * headers; see encodeRecordBody in record-batch.ts): the part that does not depend on the batch.
 */
export interface OutboundRecord {
  readonly topic: string
  readonly partition: number
  readonly timestamp: number
  readonly body: Buffer
}

/**
 * retriable: try again later (broker down, leader moving, not enough replicas, timeout).
 * poison:    Kafka will never take this record (too large, invalid topic, not authorized).
 * fatal:     the client's producer state is broken (fenced, unknown producer id): rebuild it once.
 */
export type ErrorClass = 'retriable' | 'poison' | 'fatal'

/** The outcome of one record; `Late` is how a request cut short by its deadline reports its real one. */
export type OutcomeOf<Late> =
  | { readonly kind: 'ok' }
  | {
      readonly kind: 'error'
      readonly errorClass: ErrorClass
      readonly reason: string
      readonly ambiguous: boolean
      /**
       * Set when the deadline cut the call short: the client's request is still under way, and this
       * settles with its real outcome. Waiting for it before sending again avoids a duplicate when the
       * slow request did succeed.
       */
      readonly late?: Late
    }

export type RecordOutcome = OutcomeOf<Promise<RecordOutcome>>

/** A failure inside transport/; what leaves it is a SpillwayError (classify.ts, toSpillwayError). */
export class TransportError extends Error {
  readonly errorClass: ErrorClass
  readonly ambiguous: boolean
  constructor(message: string, errorClass: ErrorClass, ambiguous: boolean, cause?: unknown) {
    super(message, cause === undefined ? undefined : { cause })
    this.errorClass = errorClass
    this.ambiguous = ambiguous
  }
}
