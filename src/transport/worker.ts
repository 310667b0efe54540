/**
 * The cluster for machines with cores to spare: the Kafka client runs in a worker thread, so the CPU
 * it spends building and parsing requests (tens of ms for a 4 MiB batch) runs beside the main thread
 * instead of on it, and send() latency does not depend on what the client is doing.
 *
 * Its facets are built from the operation table (operations.ts): every method packs its arguments,
 * crosses, and unpacks the answer. It is still exactly one Kafka producer per cluster: the worker hosts
 * one PlatformaticCluster. If the worker dies, the calls under way end as ambiguous retriable failures
 * (the dispatcher then retries from the log) and the next call starts a new worker: a new Kafka
 * producer, counted in `initializations` like a rebuild.
 */
import { Worker } from 'node:worker_threads'
import type { AdminFacet, Cluster, GroupFacet, ProducerFacet } from './cluster.ts'
import { codecOf, type FacetName, type LateTickets, OPERATIONS, type OperationRequest } from './operations.ts'
import { type KafkaConnectionOptions, type RecordOutcome, TransportError } from './transport.ts'
import { errorFromWire, fromWire, type WireError, type WireOutcome } from './wire.ts'

type WorkerState = { readonly initializations: number; readonly producerId: bigint | undefined }

export type WorkerReply = { readonly id: number; readonly state: WorkerState } & (
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly error: WireError }
)

export type LateReply = { readonly late: number; readonly outcome: WireOutcome }

// Source runs as .ts (Node strips types), the published package as .js.
const entry = new URL(
  import.meta.url.endsWith('.ts') ? './worker-entry.ts' : './worker-entry.js',
  import.meta.url,
)
const CLOSE_WAIT_MS = 10_000

export class WorkerCluster implements Cluster {
  readonly #options: KafkaConnectionOptions
  #worker: Worker | undefined
  readonly #pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>()
  readonly #late = new Map<number, (outcome: RecordOutcome) => void>()
  #nextId = 1
  /** Kafka producers created by workers that have since exited. */
  #retiredInitializations = 0
  #state: WorkerState = { initializations: 0, producerId: undefined }
  #closed = false
  readonly producer: ProducerFacet
  readonly admin: AdminFacet
  readonly group: GroupFacet
  readonly #tickets: LateTickets = {
    ticket: () => {
      throw new Error('late tickets are issued by the worker')
    },
    late: (ticket) => new Promise((resolve) => this.#late.set(ticket, resolve)),
  }

  constructor(options: KafkaConnectionOptions) {
    this.#options = options
    this.#worker = this.#start()
    this.producer = Object.defineProperties(this.#facet('producer') as unknown as ProducerFacet, {
      initializations: { get: () => this.#retiredInitializations + this.#state.initializations },
      producerId: { get: () => this.#state.producerId },
    })
    this.admin = this.#facet('admin') as unknown as AdminFacet
    this.group = this.#facet('group') as unknown as GroupFacet
  }

  /** An object with one method per operation of the facet, each a call to the worker. */
  #facet(facet: FacetName): Record<string, (...args: unknown[]) => Promise<unknown>> {
    const methods: Record<string, (...args: unknown[]) => Promise<unknown>> = {}
    for (const op of Object.keys(OPERATIONS[facet])) {
      const codec = codecOf(facet, op)
      methods[op] = async (...args) => {
        const packed = codec.args ? codec.args.pack(args) : { value: args, transfer: [] }
        const value = await this.#call(facet, op, packed.value, packed.transfer)
        return codec.result ? codec.result.unpack(value, this.#tickets) : value
      }
    }
    return methods
  }

  /** The worker's thread id, while one runs (for tests and diagnostics). */
  get threadId(): number | undefined {
    return this.#worker?.threadId
  }

  #start(): Worker {
    const worker = new Worker(entry, { workerData: { options: this.#options } })
    // The producer counts as created from the start, as the in-thread cluster's does once used.
    this.#state = { initializations: 1, producerId: undefined }
    worker.unref()
    worker.on('message', (message: WorkerReply | LateReply) => {
      if ('late' in message) {
        const settle = this.#late.get(message.late)
        this.#late.delete(message.late)
        settle?.(fromWire(message.outcome))
        return
      }
      this.#state = message.state
      const call = this.#pending.get(message.id)
      this.#pending.delete(message.id)
      if (this.#pending.size === 0) worker.unref()
      if (!call) return
      if (message.ok) call.resolve(message.value)
      else call.reject(errorFromWire(message.error))
    })
    // An uncaught error ends the thread; 'exit' follows and settles everything still waiting on it.
    worker.on('error', () => undefined)
    worker.on('exit', (code) => {
      if (this.#worker !== worker) return
      this.#worker = undefined
      this.#retiredInitializations += this.#state.initializations
      this.#state = { initializations: 0, producerId: undefined }
      const reason = this.#closed
        ? 'the transport was closed'
        : `the transport worker exited with code ${code}`
      for (const call of this.#pending.values()) call.reject(new TransportError(reason, 'retriable', true))
      this.#pending.clear()
      for (const settle of this.#late.values())
        settle({ kind: 'error', errorClass: 'retriable', reason, ambiguous: true })
      this.#late.clear()
    })
    return worker
  }

  #call(
    facet: FacetName | 'cluster',
    op: string,
    args: unknown,
    transfer: ArrayBuffer[] = [],
  ): Promise<unknown> {
    if (this.#closed) return Promise.reject(new TransportError('the transport is closed', 'retriable', false))
    this.#worker ??= this.#start()
    const worker = this.#worker
    const id = this.#nextId++
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject })
      worker.ref()
      worker.postMessage({ id, facet, op, args } as OperationRequest | ClusterRequest, transfer)
    })
  }

  /** @internal Ends the worker thread at once, the way a crash would. For tests of that path. */
  async _kill(): Promise<void> {
    await this.#worker?.terminate()
  }

  /** Closes the Kafka clients in the worker (bounded wait), then ends the thread. */
  async close(): Promise<void> {
    if (this.#closed) return
    const worker = this.#worker
    if (!worker) {
      this.#closed = true
      return
    }
    const closing = this.#call('cluster', 'close', []).catch(() => undefined)
    this.#closed = true
    let timer: NodeJS.Timeout | undefined
    await Promise.race([closing, new Promise((resolve) => (timer = setTimeout(resolve, CLOSE_WAIT_MS)))])
    clearTimeout(timer)
    await worker.terminate()
  }
}

/** The one request that is not a facet operation: closing the cluster in the worker. */
export interface ClusterRequest {
  readonly id: number
  readonly facet: 'cluster'
  readonly op: 'close'
  readonly args: unknown
}
