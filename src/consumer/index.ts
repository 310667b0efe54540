export { createConsumer, SpillwayConsumer } from './consumer.ts'
export { DEAD_LETTER_HEADERS } from './dead-letters.ts'
export type { DedupeStore } from './dedupe.ts'
export type { Ordering } from './key-executor.ts'
export type { ConsumerOptions, StartFrom } from './options.ts'
export type {
  BatchHandler,
  ConsumedRecord,
  ConsumerState,
  ConsumerStats,
  ConsumerStatus,
  ErrorAction,
  ErrorContext,
  Handler,
  HandlerContext,
  PartitionState,
  PartitionStats,
  RecordHandler,
} from './types.ts'
