/**
 * The transport's worker thread: it owns the process's one Kafka producer (a PlatformaticTransport)
 * and answers the requests of the WorkerTransport on the main thread. Building Kafka requests costs
 * tens of milliseconds of CPU for a large batch; here that never delays the main thread's send().
 */
import { parentPort, workerData } from 'node:worker_threads'
import { PlatformaticTransport } from './platformatic.ts'
import type { RecordOutcome } from './transport.ts'
import { errorToWire, packOutcomes, toWire, unpackRecords } from './wire.ts'
import type { WorkerReply, WorkerRequest } from './worker.ts'

const port = parentPort
if (!port) throw new Error('worker-entry.ts runs only as a worker thread')

const transport = new PlatformaticTransport(workerData.options)
let nextTicket = 1

function state(): WorkerReply['state'] {
  return { initializations: transport.initializations, producerId: transport.producerId }
}

function ticket(late: Promise<RecordOutcome>): number {
  const id = nextTicket++
  void late.then((outcome) => port?.postMessage({ late: id, outcome: toWire(outcome) }))
  return id
}

async function handle(request: WorkerRequest): Promise<unknown> {
  switch (request.op) {
    case 'send':
      return packOutcomes(await transport.send(unpackRecords(request.records), request.deadlineMs), ticket)
    case 'partitions':
      return transport.partitions(request.topic, request.deadlineMs)
    case 'rebuild':
      return transport.rebuild(request.reason)
    case 'describeProducers':
      return transport.describeProducers(request.topics, request.deadlineMs)
    case 'close':
      return transport.close()
  }
}

port.on('message', (request: WorkerRequest) => {
  handle(request).then(
    (value) => {
      port.postMessage({ id: request.id, ok: true, value, state: state() } satisfies WorkerReply)
      if (request.op === 'close') port.close()
    },
    (error: unknown) =>
      port.postMessage({
        id: request.id,
        ok: false,
        error: errorToWire(error),
        state: state(),
      } satisfies WorkerReply),
  )
})
