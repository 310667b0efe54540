/** spillway's public API. */
export { createProducer, ID_HEADER, murmur2, partitionForKey, SpillwayProducer } from './producer/index.ts'
export type { AckMode, EventInput, ProducerOptions, ProducerStats, ProducerStatus, SendOptions, SendResult } from './producer/index.ts'
export { DurableLog, LogReader } from './log/log.ts'
export type { LogOptions, FsyncPolicy } from './log/options.ts'
export { Breaker } from './breaker/breaker.ts'
export { closeAllTransports } from './transport/registry.ts'
export { errorCodes, isSpillwayError, SpillwayError, type ErrorCode } from './errors.ts'
