/** Options of createConsumer(): schema, defaults and validation with readable errors. */
import {
  invalid,
  readBoolean,
  readEnum,
  readInteger,
  readObject,
  readString,
  readStringArray,
  rejectUnknownKeys,
} from '../options.ts'
import { readDeadLetterTopics } from '../producer/options.ts'
import { isTopicName } from '../topic-name.ts'
import { readConnection, type SaslInput, type TlsInput, type TlsOptions } from '../transport/connection.ts'
import type { SaslOptions, TransportThread } from '../transport/transport.ts'
import type { DedupeStore } from './dedupe.ts'
import type { Ordering } from './key-executor.ts'
import { type ResolvedRetry, type RetryInput, readRetry } from './retry/options.ts'
import type {
  BatchHandler,
  ConsumedRecord,
  ErrorAction,
  ErrorContext,
  Handler,
  RecordHandler,
} from './types.ts'

/** Where a partition without a committed offset starts: its first record, its end, or a time (ms). */
export type StartFrom = 'beginning' | 'end' | { readonly timestamp: number }

/** What createConsumer() takes: a handler of one record, or with `batch: true` of one key's records. */
export type ConsumerOptions<T = Buffer | null> = CommonConsumerOptions<T> &
  (
    | { readonly batch?: false; readonly handler: RecordHandler<T> }
    | { readonly batch: true; readonly handler: BatchHandler<T> }
  )

export interface CommonConsumerOptions<T = Buffer | null> {
  /** Bootstrap brokers, "host:port"; or `connection` with brokers, clientId, tls and sasl together. */
  readonly brokers?: readonly string[]
  readonly connection?: {
    readonly brokers: readonly string[]
    readonly clientId?: string
    readonly tls?: TlsInput
    readonly sasl?: SaslInput
  }
  readonly clientId?: string
  readonly tls?: TlsInput
  readonly sasl?: SaslInput
  /**
   * The consumer group. Without one the consumer reads every partition of its topics on its own and
   * commits nothing (`spillway consume` without --group).
   */
  readonly groupId?: string
  readonly topics: readonly string[]
  /** Most records in one batch (`batch: true`). Default 500. */
  readonly maxBatchRecords?: number
  /** Most bytes (keys and values) in one batch; a single larger record still makes a batch. Default 16 MiB. */
  readonly maxBatchBytes?: number
  /**
   * What one batch holds: one key's records ('key', the default), or consecutive records of one partition
   * whatever their keys ('partition', with `ordering: 'partition'`; what a sink writes).
   */
  readonly batchBy?: 'key' | 'partition'
  /**
   * Offsets kept outside Kafka (a sink keeps them beside its writes): on assignment the consumer starts
   * each partition at the offset the store gives, or at `from` when it has none; Kafka's committed offsets
   * are then not read (commits still go to Kafka, for lag tools).
   */
  readonly offsetStore?: OffsetStore
  /** Turns a record's value into what the handler gets; a throw goes through onError. Default: the bytes. */
  readonly decode?: (value: Buffer | null, record: ConsumedRecord<Buffer | null>) => T
  /** Default 'key': one key in order, keys in parallel. */
  readonly ordering?: Ordering
  /** Handlers running at once. Default 16. */
  readonly concurrency?: number
  readonly dedupe?:
    | false
    | {
        readonly window?: number
        readonly maxBytes?: number
        readonly ttlMs?: number
        readonly store?: DedupeStore
      }
  /** Among buffered records of one key, handle only the newest. Default false. */
  readonly coalesce?: boolean
  /** Bytes all partitions' buffers may hold. Default 64 MiB. */
  readonly maxBufferedBytes?: number
  /** Per-partition fetch size bounds. Default 1 MiB … 64 MiB. */
  readonly minPartitionFetchBytes?: number
  readonly maxPartitionFetchBytes?: number
  /** Longest a fetch waits for data at the broker. Default 500 ms. */
  readonly maxWaitMs?: number
  readonly handlerTimeoutMs?: number
  readonly onError?: ErrorAction | ((context: ErrorContext<T>) => ErrorAction | Promise<ErrorAction>)
  readonly onHandlerTimeout?: ErrorAction | ((context: ErrorContext<T>) => ErrorAction | Promise<ErrorAction>)
  /** Attempts in place before a 'retry' gives up and falls to `afterRetries`. Default 3. */
  readonly retries?: number
  readonly retryBackoffMs?: number
  readonly maxRetryBackoffMs?: number
  /** What a 'retry' does when its attempts are spent. Default 'dead-letter'. */
  readonly afterRetries?: 'dead-letter' | 'skip'
  /** Dead-letter topic per source topic ('*' for the rest). Default `<topic>.dead-letters`. */
  readonly deadLetterTopics?: Readonly<Record<string, string>>
  /**
   * Retry tiers: a record whose handler gave up goes to the next tier's topic, waits there its delay,
   * and is handled again; after the last tier, the dead-letter topic. Each move commits with its source
   * offset in one Kafka transaction (docs/consumer.md). With tiers, `retries` in place default to 0.
   */
  readonly retry?: RetryInput
  readonly from?: StartFrom
  readonly commitIntervalMs?: number
  readonly rebalanceTimeoutMs?: number
  /**
   * The group protocol: 'consumer' (KIP-848), 'classic' (JoinGroup/SyncGroup with cooperative-sticky
   * rebalancing), or 'auto' (default): KIP-848, and the classic protocol when the broker does not offer it.
   */
  readonly groupProtocol?: 'auto' | 'consumer' | 'classic'
  /** The classic protocol's session timeout (within the broker's group.min/max.session.timeout.ms). Default 45 000 ms. */
  readonly sessionTimeoutMs?: number
  /** Longest close() waits for running handlers before abandoning them. Default 10 000 ms. */
  readonly closeTimeoutMs?: number
  /** A partition with records but no completion for this long raises an alarm. Default 60 000 ms. */
  readonly stallAlarmMs?: number
  /** Warn once per topic when its average record passes this. Default 600 KB. */
  readonly largeRecordBytes?: number
  readonly metadataMaxAgeMs?: number
  readonly requestTimeoutMs?: number
  readonly transportThread?: TransportThread
}

