/**
 * Encoding one partition's Kafka record batch: spillway's encoder beside the client library's, on the
 * same records, alternating in one process (no broker):
 *
 *   npm run bench -- record-batch      (or: node bench/record-batch.ts [records per batch] [rounds])
 *
 * Both produce the same wire format (magic v2, uncompressed, with producer id and sequence). Each side
 * starts from what it is handed in use: spillway from the record bodies its log stores, the library from
 * message objects (headers as a Map, a BigInt timestamp), whose building is counted on its side.
 */
import { createRecordsBatch } from '@platformatic/kafka'
import { encodeRecordBatch, encodeRecordBody } from '../src/transport/record-batch.ts'
import type { OutboundRecord } from '../src/transport/transport.ts'
import { printTable } from './report.ts'

const PER_BATCH = Number(process.argv[2] ?? 3000)
const ROUNDS = Number(process.argv[3] ?? 5)
const BATCHES = 20
const value = Buffer.alloc(1024, 'x')
const now = Date.now()
const events = Array.from({ length: PER_BATCH }, (_, i) => ({
  topic: 'bench',
  partition: 0,
  key: Buffer.from(`k${i % 64}`),
  value,
  headers: [['spillway-id', Buffer.alloc(36, i)]] as [string, Buffer][],
  timestamp: now + i,
}))
const records: OutboundRecord[] = events.map((e) => ({
  topic: e.topic,
  partition: e.partition,
  timestamp: e.timestamp,
  body: encodeRecordBody(e.key, e.value, e.headers),
}))
const indexes = records.map((_, i) => i)
const identity = { producerId: 5n, producerEpoch: 1 }
const headerName = Buffer.from('spillway-id')

function spillway(): number {
  let bytes = 0
  for (let b = 0; b < BATCHES; b++) bytes += encodeRecordBatch(records, indexes, identity, 7).length
  return bytes
}

function library(): number {
  let bytes = 0
  for (let b = 0; b < BATCHES; b++) {
    const messages = events.map((r) => ({
      topic: r.topic,
      partition: r.partition,
      key: r.key,
      value: r.value,
      headers: new Map(r.headers.map(([, v]) => [headerName, v])),
      timestamp: BigInt(r.timestamp),
    }))
    const writer = createRecordsBatch(messages as never, { ...identity, sequences: undefined } as never)
    bytes += writer.buffer.length
  }
  return bytes
}

const rows: string[][] = [['round', 'spillway µs/record', 'library µs/record', 'library / spillway']]
const ratios: number[] = []
for (let round = 0; round < ROUNDS; round++) {
  const time = (fn: () => number): number => {
    const started = performance.now()
    fn()
    return ((performance.now() - started) * 1000) / (BATCHES * PER_BATCH)
  }
  // the order alternates, so neither side always runs on a warmer heap
  let mine: number
  let theirs: number
  if (round % 2 === 0) {
    mine = time(spillway)
    theirs = time(library)
  } else {
    theirs = time(library)
    mine = time(spillway)
  }
  ratios.push(theirs / mine)
  rows.push([String(round), mine.toFixed(2), theirs.toFixed(2), (theirs / mine).toFixed(1)])
}
printTable(
  `one partition's record batch, ${PER_BATCH} records of 1 KiB with one header, ${BATCHES} batches per round`,
  rows,
)
const sorted = [...ratios].sort((a, b) => a - b)
console.log(`\nmedian library / spillway: ${(sorted[sorted.length >> 1] as number).toFixed(1)}×`)
