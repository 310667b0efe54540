/**
 * A runnable consumer: reads what examples/producer.ts wrote, one key in order and keys in parallel,
 * prints each order, and closes gracefully on Ctrl-C (what is done is committed).
 *
 *   node examples/consumer.ts 127.0.0.1:9092 [group]
 */
import { createConsumer } from '../src/index.ts'

const brokers = process.argv[2]?.split(',')
if (!brokers) {
  console.error('usage: node examples/consumer.ts host:port[,host:port…] [group]')
  process.exit(2)
}
const consumer = createConsumer({
  brokers,
  groupId: process.argv[3] ?? 'example-orders-reader',
  topics: ['example-orders'],
  handler: async (record) => {
    const order = JSON.parse(String(record.value)) as { order: number }
    console.log(
      `${record.key?.toString()} order ${order.order} (id ${record.id}, partition ${record.partition})`,
    )
  },
})
consumer.on('status', (status) => {
  if (status.type !== 'record-error') console.log('status:', JSON.stringify(status))
})
process.once('SIGINT', () => {
  void consumer.close().then(() => console.log(consumer.stats().handled, 'orders handled'))
})
await consumer.run()