export interface OffsetStore {
  /** The next offset to handle per partition; partitions the store has never seen are left out. */
  load(
    partitions: readonly { readonly topic: string; readonly partition: number }[],
  ): Promise<readonly { readonly topic: string; readonly partition: number; readonly offset: bigint }[]>
}

export interface ResolvedConsumerOptions<T> {
  readonly brokers: readonly string[]
  readonly clientId: string
  readonly tls: TlsOptions | undefined
  readonly sasl: SaslOptions | undefined
  readonly groupId: string | undefined
  readonly topics: readonly string[]
  readonly handler: Handler<T>
  readonly batch: boolean
  readonly maxBatchRecords: number
  readonly maxBatchBytes: number
  readonly batchBy: 'key' | 'partition'
  readonly offsetStore: OffsetStore | undefined
  readonly decode: ((value: Buffer | null, record: ConsumedRecord<Buffer | null>) => T) | undefined
  readonly ordering: Ordering
  readonly concurrency: number
  readonly dedupe:
    | false
    | {
        readonly window: number
        readonly maxBytes: number
        readonly ttlMs: number
        readonly store: DedupeStore | undefined
      }
  readonly coalesce: boolean
  readonly maxBufferedBytes: number
  readonly minPartitionFetchBytes: number
  readonly maxPartitionFetchBytes: number
  readonly maxWaitMs: number
  readonly handlerTimeoutMs: number
  readonly onError: ErrorPolicy<T>
  readonly onHandlerTimeout: ErrorPolicy<T>
  readonly retries: number
  readonly retryBackoffMs: number
  readonly maxRetryBackoffMs: number
  readonly afterRetries: 'dead-letter' | 'skip'
  readonly deadLetterTopics: Readonly<Record<string, string>>
  readonly retry: ResolvedRetry | undefined
  readonly from: StartFrom
  readonly commitIntervalMs: number
  readonly rebalanceTimeoutMs: number
  readonly groupProtocol: 'auto' | 'consumer' | 'classic'
  readonly sessionTimeoutMs: number
  readonly closeTimeoutMs: number
  readonly stallAlarmMs: number
  readonly largeRecordBytes: number
  readonly metadataMaxAgeMs: number
  readonly requestTimeoutMs: number
  readonly transportThread: TransportThread
}

export type ErrorPolicy<T> = ErrorAction | ((context: ErrorContext<T>) => ErrorAction | Promise<ErrorAction>)

