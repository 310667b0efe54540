/**
 * The transport's worker thread: it owns the process's cluster object (a PlatformaticCluster, so one
 * Kafka producer) and answers the WorkerCluster's requests through the operation table. Building Kafka
 * requests costs tens of milliseconds of CPU for a large batch; here that never delays the main thread.
 */
import { parentPort, workerData } from 'node:worker_threads'
import { codecOf, type LateTickets, type OperationRequest } from './operations.ts'
import { PlatformaticCluster } from './platformatic.ts'
import { errorToWire, toWire } from './wire.ts'
import type { ClusterRequest, LateReply, WorkerReply } from './worker.ts'

const port = parentPort
if (!port) throw new Error('worker-entry.ts runs only as a worker thread')

const cluster = new PlatformaticCluster(workerData.options)
let nextTicket = 1

const tickets: LateTickets = {
  ticket(late) {
    const id = nextTicket++
    void late.then((outcome) => port?.postMessage({ late: id, outcome: toWire(outcome) } satisfies LateReply))
    return id
  },
  late() {
    throw new Error('late outcomes are awaited on the main thread')
  },
}

function state(): WorkerReply['state'] {
  // read without creating the producer: an admin-only cluster has made none
  const producer = cluster.producerIfMade
  return { initializations: producer?.initializations ?? 1, producerId: producer?.producerId }
}

async function handle(request: OperationRequest | ClusterRequest): Promise<unknown> {
  if (request.facet === 'cluster') return await cluster.close()
  const codec = codecOf(request.facet, request.op)
  const args = codec.args ? codec.args.unpack(request.args) : (request.args as unknown[])
  const facet = cluster[request.facet] as unknown as Record<string, (...a: unknown[]) => Promise<unknown>>
  const method = facet[request.op] as (...a: unknown[]) => Promise<unknown>
  const result = await method.apply(facet, args)
  return codec.result ? codec.result.pack(result, tickets) : result
}

port.on('message', (request: OperationRequest | ClusterRequest) => {
  handle(request).then(
    (value) => {
      port.postMessage({ id: request.id, ok: true, value, state: state() } satisfies WorkerReply)
      if (request.facet === 'cluster') port.close()
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
