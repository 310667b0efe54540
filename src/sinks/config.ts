/**
 * `spillway sink` configuration: a JSON file (`--config`), then environment overrides, then flags. The
 * Kafka connection is shared by every sink in the file; each sink names its group, topics, database and
 * table. Each sink's options are checked by its own reader, and an error names the sink.
 */
import { isSpillwayError, SpillwayError } from '../errors.ts'
import {
  applyServiceEnvironment,
  invalid,
  readEnum,
  readInteger,
  readObject,
  readString,
  rejectUnknownKeys,
} from '../options.ts'
import { readConnection } from '../transport/connection.ts'
import type { ClickHouseSinkOptions } from './clickhouse/index.ts'
import type { PostgresSinkOptions } from './postgres/index.ts'

export interface SinkServiceConfig {
  readonly host: string
  readonly port: number
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'silent'
  readonly shutdownTimeoutMs: number
  readonly sinks: readonly {
    readonly type: (typeof SINK_TYPES)[number]
    readonly name: string
    /** The sink's own options, checked by its factory (createPostgresSink, createClickHouseSink). */
    readonly options: PostgresSinkOptions | ClickHouseSinkOptions
  }[]
}

const KEYS = ['host', 'port', 'logLevel', 'shutdownTimeoutMs', 'kafka', 'sinks'] as const
const SINK_TYPES = ['postgres', 'clickhouse'] as const

export const sinkConfigHelp: readonly [string, string][] = [
  ['host', 'address for /healthz, /readyz, /metrics and the status page (default 127.0.0.1)'],
  ['port', 'its port (default 8090; 0 picks a free one)'],
  ['kafka.brokers', 'bootstrap brokers, shared by every sink (required)'],
  ['kafka.clientId', 'client id (default spillway-sink)'],
  ['kafka.tls', 'true, or { ca|caFile, cert|certFile, key|keyFile, servername, rejectUnauthorized }'],
  ['kafka.sasl', '{ mechanism, username, password|passwordFile } (env SPILLWAY_SASL_PASSWORD)'],
  ['sinks[]', 'one entry per sink:'],
  ['  type', 'postgres or clickhouse'],
  ['  name', 'the sink, in logs, metrics and the offsets table (default: its groupId)'],
  ['  groupId, topics', 'the consumer group and the topics it reads (required)'],
  [
    '  postgres',
    '{ host, port, database, user, password|passwordFile, tls, connectTimeoutMs, statementTimeoutMs }',
  ],
  ['', '(password also from SPILLWAY_PG_PASSWORD; never logged)'],
  [
    '  clickhouse',
    '{ host, port (HTTP, 8123), database, user, password|passwordFile, tls, requestTimeoutMs }',
  ],
  ['', '(password also from SPILLWAY_CLICKHOUSE_PASSWORD; never logged)'],
  ['  table', 'the target table: PostgreSQL needs a unique index on the id column, ClickHouse a'],
  ['', 'ReplacingMergeTree ordered by it (read it with FINAL)'],
  [
    '  columns',
    '{ column: source }: $id, $topic, $partition, $offset, $timestamp, $key, $headers, $value, $raw,',
  ],
  ['', 'or a dotted path into the JSON value (default: every field, the value as jsonb)'],
  ['  createTable', 'create the default table when it is missing (only without columns)'],
  ['  offsetsTable', "where each partition's next offset is kept (default spillway_offsets)"],
  ['  maxBatchRows, maxBatchBytes', 'batch bounds (default 5000 rows, 8 MiB)'],
  ['  concurrency', 'partitions written at once (default 4)'],
  ['  deadLetterTopics', '{ topic: dead-letter topic, "*": … } (default <topic>.dead-letters)'],
  ['  from', "'beginning' (default) or 'end', for partitions the database has no offset for"],
  ['logLevel', 'fatal|error|warn|info|debug|silent (default info)'],
  ['shutdownTimeoutMs', 'how long SIGTERM waits for running batches (default 15000)'],
]

/** Environment overrides, applied over the file: the ones every service takes (options.ts). */
export const applySinkEnvironment = applyServiceEnvironment

export function resolveSinkServiceConfig(input: unknown): SinkServiceConfig {
  const o = readObject(input, 'config')
  rejectUnknownKeys(o, '', KEYS)
  const kafka = readConnection(readObject(o.kafka ?? {}, 'kafka'), 'kafka', 'spillway-sink')
  if (!kafka) throw invalid('kafka.brokers', undefined, 'a list of "host:port" bootstrap brokers')
  if (!Array.isArray(o.sinks) || o.sinks.length === 0)
    throw invalid('sinks', o.sinks, 'a non-empty list of sinks')
  const shutdownTimeoutMs = readInteger(o.shutdownTimeoutMs, 'shutdownTimeoutMs', 15_000, { min: 0 })
  const names = new Set<string>()
  const sinks = o.sinks.map((entry, i) => {
    const s = readObject(entry, `sinks[${i}]`)
    const type = readEnum(s.type, `sinks[${i}].type`, SINK_TYPES, 'postgres')
    const groupId = readString(s.groupId, `sinks[${i}].groupId`)
    const name = readString(s.name, `sinks[${i}].name`, groupId)
    if (names.has(name)) throw invalid(`sinks[${i}].name`, name, 'a name no other sink has')
    names.add(name)
    const { type: _type, ...rest } = s
    const options = {
      ...rest,
      name,
      // running batches get the shutdown's time to finish
      closeTimeoutMs: rest.closeTimeoutMs ?? shutdownTimeoutMs,
      connection: {
        brokers: kafka.brokers,
        clientId: kafka.clientId,
        ...(kafka.tls ? { tls: kafka.tls } : {}),
        ...(kafka.sasl ? { sasl: kafka.sasl } : {}),
      },
    } as unknown as PostgresSinkOptions & ClickHouseSinkOptions
    return { type, name, options }
  })
  return {
    host: readString(o.host, 'host', '127.0.0.1'),
    port: readInteger(o.port, 'port', 8090, { min: 0, max: 65_535 }),
    logLevel: readEnum(
      o.logLevel,
      'logLevel',
      ['fatal', 'error', 'warn', 'info', 'debug', 'silent'] as const,
      'info',
    ),
    shutdownTimeoutMs,
    sinks,
  }
}

/** Runs a sink's own options reader and puts the sink's place in the config in front of its errors. */
export function withSinkContext<T>(index: number, name: string, make: () => T): T {
  try {
    return make()
  } catch (error) {
    if (isSpillwayError(error) && error.code === 'SPW_ERR_INVALID_OPTION')
      throw new SpillwayError('SPW_ERR_INVALID_OPTION', `sinks[${index}] (${name}): ${error.message}`, {
        cause: error,
        details: { key: `sinks[${index}]` },
      })
    throw error
  }
}