const KEYS = [
  'brokers',
  'connection',
  'clientId',
  'tls',
  'sasl',
  'groupId',
  'topics',
  'handler',
  'batch',
  'maxBatchRecords',
  'maxBatchBytes',
  'batchBy',
  'offsetStore',
  'decode',
  'ordering',
  'concurrency',
  'dedupe',
  'coalesce',
  'maxBufferedBytes',
  'minPartitionFetchBytes',
  'maxPartitionFetchBytes',
  'maxWaitMs',
  'handlerTimeoutMs',
  'onError',
  'onHandlerTimeout',
  'retries',
  'retryBackoffMs',
  'maxRetryBackoffMs',
  'afterRetries',
  'deadLetterTopics',
  'retry',
  'from',
  'commitIntervalMs',
  'rebalanceTimeoutMs',
  'groupProtocol',
  'sessionTimeoutMs',
  'closeTimeoutMs',
  'stallAlarmMs',
  'largeRecordBytes',
  'metadataMaxAgeMs',
  'requestTimeoutMs',
  'transportThread',
] as const

const MiB = 1024 * 1024
const ACTIONS = ['retry', 'skip', 'dead-letter'] as const

function readPolicy<T>(value: unknown, key: string, fallback: ErrorAction): ErrorPolicy<T> {
  if (typeof value === 'function') return value as ErrorPolicy<T>
  return readEnum(value, key, ACTIONS, fallback)
}

function readFrom(value: unknown): StartFrom {
  if (value === undefined) return 'beginning'
  if (value === 'beginning' || value === 'end') return value
  if (
    typeof value === 'object' &&
    value !== null &&
    typeof (value as { timestamp?: unknown }).timestamp === 'number'
  ) {
    const timestamp = (value as { timestamp: number }).timestamp
    if (Number.isFinite(timestamp) && timestamp >= 0) return { timestamp }
  }
  throw invalid('from', value, "'beginning', 'end' or { timestamp: ms since the epoch }")
}

