/**
 * A runnable producer: sends 1,000 events durably, shows the answers, waits for delivery and closes.
 *
 *   node examples/producer.ts [brokers]        e.g. node examples/producer.ts 127.0.0.1:9092
 *
 * Without brokers the events stay in ./.spillway/example-log and are delivered by the next run that
 * has brokers (same directory).
 */
import { createProducer } from '../src/index.ts'

const brokers = process.argv[2]?.split(',')
const producer = await createProducer({
  ...(brokers ? { brokers } : {}),
  log: { dir: './.spillway/example-log' },
})
producer.on('status', (status) => console.log('status:', status))

let accepted = 0
let refused = 0
for (let i = 0; i < 100; i++) {
  const events = Array.from({ length: 10 }, (_, j) => ({
    key: `customer-${(i * 10 + j) % 17}`,
    value: { order: i * 10 + j },
  }))
  for (const result of await producer.send('example-orders', events)) {
    if (result.status === 'accepted') accepted++
    else {
      refused++
      console.log('refused:', result.error.code, result.error.message)
    }
  }
}
console.log(`accepted ${accepted} (fsynced in the local log), refused ${refused}`)
if (brokers) console.log(`delivered: ${await producer.flush(30_000)}`, producer.stats().delivered)
await producer.close()
