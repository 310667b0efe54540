export { ID_HEADER } from './envelope.ts'
export type { AckMode, ProducerOptions } from './options.ts'
export { murmur2, partitionForKey } from './partitioner.ts'
export {
  createProducer,
  type EventInput,
  type ProducerStats,
  type ProducerStatus,
  type SendOptions,
  type SendResult,
  SpillwayProducer,
} from './producer.ts'