export function resolveConsumerOptions<T>(input: unknown): ResolvedConsumerOptions<T> {
  const o = readObject(input, 'options')
  rejectUnknownKeys(o, '', KEYS)
  const connection =
    o.connection === undefined
      ? readConnection(o, '', 'spillway-consumer')
      : readConnection(readObject(o.connection, 'connection'), 'connection', 'spillway-consumer')
  if (!connection) throw invalid('brokers', undefined, 'a list of "host:port" bootstrap brokers')
  const topics = readStringArray(o.topics, 'topics')
  if (topics.length === 0) throw invalid('topics', o.topics, 'at least one topic')
  for (const [i, topic] of topics.entries()) {
    if (!isTopicName(topic))
      throw invalid(`topics[${i}]`, topic, "a Kafka topic name (letters, digits, '.', '_', '-')")
  }
  if (typeof o.handler !== 'function')
    throw invalid('handler', o.handler, 'a function (record) => Promise<void>')
  if (o.decode !== undefined && typeof o.decode !== 'function')
    throw invalid('decode', o.decode, 'a function (value, record) => T')
  const groupId = o.groupId === undefined ? undefined : readString(o.groupId, 'groupId')
  if (groupId !== undefined && groupId.length === 0) throw invalid('groupId', groupId, 'a non-empty string')
  let dedupe: ResolvedConsumerOptions<T>['dedupe'] = {
    window: 100_000,
    maxBytes: 16 * MiB,
    ttlMs: 3_600_000,
    store: undefined,
  }
  if (o.dedupe === false) dedupe = false
  else if (o.dedupe !== undefined && o.dedupe !== true) {
    const d = readObject(o.dedupe, 'dedupe')
    rejectUnknownKeys(d, 'dedupe', ['window', 'maxBytes', 'ttlMs', 'store'])
    const store = d.store as DedupeStore | undefined
    if (store !== undefined && (typeof store?.has !== 'function' || typeof store?.add !== 'function'))
      throw invalid('dedupe.store', store, 'an object with has(id) and add(id)')
    dedupe = {
      window: readInteger(d.window, 'dedupe.window', 100_000, { min: 1 }),
      maxBytes: readInteger(d.maxBytes, 'dedupe.maxBytes', 16 * MiB, { min: 1024 }),
      ttlMs: readInteger(d.ttlMs, 'dedupe.ttlMs', 3_600_000, { min: 1 }),
      store,
    }
  }
  const ordering = readEnum(o.ordering, 'ordering', ['key', 'partition', 'unordered'] as const, 'key')
  const batchBy = readEnum(o.batchBy, 'batchBy', ['key', 'partition'] as const, 'key')
  if (batchBy === 'partition' && ordering !== 'partition')
    throw invalid('batchBy', batchBy, "'key' unless ordering is 'partition'")
  const offsetStore = o.offsetStore as OffsetStore | undefined
  if (offsetStore !== undefined && typeof offsetStore?.load !== 'function')
    throw invalid('offsetStore', offsetStore, 'an object with load(partitions)')
  const retry = readRetry(o.retry, groupId)
  const rebalanceTimeoutMs = readInteger(o.rebalanceTimeoutMs, 'rebalanceTimeoutMs', 60_000, { min: 1000 })
  const closeTimeoutMs = readInteger(o.closeTimeoutMs, 'closeTimeoutMs', 10_000, { min: 0 })
  const minPartitionFetchBytes = readInteger(o.minPartitionFetchBytes, 'minPartitionFetchBytes', MiB, {
    min: 1024,
  })
  const maxPartitionFetchBytes = readInteger(o.maxPartitionFetchBytes, 'maxPartitionFetchBytes', 64 * MiB, {
    min: minPartitionFetchBytes,
  })
  return {
    brokers: connection.brokers,
    clientId: connection.clientId,
    tls: connection.tls,
    sasl: connection.sasl,
    groupId,
    topics,
    handler: o.handler as Handler<T>,
    batch: readBoolean(o.batch, 'batch', false),
    maxBatchRecords: readInteger(o.maxBatchRecords, 'maxBatchRecords', 500, { min: 1 }),
    maxBatchBytes: readInteger(o.maxBatchBytes, 'maxBatchBytes', 16 * MiB, { min: 1 }),
    batchBy,
    offsetStore,
    decode: o.decode as ResolvedConsumerOptions<T>['decode'],
    ordering,
    concurrency: readInteger(o.concurrency, 'concurrency', 16, { min: 1, max: 10_000 }),
    dedupe,
    coalesce: readBoolean(o.coalesce, 'coalesce', false),
    maxBufferedBytes: readInteger(o.maxBufferedBytes, 'maxBufferedBytes', 64 * MiB, { min: 64 * 1024 }),
    minPartitionFetchBytes,
    maxPartitionFetchBytes,
    maxWaitMs: readInteger(o.maxWaitMs, 'maxWaitMs', 500, { min: 0, max: 30_000 }),
    handlerTimeoutMs: readInteger(o.handlerTimeoutMs, 'handlerTimeoutMs', 30_000, { min: 1 }),
    onError: readPolicy<T>(o.onError, 'onError', 'retry'),
    onHandlerTimeout: readPolicy<T>(o.onHandlerTimeout, 'onHandlerTimeout', 'retry'),
    retries: readInteger(o.retries, 'retries', retry ? 0 : 3, { min: 0, max: 1000 }),
    retryBackoffMs: readInteger(o.retryBackoffMs, 'retryBackoffMs', 200, { min: 0 }),
    maxRetryBackoffMs: readInteger(o.maxRetryBackoffMs, 'maxRetryBackoffMs', 30_000, { min: 0 }),
    afterRetries: readEnum(o.afterRetries, 'afterRetries', ['dead-letter', 'skip'] as const, 'dead-letter'),
    // the consumer's dead letters go straight to Kafka: no local log is needed for the routes
    deadLetterTopics: readDeadLetterTopics(o.deadLetterTopics, true, 'deadLetterTopics'),
    retry,
    from: readFrom(o.from),
    commitIntervalMs: readInteger(o.commitIntervalMs, 'commitIntervalMs', 1000, { min: 10 }),
    rebalanceTimeoutMs,
    groupProtocol: readEnum(
      o.groupProtocol,
      'groupProtocol',
      ['auto', 'consumer', 'classic'] as const,
      'auto',
    ),
    sessionTimeoutMs: readInteger(o.sessionTimeoutMs, 'sessionTimeoutMs', 45_000, { min: 1000 }),
    closeTimeoutMs,
    stallAlarmMs: readInteger(o.stallAlarmMs, 'stallAlarmMs', 60_000, { min: 100 }),
    largeRecordBytes: readInteger(o.largeRecordBytes, 'largeRecordBytes', 600 * 1024, { min: 1 }),
    metadataMaxAgeMs: readInteger(o.metadataMaxAgeMs, 'metadataMaxAgeMs', 30_000, { min: 100 }),
    requestTimeoutMs: readInteger(o.requestTimeoutMs, 'requestTimeoutMs', 5000, { min: 100 }),
    transportThread: readEnum(
      o.transportThread,
      'transportThread',
      ['auto', 'worker', 'main'] as const,
      'main',
    ),
  }
}

/** The dead-letter topic of a source topic. */
export function deadLetterTopic(routes: Readonly<Record<string, string>>, topic: string): string {
  return routes[topic] ?? routes['*'] ?? `${topic}.dead-letters`
}
