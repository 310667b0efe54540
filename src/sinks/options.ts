/**
 * What every sink takes besides its database: the consumer's connection and group, batch bounds and
 * back-off. Unknown keys and bad values are errors naming the key, like every other options reader.
 */
import { invalid, readInteger, readObject, readString, rejectUnknownKeys } from '../options.ts'
import type { Registry } from '../telemetry/metrics.ts'
import type { SinkRuntimeOptions } from './sink.ts'

/** Passed to the consumer as they are (it checks them). */
const CONSUMER_KEYS = [
  'brokers',
  'connection',
  'clientId',
  'tls',
  'sasl',
  'groupId',
  'topics',
  'concurrency',
  'deadLetterTopics',
  'from',
  'commitIntervalMs',
  'closeTimeoutMs',
  'rebalanceTimeoutMs',
  'maxBufferedBytes',
  'stallAlarmMs',
  'requestTimeoutMs',
  'metadataMaxAgeMs',
] as const

const SINK_KEYS = ['name', 'maxBatchRows', 'maxBatchBytes', 'retryBackoffMs', 'maxRetryBackoffMs'] as const

const MiB = 1024 * 1024

export function readSinkOptions(
  input: unknown,
  databaseKeys: readonly string[],
  extras: { readonly registry?: Registry; readonly metricLabels?: Readonly<Record<string, string>> } = {},
): { runtime: SinkRuntimeOptions; rest: Record<string, unknown> } {
  const o = readObject(input, 'options')
  rejectUnknownKeys(o, '', [...CONSUMER_KEYS, ...SINK_KEYS, ...databaseKeys, 'registry', 'metricLabels'])
  const groupId = readString(o.groupId, 'groupId')
  if (groupId.length === 0) throw invalid('groupId', groupId, 'a non-empty string')
  const consumer: Record<string, unknown> = {}
  for (const key of CONSUMER_KEYS) if (o[key] !== undefined) consumer[key] = o[key]
  consumer.concurrency ??= 4
  const rest: Record<string, unknown> = {}
  for (const key of databaseKeys) if (o[key] !== undefined) rest[key] = o[key]
  return {
    runtime: {
      name: readString(o.name, 'name', groupId),
      maxBatchRows: readInteger(o.maxBatchRows, 'maxBatchRows', 5000, { min: 1, max: 1_000_000 }),
      maxBatchBytes: readInteger(o.maxBatchBytes, 'maxBatchBytes', 8 * MiB, { min: 1024 }),
      retryBackoffMs: readInteger(o.retryBackoffMs, 'retryBackoffMs', 250, { min: 1 }),
      maxRetryBackoffMs: readInteger(o.maxRetryBackoffMs, 'maxRetryBackoffMs', 10_000, { min: 1 }),
      consumer: {
        ...(consumer as unknown as SinkRuntimeOptions['consumer']),
        ...(extras.registry ? { registry: extras.registry } : {}),
        ...(extras.metricLabels ? { metricLabels: extras.metricLabels } : {}),
      },
    },
    rest,
  }
}
