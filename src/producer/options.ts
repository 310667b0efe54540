/** Options of createProducer(): schema, defaults and validation with readable errors. */
import {
  type BreakerOptions,
  type ResolvedBreakerOptions,
  resolveBreakerOptions,
} from '../breaker/breaker.ts'
import { type LogOptions, type ResolvedLogOptions, resolveLogOptions } from '../log/options.ts'
import { invalid, readEnum, readInteger, readObject, readString, rejectUnknownKeys } from '../options.ts'
import { isTopicName } from '../topic-name.ts'
import { readConnection, type SaslInput, type TlsInput, type TlsOptions } from '../transport/connection.ts'
import type { SaslOptions, TransportThread } from '../transport/transport.ts'

export type AckMode = 'durable' | 'kafka' | 'memory'

export interface ProducerOptions {
  /** Bootstrap brokers, "host:port". Leave out to keep events in the local log only (no delivery). */
  readonly brokers?: readonly string[]
  readonly clientId?: string
  /** TLS to the brokers: `true`, or { ca|caFile, cert|certFile, key|keyFile, servername, rejectUnauthorized }. */
  readonly tls?: TlsInput
  /** SASL: { mechanism: PLAIN | SCRAM-SHA-256 | SCRAM-SHA-512, username, password|passwordFile }. */
  readonly sasl?: SaslInput
  /** When send() answers. Default 'durable'. */
  readonly ack?: AckMode
  /** The local log (required for 'durable'). */
  readonly log?: LogOptions
  /** Bytes held in memory by the 'memory' and 'kafka' modes. Default 64 MiB. */
  readonly memoryBytes?: number
  /** Largest single event (key + value + headers). Default 1 MiB. */
  readonly maxEventBytes?: number
  readonly batch?: {
    readonly maxBytes?: number
    readonly maxRecords?: number
    /**
     * How long an idle dispatcher waits after new events arrive before it sends, so a trickle leaves in
     * batches. Default 5 ms, 0 with ack 'kafka' (the caller is waiting for Kafka).
     */
    readonly lingerMs?: number
    /** Most bytes for one partition in one request; keep it at or below the topics' max.message.bytes. */
    readonly maxPartitionBytes?: number
  }
  /** Deadline of each call to Kafka, and of a 'kafka'-mode send. Default 10 000 ms. */
  readonly deliveryTimeoutMs?: number
  /** How long a topic's partition count is trusted before it is looked up again. Default 30 000 ms. */
  readonly metadataMaxAgeMs?: number
  readonly breaker?: BreakerOptions
  /** Keep the shared Kafka producer this long after the last spillway producer using it closes. Default 30 000. */
  readonly transportLingerMs?: number
  /** Warn when more spillway producers than this are created per minute. Default 60. */
  readonly churnPerMinute?: number
  /**
   * Where the Kafka client runs: 'worker', a worker thread of its own; 'main', the caller's event loop;
   * or 'auto' (default): 'worker' when the machine has at least 4 cores, else 'main'.
   */
  readonly transportThread?: TransportThread
  /**
   * Dead-letter topics: source topic (or '*' for every other topic) → the Kafka topic its poison events
   * go to. Needs `log`: dead letters wait in `<log.dir>/dead-letter-outbox` until Kafka takes them. Poison
   * events of a topic without a route, and dead letters their topic refuses too, stay in the dead-letter
   * log. Default: none (every poison event stays in the dead-letter log).
   */
  readonly deadLetterTopics?: Readonly<Record<string, string>>
  /**
   * `durable` mode: events of a topic that does not exist wait in `<log.dir>/waiting/<topic>`, tried again
   * with the breaker's back-off until the topic exists. This is how long they may wait before they are
   * dead-lettered, ms. Default: forever.
   */
  readonly unknownTopicTimeoutMs?: number
}

export interface ResolvedProducerOptions {
  readonly brokers: readonly string[] | undefined
  readonly clientId: string
  readonly tls: TlsOptions | undefined
  readonly sasl: SaslOptions | undefined
  readonly ack: AckMode
  readonly log: ResolvedLogOptions | undefined
  readonly memoryBytes: number
  readonly maxEventBytes: number
  readonly batch: {
    readonly maxBytes: number
    readonly maxRecords: number
    readonly lingerMs: number
    readonly maxPartitionBytes: number
  }
  readonly deliveryTimeoutMs: number
  readonly metadataMaxAgeMs: number
  readonly breaker: ResolvedBreakerOptions
  readonly transportLingerMs: number
  readonly churnPerMinute: number
  readonly transportThread: TransportThread
  readonly deadLetterTopics: Readonly<Record<string, string>>
  readonly unknownTopicTimeoutMs: number | undefined
}

