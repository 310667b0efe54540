/** spillway's public API. */

export { Breaker } from './breaker/breaker.ts'
export {
  type BatchHandler,
  type ConsumedRecord,
  type ConsumerOptions,
  type ConsumerStats,
  type ConsumerStatus,
  createConsumer,
  DEAD_LETTER_HEADERS,
  type DedupeStore,
  type ErrorAction,
  type Handler,
  type RecordHandler,
  SpillwayConsumer,
} from './consumer/index.ts'
export { runDoctor } from './doctor/doctor.ts'
export type { DoctorOptions } from './doctor/options.ts'
export type { CheckReport, DoctorReport, Finding, Severity } from './doctor/types.ts'
export { type ErrorCode, errorCodes, isSpillwayError, SpillwayError } from './errors.ts'
export { DurableLog, LogReader } from './log/log.ts'
export type { FsyncPolicy, LogOptions } from './log/options.ts'
export type {
  AckMode,
  EventInput,
  ProducerOptions,
  ProducerStats,
  ProducerStatus,
  SendOptions,
  SendResult,
} from './producer/index.ts'
export { createProducer, ID_HEADER, murmur2, partitionForKey, SpillwayProducer } from './producer/index.ts'
export { type ClickHouseSinkOptions, createClickHouseSink } from './sinks/clickhouse/index.ts'
export { createPostgresSink, type PostgresSinkOptions } from './sinks/postgres/index.ts'
export type { SinkEvent, SinkPartitionStats, SinkStats, SpillwaySink } from './sinks/sink.ts'
export { closeAllTransports } from './transport/registry.ts'
