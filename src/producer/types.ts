/** The producer's public types: what goes into send(), what comes out, its status and its stats. */
import type { BreakerState } from '../breaker/breaker.ts'
import type { SpillwayError } from '../errors.ts'
import type { LogState, LogStats } from '../log/log.ts'
import type { DeadLetterCount } from './dead-letters.ts'
import type { AckMode } from './options.ts'
import type { WaitingStats } from './waiting.ts'

/** One event handed to send(). */
export interface EventInput {
  /** Bytes, a string, or anything JSON-serialisable (sent as JSON). */
  readonly value: Buffer | Uint8Array | string | number | boolean | object | null
  readonly key?: string | Buffer
  /** By name, or as a list of [name, value] pairs (a name may repeat, as Kafka allows). */
  readonly headers?:
    | Readonly<Record<string, string | Buffer>>
    | readonly (readonly [string, string | Buffer])[]
  /** The caller's idempotency key; becomes the event id. Default: a new UUIDv7. */
  readonly id?: string
  /** Event time (ms or Date). Default: now. */
  readonly timestamp?: number | Date
  /** An explicit partition. Default: chosen from the key like the Java client (murmur2). */
  readonly partition?: number
}

export type SendResult =
  | { readonly status: 'accepted'; readonly id: string; readonly durable: boolean; readonly acked: boolean }
  | { readonly status: 'refused'; readonly id: string | undefined; readonly error: SpillwayError }

export interface SendOptions {
  /** Refuse every event if any one is invalid. Default false. */
  readonly atomic?: boolean
}

export type ProducerState = 'running' | 'closing' | 'closed'

/** What the status stream yields. */
export type ProducerStatus =
  | {
      readonly type: 'breaker'
      readonly from: BreakerState
      readonly to: BreakerState
      readonly reason: string
    }
  | {
      readonly type: 'lifecycle'
      readonly from: ProducerState
      readonly to: ProducerState
      readonly reason: string
    }
  | {
      readonly type: 'dead-letter'
      readonly id: string | undefined
      readonly topic: string | undefined
      readonly reason: string
      /** Set when the event goes on to this dead-letter topic (deadLetterTopics). */
      readonly deadLetterTopic?: string
    }
  | { readonly type: 'delivery-failure'; readonly reason: string }
  | {
      /** A topic began or ended waiting: events of it wait for it to exist (durable mode). */
      readonly type: 'waiting'
      readonly topic: string
      /** 'started': its first event waits; 'ended': the last one left (delivered or dead-lettered). */
      readonly change: 'started' | 'ended'
      readonly events: number
    }
  | {
      /** The local log's state moved (a write fault, a full disk, and back). */
      readonly type: 'log'
      readonly from: LogState
      readonly to: LogState
      readonly reason: string
    }

export interface ProducerStats {
  readonly state: ProducerState
  readonly ack: AckMode
  readonly breaker: BreakerState
  readonly accepted: number
  readonly refused: number
  readonly refusedByCode: Readonly<Record<string, number>>
  readonly delivered: number
  readonly replayed: number
  readonly deadLettered: number
  /** Dead letters delivered to their dead-letter topic. */
  readonly deadLettersDelivered: number
  /** Events waiting for their topic to exist (durable mode), in all and per topic. */
  readonly waiting: WaitingStats
  /** Dead letters by original topic and reason, most first (since the producer started). */
  readonly deadLettersByTopic: readonly DeadLetterCount[]
  readonly failedBatches: number
  readonly rebuilds: number
  readonly inflightBytes: number
  readonly kafkaProducerInits: number
  readonly transportsCreated: number
  readonly log: LogStats | undefined
  readonly memory: { readonly bytes: number; readonly records: number; readonly maxBytes: number } | undefined
  readonly lastError: string | undefined
}
