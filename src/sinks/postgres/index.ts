/** createPostgresSink(): a sink whose writer is PostgreSQL (writer.ts), from one options object. */
import type { ConsumerOptions } from '../../consumer/options.ts'
import type { Registry } from '../../telemetry/metrics.ts'
import { readSinkOptions } from '../options.ts'
import { SpillwaySink } from '../sink.ts'
import type { PostgresConnectionOptions } from './options.ts'
import { readPostgresTable } from './options.ts'
import { PostgresWriter } from './writer.ts'

export interface PostgresSinkOptions
  extends Pick<
    ConsumerOptions,
    | 'brokers'
    | 'connection'
    | 'clientId'
    | 'tls'
    | 'sasl'
    | 'topics'
    | 'concurrency'
    | 'deadLetterTopics'
    | 'from'
    | 'commitIntervalMs'
    | 'closeTimeoutMs'
    | 'rebalanceTimeoutMs'
    | 'maxBufferedBytes'
    | 'stallAlarmMs'
    | 'requestTimeoutMs'
    | 'metadataMaxAgeMs'
  > {
  readonly groupId: string
  /** Whose offsets the offsets table keeps. Default: the group. */
  readonly name?: string
  readonly maxBatchRows?: number
  readonly maxBatchBytes?: number
  readonly retryBackoffMs?: number
  readonly maxRetryBackoffMs?: number
  readonly postgres: Partial<Omit<PostgresConnectionOptions, 'tls'>> & {
    readonly passwordFile?: string
    readonly tls?: unknown
  }
  readonly table: string
  /** Column → source (`$id`, `$topic`, … or a dotted path into the JSON value). Default: every field. */
  readonly columns?: Readonly<Record<string, string>>
  readonly createTable?: boolean
  readonly offsetsTable?: string
  readonly registry?: Registry
  readonly metricLabels?: Readonly<Record<string, string>>
}

const DATABASE_KEYS = ['postgres', 'table', 'columns', 'createTable', 'offsetsTable'] as const

export function createPostgresSink(options: PostgresSinkOptions): SpillwaySink {
  const { registry, metricLabels } = options
  const { runtime, rest } = readSinkOptions(options, DATABASE_KEYS, {
    ...(registry ? { registry } : {}),
    ...(metricLabels ? { metricLabels } : {}),
  })
  const table = readPostgresTable(rest, '')
  const writer = new PostgresWriter(table, Number(runtime.consumer.concurrency ?? 4) + 1)
  return new SpillwaySink(writer, table.mapping, runtime)
}
