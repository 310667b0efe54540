export { createProducer, type EventInput, type ProducerStats, type ProducerStatus, type SendOptions, type SendResult, SpillwayProducer } from './producer.ts'
export type { AckMode, ProducerOptions } from './options.ts'
export { ID_HEADER } from './envelope.ts'
export { partitionForKey, murmur2 } from './partitioner.ts'