const KEYS = [
  'brokers',
  'clientId',
  'tls',
  'sasl',
  'ack',
  'log',
  'memoryBytes',
  'maxEventBytes',
  'batch',
  'deliveryTimeoutMs',
  'metadataMaxAgeMs',
  'breaker',
  'transportLingerMs',
  'churnPerMinute',
  'transportThread',
  'deadLetterTopics',
  'unknownTopicTimeoutMs',
] as const

const MiB = 1024 * 1024

export function resolveProducerOptions(input: unknown): ResolvedProducerOptions {
  const o = readObject(input, 'options')
  rejectUnknownKeys(o, '', KEYS)
  const ack = readEnum(o.ack, 'ack', ['durable', 'kafka', 'memory'] as const, 'durable')
  const connection = readConnection(o, '', 'spillway')
  const brokers = connection?.brokers
  if (ack !== 'durable' && brokers === undefined)
    throw invalid('brokers', undefined, `a broker list: ack "${ack}" needs Kafka`)
  if (ack === 'durable' && o.log === undefined)
    throw invalid('log', undefined, 'an object with at least { dir } for ack "durable"')
  const batch = readObject(o.batch, 'batch')
  rejectUnknownKeys(batch, 'batch', ['maxBytes', 'maxRecords', 'lingerMs', 'maxPartitionBytes'])
  return {
    brokers,
    clientId: connection?.clientId ?? readString(o.clientId, 'clientId', 'spillway'),
    tls: connection?.tls,
    sasl: connection?.sasl,
    ack,
    log: o.log === undefined ? undefined : resolveLogOptions(o.log, 'log'),
    memoryBytes: readInteger(o.memoryBytes, 'memoryBytes', 64 * MiB, { min: 64 * 1024 }),
    maxEventBytes: readInteger(o.maxEventBytes, 'maxEventBytes', MiB, { min: 16, max: 64 * MiB }),
    batch: {
      maxBytes: readInteger(batch.maxBytes, 'batch.maxBytes', 4 * MiB, { min: 1024, max: 64 * MiB }),
      maxRecords: readInteger(batch.maxRecords, 'batch.maxRecords', 10_000, { min: 1, max: 1_000_000 }),
      // 'kafka' callers wait for the ack: the next batch gathers while one is in flight, so an idle
      // dispatcher sends at once instead of adding a linger to every round trip
      lingerMs: readInteger(batch.lingerMs, 'batch.lingerMs', ack === 'kafka' ? 0 : 5, {
        min: 0,
        max: 10_000,
      }),
      maxPartitionBytes: readInteger(batch.maxPartitionBytes, 'batch.maxPartitionBytes', 1_000_000, {
        min: 1024,
        max: 64 * MiB,
      }),
    },
    deliveryTimeoutMs: readInteger(o.deliveryTimeoutMs, 'deliveryTimeoutMs', 10_000, {
      min: 10,
      max: 600_000,
    }),
    metadataMaxAgeMs: readInteger(o.metadataMaxAgeMs, 'metadataMaxAgeMs', 30_000, {
      min: 100,
      max: 3_600_000,
    }),
    breaker: resolveBreakerOptions(o.breaker, 'breaker'),
    transportLingerMs: readInteger(o.transportLingerMs, 'transportLingerMs', 30_000, { min: 0 }),
    churnPerMinute: readInteger(o.churnPerMinute, 'churnPerMinute', 60, { min: 1 }),
    transportThread: readEnum(
      o.transportThread,
      'transportThread',
      ['auto', 'worker', 'main'] as const,
      'auto',
    ),
    deadLetterTopics: readDeadLetterTopics(o.deadLetterTopics, o.log !== undefined, 'deadLetterTopics'),
    unknownTopicTimeoutMs:
      o.unknownTopicTimeoutMs === undefined
        ? undefined
        : readInteger(o.unknownTopicTimeoutMs, 'unknownTopicTimeoutMs', 0, { min: 0 }),
  }
}

/** Dead-letter routes (see ProducerOptions.deadLetterTopics), named `name` in error messages. */
export function readDeadLetterTopics(
  value: unknown,
  hasLog: boolean,
  name: string,
): Readonly<Record<string, string>> {
  if (value === undefined) return {}
  const routes = readObject(value, name)
  const out: Record<string, string> = {}
  for (const [source, target] of Object.entries(routes)) {
    const key = `${name}.${source}`
    if (source !== '*' && !isTopicName(source))
      throw invalid(key, source, "a Kafka topic name or '*' as the key")
    if (typeof target !== 'string' || !isTopicName(target)) throw invalid(key, target, 'a Kafka topic name')
    if (target === source)
      throw invalid(key, target, 'a topic other than the one whose poison events it takes')
    out[source] = target
  }
  if (Object.keys(out).length > 0 && !hasLog)
    throw invalid(name, value, 'routes only together with `log` (dead letters wait there for Kafka)')
  return out
}
