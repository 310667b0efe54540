/**
 * The transport for machines with cores to spare: the Kafka client runs in a worker thread, so the CPU
 * it spends building and parsing requests (tens of ms for a 4 MiB batch) runs beside the main thread
 * instead of on it, and send() latency does not depend on what the client is doing.
 *
 * It is still exactly one Kafka producer per transport: the worker hosts one PlatformaticTransport.
 * Records cross as one transferred buffer (see wire.ts). If the worker dies, the calls under way end
 * as ambiguous retriable failures (the dispatcher then retries from the log) and the next call starts
 * a new worker: a new Kafka producer, counted in `initializations` like a rebuild.
 */
import { Worker } from 'node:worker_threads'
import {
  type KafkaConnectionOptions,
  type OutboundRecord,
  type ProducerDescription,
  type RecordOutcome,
  type Transport,
  TransportError,
} from './transport.ts'
import {
  errorFromWire,
  fromWire,
  type PackedRecords,
  packRecords,
  unpackOutcomes,
  type WireError,
  type WireOutcome,
  type WireOutcomes,
} from './wire.ts'

export type WorkerRequest = { readonly id: number } & (
  | { readonly op: 'send'; readonly records: PackedRecords; readonly deadlineMs: number }
  | { readonly op: 'partitions'; readonly topic: string; readonly deadlineMs: number }
  | { readonly op: 'rebuild'; readonly reason: string }
  | { readonly op: 'describeProducers'; readonly topics: readonly string[]; readonly deadlineMs: number }
  | { readonly op: 'close' }
)

type WorkerState = { readonly initializations: number; readonly producerId: bigint | undefined }

export type WorkerReply = { readonly id: number; readonly state: WorkerState } & (
  | { readonly ok: true; readonly value: unknown }
  | { readonly ok: false; readonly error: WireError }
)

type LateReply = { readonly late: number; readonly outcome: WireOutcome }

// Source runs as .ts (Node strips types), the published package as .js.
const entry = new URL(
  import.meta.url.endsWith('.ts') ? './worker-entry.ts' : './worker-entry.js',
  import.meta.url,
)
const CLOSE_WAIT_MS = 10_000

type Request = WorkerRequest extends infer R ? (R extends WorkerRequest ? Omit<R, 'id'> : never) : never

export class WorkerTransport implements Transport {
  readonly #options: KafkaConnectionOptions
  #worker: Worker | undefined
  readonly #pending = new Map<number, { resolve(value: unknown): void; reject(error: Error): void }>()
  readonly #late = new Map<number, (outcome: RecordOutcome) => void>()
  #nextId = 1
  /** Kafka producers created by workers that have since exited. */
  #retiredInitializations = 0
  #state: WorkerState = { initializations: 0, producerId: undefined }
  #closed = false

  constructor(options: KafkaConnectionOptions) {
    this.#options = options
    this.#worker = this.#start()
  }

  get initializations(): number {
    return this.#retiredInitializations + this.#state.initializations
  }

  /** The idempotent producer id, once the first send has initialised it. */
  get producerId(): bigint | undefined {
    return this.#state.producerId
  }

  /** The worker's thread id, while one runs (for tests and diagnostics). */
  get threadId(): number | undefined {
    return this.#worker?.threadId
  }

  #start(): Worker {
    const worker = new Worker(entry, {
      workerData: { options: this.#options },
    })
    // The producer counts as created from the start, as the in-thread transport's does.
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

  #call(request: Request, transfer: ArrayBuffer[] = []): Promise<unknown> {
    if (this.#closed) return Promise.reject(new TransportError('the transport is closed', 'retriable', false))
    this.#worker ??= this.#start()
    const worker = this.#worker
    const id = this.#nextId++
    return new Promise((resolve, reject) => {
      this.#pending.set(id, { resolve, reject })
      worker.ref()
      worker.postMessage({ ...request, id }, transfer)
    })
  }

  #lateOutcome(ticket: number): Promise<RecordOutcome> {
    return new Promise((resolve) => this.#late.set(ticket, resolve))
  }

  async send(records: readonly OutboundRecord[], deadlineMs: number): Promise<RecordOutcome[]> {
    const packed = packRecords(records)
    const wire = (await this.#call({ op: 'send', records: packed, deadlineMs }, [
      packed.buffer,
    ])) as WireOutcomes
    return unpackOutcomes(wire, (ticket) => this.#lateOutcome(ticket))
  }

  async partitions(topic: string, deadlineMs: number): Promise<number> {
    return (await this.#call({ op: 'partitions', topic, deadlineMs })) as number
  }

  async rebuild(reason: string): Promise<void> {
    await this.#call({ op: 'rebuild', reason })
  }

  async describeProducers(topics: readonly string[], deadlineMs: number): Promise<ProducerDescription[]> {
    return (await this.#call({ op: 'describeProducers', topics, deadlineMs })) as ProducerDescription[]
  }

  /** Ends the worker thread at once, the way a crash would. For tests of that path. */
  async _kill(): Promise<void> {
    await this.#worker?.terminate()
  }

  /** Closes the Kafka producer in the worker (bounded wait), then ends the thread. */
  async close(): Promise<void> {
    if (this.#closed) return
    const worker = this.#worker
    if (!worker) {
      this.#closed = true
      return
    }
    const closing = this.#call({ op: 'close' }).catch(() => undefined)
    this.#closed = true
    let timer: NodeJS.Timeout | undefined
    await Promise.race([closing, new Promise((resolve) => (timer = setTimeout(resolve, CLOSE_WAIT_MS)))])
    clearTimeout(timer)
    await worker.terminate()
  }
}
