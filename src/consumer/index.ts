export { createConsumer, SpillwayConsumer } from './consumer.ts'
export { DEAD_LETTER_HEADERS } from './dead-letters.ts'
export type { DedupeStore } from './dedupe.ts'
export type { Ordering } from './key-executor.ts'
export type { ConsumerOptions, StartFrom } from './options.ts'
export type {
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
} from './types.ts'
