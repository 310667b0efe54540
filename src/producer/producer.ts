/**
 * The spillway producer: every send gets an immediate, honest answer. In `durable` mode an event is
 * accepted once it is fsynced in the local log, and the request path never touches the Kafka client;
 * a dispatcher delivers the log to Kafka behind it. See docs/producer.md and docs/guarantees.md.
 */
import dc from 'node:diagnostics_channel'
import { EventEmitter, on } from 'node:events'
import { readFileSync } from 'node:fs'
import { type FileHandle, open } from 'node:fs/promises'
import { join } from 'node:path'
import { Breaker, type BreakerState } from '../breaker/breaker.ts'
import { isSpillwayError, SpillwayError } from '../errors.ts'
import { DurableLog, type LogStats } from '../log/log.ts'
import { StateMachine } from '../state-machine.ts'
import { Histogram, type MetricSpec, Registry, registerSourcedMetrics } from '../telemetry/metrics.ts'
import { isTopicName, TOPIC_NAME_RULE } from '../topic-name.ts'
import { acquireCluster, type ClusterLease, transportStats } from '../transport/registry.ts'
import { type Backlog, MemoryBacklog } from './backlog.ts'
import { Dispatcher, type DispatcherDeps, type PoisonedRecord } from './dispatcher.ts'
import { type Envelope, encodeEnvelope, envelopeSize, writeEnvelope } from './envelope.ts'
import {
  type AckMode,
  type ProducerOptions,
  type ResolvedProducerOptions,
  resolveProducerOptions,
} from './options.ts'
import { uuidv7 } from './uuidv7.ts'

/** One event handed to send(). */
export interface EventInput {
  /** Bytes, a string, or anything JSON-serialisable (sent as JSON). */
  readonly value: Buffer | Uint8Array | string | number | boolean | object | null
  readonly key?: string | Buffer
  readonly headers?: Readonly<Record<string, string | Buffer>>
  /** The caller's idempotency key; becomes the event id. Default: a new UUIDv7. */
  readonly id?: string
  /** Event time (ms or Date). Default: now. */
  readonly timestamp?: number | Date
  /** An explicit partition. Default: chosen from the key like the Java client (murmur2). */
  readonly partition?: number
}

export type SendResult =
  | { readonly status: 'accepted'; readonly id: string; readonly durable: boolean; readonly acked: boolean }
  | { readonly status: 'refused'; readonly id: string | undefined; readonly error: SpillwayError }

export interface SendOptions {
  /** Refuse every event if any one is invalid. Default false. */
  readonly atomic?: boolean
}

export type ProducerState = 'running' | 'closing' | 'closed'

const LIFECYCLE: Record<ProducerState, readonly ProducerState[]> = {
  running: ['closing'],
  closing: ['closed'],
  closed: [],
}

/** What the status stream yields. */
export type ProducerStatus =
  | {
      readonly type: 'breaker'
      readonly from: BreakerState
      readonly to: BreakerState
      readonly reason: string
    }
  | {
      readonly type: 'lifecycle'
      readonly from: ProducerState
      readonly to: ProducerState
      readonly reason: string
    }
  | {
      readonly type: 'dead-letter'
      readonly id: string | undefined
      readonly topic: string | undefined
      readonly reason: string
      /** Set when the event goes on to this dead-letter topic (deadLetterTopics). */
      readonly deadLetterTopic?: string
    }
  | { readonly type: 'delivery-failure'; readonly reason: string }

export interface ProducerStats {
  readonly state: ProducerState
  readonly ack: AckMode
  readonly breaker: BreakerState
  readonly accepted: number
  readonly refused: number
  readonly refusedByCode: Readonly<Record<string, number>>
  readonly delivered: number
  readonly replayed: number
  readonly deadLettered: number
  /** Dead letters delivered to their dead-letter topic. */
  readonly deadLettersDelivered: number
  readonly failedBatches: number
  readonly rebuilds: number
  readonly inflightBytes: number
  readonly kafkaProducerInits: number
  readonly transportsCreated: number
  readonly log: LogStats | undefined
  readonly memory: { readonly bytes: number; readonly records: number; readonly maxBytes: number } | undefined
  readonly lastError: string | undefined
}

const channels = {
  send: dc.channel('spillway:producer:send'),
  refused: dc.channel('spillway:producer:refused'),
}

/** An admitted event: its envelope, with the size of its encoding, written straight into the log. */
interface Prepared extends Envelope {
  /** Set once the envelope exists: its size is computed from it. */
  size: number
}

/** A poison record as a dead letter: its event with `headers` (and `topic`, if given). */
function deadLetterOf(
  record: PoisonedRecord,
  headers: readonly (readonly [string, Buffer])[],
  topic?: string,
): Envelope {
  const e = record.envelope
  if (e) return { ...e, topic: topic || e.topic, headers }
  // an envelope that cannot be decoded is kept whole, as the value
  return {
    id: `undecodable-${record.seq}`,
    topic: '',
    key: undefined,
    value: record.payload,
    headers,
    timestamp: Date.now(),
  }
}

/** An event refused at admission, with the id it came with (if any). */
interface Invalid {
  readonly error: SpillwayError
  readonly id: string | undefined
}

function badEvent(e: EventInput | null | undefined, index: number, name: string, message: string): Invalid {
  const field = name ? `events[${index}].${name}` : `events[${index}]`
  return {
    id: typeof e?.id === 'string' ? e.id : undefined,
    error: new SpillwayError('SPW_ERR_BAD_REQUEST', `${field} ${message}`, { details: { field } }),
  }
}

interface AckWaiter {
  readonly end: bigint
  readonly start: bigint
  readonly poisoned: Map<bigint, string>
  /** Settles the send: events with a seq below `deliveredBelow` reached Kafka, the others did not. */
  readonly resolve: (deliveredBelow: bigint, why: 'acked' | 'timeout' | 'closed') => void
}

const utf8 = new TextEncoder()
/** Most events carry no headers: they share one empty list. */
const NO_HEADERS: readonly [string, Buffer][] = Object.freeze([])

function toBuffer(value: EventInput['value']): Buffer {
  if (Buffer.isBuffer(value)) return value
  if (value instanceof Uint8Array) return Buffer.from(value.buffer, value.byteOffset, value.byteLength)
  if (typeof value === 'string') return Buffer.from(utf8.encode(value))
  return Buffer.from(JSON.stringify(value))
}

export class SpillwayProducer extends EventEmitter<{ status: [ProducerStatus] }> {
  readonly options: ResolvedProducerOptions
  readonly lifecycle: StateMachine<ProducerState>
  readonly breaker: Breaker
  readonly metrics: Registry
  readonly #backlog: Backlog
  readonly #log: DurableLog | undefined
  readonly #deadLetterLog: DurableLog | undefined
  /** Dead letters bound for a dead-letter topic, and the dispatcher that delivers them. */
  readonly #outbox: { readonly log: DurableLog; dispatcher?: Dispatcher } | undefined
  readonly #memory: MemoryBacklog | undefined
  readonly #lease: ClusterLease | undefined
  readonly #dispatcher: Dispatcher | undefined
  /** The durable log's "sent up to" mark: owned here, read and written by the dispatcher. */
  readonly #sentMark: SentMark | undefined
  #waiters: AckWaiter[] = []
  readonly #metricLabels: Readonly<Record<string, string>>
  #unregisterMetrics: (() => void) | undefined
  #accepted = 0
  #refused = 0
  #refusedByCode: Record<string, number> = {}

  /** @internal use createProducer() */
  constructor(init: {
    options: ResolvedProducerOptions
    log: DurableLog | undefined
    deadLetterLog: DurableLog | undefined
    outboxLog?: DurableLog | undefined
    registry: Registry | undefined
    metricLabels?: Readonly<Record<string, string>> | undefined
  }) {
    super()
    const options = init.options
    this.options = options
    this.lifecycle = new StateMachine<ProducerState>('producer', 'running', LIFECYCLE)
    this.breaker = new Breaker(options.breaker)
    this.metrics = init.registry ?? new Registry()
    this.#metricLabels = init.metricLabels ?? {}
    this.#log = init.log
    this.#deadLetterLog = init.deadLetterLog
    this.#outbox = init.outboxLog ? { log: init.outboxLog } : undefined
    // first, before any delivery starts: a clash on a shared registry throws here with nothing to undo
    this.#registerMetrics()
    if (options.ack === 'durable') {
      this.#backlog = init.log as DurableLog
    } else {
      this.#memory = new MemoryBacklog(options.memoryBytes)
      this.#backlog = this.#memory
    }
    this.lifecycle.on('transition', (t) => this.emit('status', { type: 'lifecycle', ...t }))
    this.breaker.machine.on('transition', (t) => this.emit('status', { type: 'breaker', ...t }))

    if (options.brokers) {
      const connection = {
        brokers: options.brokers,
        clientId: options.clientId,
        requestTimeoutMs: Math.max(100, Math.floor(options.deliveryTimeoutMs / 2)),
        thread: options.transportThread,
        metadataMaxAgeMs: options.metadataMaxAgeMs,
        ...(options.tls ? { tls: options.tls } : {}),
        ...(options.sasl ? { sasl: options.sasl } : {}),
      }
      this.#lease = acquireCluster(connection, {
        lingerMs: options.transportLingerMs,
        churnPerMinute: options.churnPerMinute,
      })
      const lease = this.#lease
      // only the durable log's seqs survive a restart; a memory backlog starts again at 0 each time
      this.#sentMark =
        options.ack === 'durable' && init.log
          ? sentMarkFile(join(init.log.options.dir, 'dispatch-mark'))
          : undefined
      const dispatch = {
        batchBytes: options.batch.maxBytes,
        batchRecords: options.batch.maxRecords,
        partitionBytes: options.batch.maxPartitionBytes,
        lingerMs: options.batch.lingerMs,
        deadlineMs: options.deliveryTimeoutMs,
      }
      this.#dispatcher = new Dispatcher(dispatch, {
        backlog: this.#backlog,
        cluster: () => lease.cluster,
        breaker: this.breaker,
        deadLetter: (record) => this.#deadLetter(record),
        ...(this.#sentMark ? { sentMark: this.#sentMark } : {}),
      })
      this.#dispatcher.on('delivered', (next) => this.#settleWaiters(next))
      this.#dispatcher.on('poisoned', (record) => {
        for (const w of this.#waiters)
          if (record.seq >= w.start && record.seq < w.end) w.poisoned.set(record.seq, record.reason)
      })
      this.#dispatcher.on('failure', (reason) => this.emit('status', { type: 'delivery-failure', reason }))
      this.#dispatcher.start()
      if (this.#outbox) {
        // its own breaker: a dead-letter topic that fails must not hold up the events themselves
        this.#outbox.dispatcher = new Dispatcher(dispatch, {
          backlog: this.#outbox.log,
          cluster: () => lease.cluster,
          breaker: new Breaker(options.breaker),
          deadLetter: (record) => this.#keepDeadLetter(record),
        })
        this.#outbox.dispatcher.start()
      }
    }
  }

  /**
   * Admits events. Never waits on the Kafka client: `durable` answers after the local fsync, `memory`
   * at once, `kafka` after Kafka's ack (refusing at once while the breaker is not closed).
   */
  async send(topic: string, events: readonly EventInput[], options: SendOptions = {}): Promise<SendResult[]> {
    return await this.#send(
      events.length,
      () => topic,
      (i) => events[i] as EventInput,
      options,
    )
  }

  /**
   * Like send(), for events bound to different topics. All of them go into the log in one append, so
   * with `atomic` a request is all or nothing even across topics.
   */
  async sendTo(
    items: readonly { readonly topic: string; readonly event: EventInput }[],
    options: SendOptions = {},
  ): Promise<SendResult[]> {
    return await this.#send(
      items.length,
      (i) => items[i]?.topic as string,
      (i) => items[i]?.event as EventInput,
      options,
    )
  }

  async #send(
    count: number,
    topicOf: (index: number) => string,
    eventOf: (index: number) => EventInput,
    options: SendOptions,
  ): Promise<SendResult[]> {
    if (!this.lifecycle.is('running')) {
      const error = new SpillwayError('SPW_ERR_CLOSED', 'the producer is closing or closed')
      return Array.from({ length: count }, (_, i) => this.#refuse(eventOf(i)?.id, error))
    }
    const now = Date.now()
    const prepared: (Prepared | Invalid)[] = new Array(count)
    const valid: Prepared[] = []
    let invalid: Invalid | undefined
    for (let i = 0; i < count; i++) {
      const p = this.#prepare(topicOf(i), eventOf(i), i, now)
      prepared[i] = p
      if ('error' in p) invalid ??= p
      else valid.push(p)
    }
    if (invalid && options.atomic) {
      const cause = invalid.error.code
      return prepared.map((p) =>
        'error' in p
          ? this.#refuse(p.id, p.error)
          : this.#refuse(
              p.id,
              new SpillwayError(
                'SPW_ERR_BAD_REQUEST',
                'refused because another event in the same request is invalid',
                { details: { cause } },
              ),
            ),
      )
    }
    const outcome = valid.length > 0 ? await this.#admit(valid) : []
    if (!invalid) return outcome
    let next = 0
    return prepared.map((p) => ('error' in p ? this.#refuse(p.id, p.error) : (outcome[next++] as SendResult)))
  }

  /** The last topic name that passed validation: a request's events nearly always share one. */
  #validTopic = ''

  #prepare(topic: string, e: EventInput, index: number, now: number): Prepared | Invalid {
    if (topic !== this.#validTopic) {
      if (!isTopicName(topic)) {
        return {
          id: typeof e?.id === 'string' ? e.id : undefined,
          error: new SpillwayError(
            'SPW_ERR_BAD_REQUEST',
            `topic ${JSON.stringify(topic)} is not ${TOPIC_NAME_RULE}`,
            { details: { field: 'topic' } },
          ),
        }
      }
      this.#validTopic = topic
    }
    if (typeof e !== 'object' || e === null) return badEvent(e, index, '', 'must be an object')
    if (e.value === undefined) return badEvent(e, index, 'value', 'is required')
    if (
      e.id !== undefined &&
      (typeof e.id !== 'string' || e.id.length === 0 || Buffer.byteLength(e.id) > 200)
    ) {
      return badEvent(e, index, 'id', 'must be a string of 1 to 200 bytes')
    }
    if (e.key !== undefined && typeof e.key !== 'string' && !Buffer.isBuffer(e.key))
      return badEvent(e, index, 'key', 'must be a string or bytes')
    let headers: [string, Buffer][] | undefined
    if (e.headers !== undefined) {
      if (typeof e.headers !== 'object' || e.headers === null)
        return badEvent(e, index, 'headers', 'must be an object')
      for (const name in e.headers) {
        if (!Object.hasOwn(e.headers, name)) continue
        const value = e.headers[name]
        if (typeof value !== 'string' && !Buffer.isBuffer(value))
          return badEvent(e, index, `headers.${name}`, 'must be a string or bytes')
        headers ??= []
        headers.push([name, typeof value === 'string' ? Buffer.from(value) : value])
      }
    }
    let timestamp = now
    if (e.timestamp !== undefined) {
      timestamp = e.timestamp instanceof Date ? e.timestamp.getTime() : e.timestamp
      if (!Number.isFinite(timestamp) || timestamp < 0)
        return badEvent(e, index, 'timestamp', 'must be a non-negative number of ms or a Date')
    }
    if (
      e.partition !== undefined &&
      (!Number.isInteger(e.partition) || e.partition < 0 || e.partition > 0x7fffffff)
    ) {
      return badEvent(e, index, 'partition', 'must be a non-negative integer')
    }
    let value: Buffer
    try {
      value = toBuffer(e.value)
    } catch (error) {
      return badEvent(e, index, 'value', `cannot be serialised: ${(error as Error).message}`)
    }
    // one object per event: the envelope, and then its encoded size, which decides here
    const envelope: Prepared = {
      id: e.id ?? uuidv7(now),
      topic,
      key: e.key === undefined ? undefined : typeof e.key === 'string' ? Buffer.from(e.key) : e.key,
      value,
      headers: headers ?? NO_HEADERS,
      timestamp: Math.floor(timestamp),
      partition: e.partition,
      size: 0,
    }
    const size = envelopeSize(envelope)
    envelope.size = size
    if (size > this.options.maxEventBytes) {
      const field = `events[${index}].value`
      return {
        id: envelope.id,
        error: new SpillwayError(
          'SPW_ERR_RECORD_TOO_LARGE',
          `${field}: the event is ${size} bytes, over maxEventBytes (${this.options.maxEventBytes})`,
          { details: { field, bytes: size, max: this.options.maxEventBytes } },
        ),
      }
    }
    return envelope
  }

  async #admit(prepared: readonly Prepared[]): Promise<SendResult[]> {
    const envelopes: readonly Envelope[] = prepared
    const mode = this.options.ack
    if (mode === 'kafka' && !this.breaker.isClosed()) {
      const error = new SpillwayError(
        'SPW_ERR_UNAVAILABLE',
        `Kafka is unavailable (breaker ${this.breaker.state}); retry later`,
        {
          details: { retryAfterMs: Math.ceil(this.breaker.retryInMs()) || this.options.breaker.cooldownMs },
        },
      )
      return envelopes.map((e) => this.#refuse(e.id, error))
    }
    let appended: { firstSeq: bigint; count: number }
    try {
      appended = await this.#backlog.append({
        sizes: prepared.map((p) => p.size),
        write: (i, target, offset) => {
          const p = prepared[i] as Prepared
          writeEnvelope(p, target, offset, p.size)
        },
      })
    } catch (error) {
      const mapped = this.#mapAppendError(error)
      return envelopes.map((e) => this.#refuse(e.id, mapped))
    }
    if (mode !== 'kafka') {
      this.#accepted += envelopes.length
      if (channels.send.hasSubscribers) channels.send.publish({ count: envelopes.length, mode })
      return envelopes.map((e) => ({
        status: 'accepted',
        id: e.id,
        durable: mode === 'durable',
        acked: false,
      }))
    }
    return await this.#awaitAck(envelopes, appended.firstSeq)
  }

  #mapAppendError(error: unknown): SpillwayError {
    if (isSpillwayError(error, 'SPW_ERR_LOG_FULL')) {
      return new SpillwayError('SPW_ERR_BACKPRESSURE', `the local log is full: ${error.message}`, {
        cause: error,
        details: error.details,
      })
    }
    if (isSpillwayError(error, 'SPW_ERR_LOG_CLOSED'))
      return new SpillwayError('SPW_ERR_CLOSED', 'the producer is closing', { cause: error })
    if (isSpillwayError(error)) return error
    return new SpillwayError('SPW_ERR_LOG_IO', `append failed: ${(error as Error).message}`, { cause: error })
  }

  async #awaitAck(envelopes: readonly Envelope[], firstSeq: bigint): Promise<SendResult[]> {
    const end = firstSeq + BigInt(envelopes.length)
    const poisoned = new Map<bigint, string>()
    let timer: NodeJS.Timeout | undefined
    const settled = await new Promise<{ below: bigint; why: 'acked' | 'timeout' | 'closed' }>((resolve) => {
      const waiter: AckWaiter = {
        start: firstSeq,
        end,
        poisoned,
        resolve: (below, why) => resolve({ below, why }),
      }
      this.#waiters.push(waiter)
      if (this.#backlog.cursor.seq >= end) this.#settleWaiters(this.#backlog.cursor.seq)
      timer = setTimeout(() => {
        this.#waiters = this.#waiters.filter((w) => w !== waiter)
        resolve({ below: firstSeq, why: 'timeout' })
      }, this.options.deliveryTimeoutMs)
    })
    clearTimeout(timer)
    return envelopes.map((e, i) => {
      const seq = firstSeq + BigInt(i)
      const reason = poisoned.get(seq)
      if (reason !== undefined) {
        return this.#refuse(
          e.id,
          new SpillwayError('SPW_ERR_POISON', `Kafka will not take this event: ${reason}`, {
            details: { reason },
          }),
        )
      }
      if (seq >= settled.below && settled.why === 'closed') {
        return this.#refuse(
          e.id,
          new SpillwayError(
            'SPW_ERR_CLOSED',
            'the producer closed before Kafka acknowledged this event; it was not delivered, send it again',
          ),
        )
      }
      if (seq >= settled.below) {
        return this.#refuse(
          e.id,
          new SpillwayError(
            'SPW_ERR_TIMEOUT',
            `no ack from Kafka within ${this.options.deliveryTimeoutMs} ms; the event may still be delivered`,
            {
              details: { deadlineMs: this.options.deliveryTimeoutMs },
            },
          ),
        )
      }
      this.#accepted++
      return { status: 'accepted', id: e.id, durable: false, acked: true }
    })
  }

  #settleWaiters(next: bigint): void {
    if (this.#waiters.length === 0) return
    const keep: AckWaiter[] = []
    for (const w of this.#waiters) {
      if (w.end <= next) w.resolve(w.end, 'acked')
      else keep.push(w)
    }
    this.#waiters = keep
  }

  #refuse(id: string | undefined, error: SpillwayError): SendResult {
    this.#refused++
    this.#refusedByCode[error.code] = (this.#refusedByCode[error.code] ?? 0) + 1
    if (channels.refused.hasSubscribers) channels.refused.publish({ id, code: error.code })
    return { status: 'refused', id, error }
  }

  async #deadLetter(record: PoisonedRecord): Promise<void> {
    const e = record.envelope
    const routes = this.options.deadLetterTopics
    const route = e && this.#outbox ? (routes[e.topic] ?? routes['*']) : undefined
    this.emit('status', {
      type: 'dead-letter',
      id: e?.id,
      topic: e?.topic,
      reason: record.reason,
      ...(route ? { deadLetterTopic: route } : {}),
    })
    if (!this.#deadLetterLog) return // memory/kafka modes: counted, reported on the status stream and to kafka-mode callers
    const headers: (readonly [string, Buffer])[] = [
      ...(e?.headers ?? []),
      ['spillway-dead-letter-reason', Buffer.from(record.reason)],
      ['spillway-original-topic', Buffer.from(e?.topic ?? '')],
    ]
    const letter = deadLetterOf(record, headers)
    if (route && this.#outbox) {
      // the dead-letter topic chooses its own partition from the key
      await this.#outbox.log.append([encodeEnvelope({ ...letter, topic: route, partition: undefined })])
      return
    }
    await this.#deadLetterLog.append([encodeEnvelope(letter)])
  }

  /** A dead letter its dead-letter topic refused as well: kept in the dead-letter log, under its own topic. */
  async #keepDeadLetter(record: PoisonedRecord): Promise<void> {
    const e = record.envelope
    this.emit('status', { type: 'dead-letter', id: e?.id, topic: e?.topic, reason: record.reason })
    const original = e?.headers.find(([name]) => name === 'spillway-original-topic')?.[1].toString()
    const headers: (readonly [string, Buffer])[] = [
      ...(e?.headers ?? []),
      ['spillway-dead-letter-topic-error', Buffer.from(`${e?.topic ?? '?'}: ${record.reason}`)],
    ]
    const letter = deadLetterOf(record, headers, original)
    await (this.#deadLetterLog as DurableLog).append([encodeEnvelope(letter)])
  }

  /**
   * Asks the cluster for its metadata: resolves once a broker answered, rejects with a coded SpillwayError
   * otherwise (`SPW_ERR_KAFKA_AUTH` for refused credentials, `SPW_ERR_UNAVAILABLE`, `SPW_ERR_TIMEOUT`).
   * Sending never depends on it; it tells an operator at start-up that the settings are wrong.
   */
  async checkConnection(timeoutMs = this.options.deliveryTimeoutMs): Promise<void> {
    if (!this.#lease) {
      throw new SpillwayError('SPW_ERR_INVALID_OPTION', 'no brokers are configured; nothing to connect to')
    }
    await this.#lease.cluster.admin.metadata([], timeoutMs)
  }

  /** Waits until everything accepted so far is delivered, up to `timeoutMs`. False if time ran out. */
  async flush(timeoutMs = this.options.deliveryTimeoutMs): Promise<boolean> {
    if (!this.#dispatcher) return false
    const until = performance.now() + timeoutMs
    if (!(await this.#dispatcher.drained(timeoutMs))) return false
    const outbox = this.#outbox?.dispatcher
    return outbox ? await outbox.drained(Math.max(0, until - performance.now())) : true
  }

  /**
   * Stops intake, delivers what it can within `timeoutMs`, leaves the rest durable in the log, and
   * always releases the Kafka transport, whatever happened before.
   */
  async close(timeoutMs = 10_000): Promise<void> {
    if (!this.lifecycle.is('running')) return
    this.lifecycle.transitionTo('closing', 'close() called')
    try {
      if (this.#dispatcher) {
        if (this.breaker.isClosed()) await this.#dispatcher.drained(timeoutMs)
        await this.#dispatcher.stop()
      }
      const outbox = this.#outbox?.dispatcher
      if (outbox) {
        await outbox.drained(Math.min(timeoutMs, 1000))
        await outbox.stop()
      }
      // what Kafka acknowledged is accepted; the rest was never delivered (the memory backlog goes with
      // the producer) and is refused as retriable, never reported as acked
      this.#settleWaiters(this.#backlog.cursor.seq)
      const delivered = this.#backlog.cursor.seq
      for (const w of this.#waiters) w.resolve(delivered, 'closed')
      this.#waiters = []
    } finally {
      // "must I close the transport?" does not depend on whether sending worked
      this.#unregisterMetrics?.()
      await this.#lease?.release()
      await this.#sentMark?.close()
      await this.#log?.close()
      await this.#deadLetterLog?.close()
      await this.#outbox?.log.close()
      await this.#memory?.close()
      this.lifecycle.transitionTo('closed', 'closed')
    }
  }

  /** The status stream: breaker and lifecycle transitions, dead letters, delivery failures. */
  async *statusStream(signal?: AbortSignal): AsyncIterable<ProducerStatus> {
    for await (const [status] of on(this, 'status', signal ? { signal } : {})) yield status as ProducerStatus
  }

  stats(): ProducerStats {
    const d = this.#dispatcher?.stats
    const memory = this.#memory?.stats()
    return {
      state: this.lifecycle.state,
      ack: this.options.ack,
      breaker: this.breaker.state,
      accepted: this.#accepted,
      refused: this.#refused,
      refusedByCode: { ...this.#refusedByCode },
      delivered: d?.delivered ?? 0,
      replayed: d?.replayed ?? 0,
      deadLettered: d?.deadLettered ?? 0,
      deadLettersDelivered: this.#outbox?.dispatcher?.stats.delivered ?? 0,
      failedBatches: d?.failedBatches ?? 0,
      rebuilds: d?.rebuilds ?? 0,
      inflightBytes: d?.inflightBytes ?? 0,
      kafkaProducerInits: this.#lease?.cluster.producer.initializations ?? 0,
      transportsCreated: transportStats().created,
      log: this.#log?.stats(),
      memory: memory ? { ...memory, maxBytes: this.options.memoryBytes } : undefined,
      lastError: d?.lastError,
    }
  }

  #registerMetrics(): void {
    const flat = (): Record<string, number | bigint | undefined> => {
      const s = this.stats()
      const log = s.log
      return {
        accepted: s.accepted,
        refused: s.refused,
        delivered: s.delivered,
        replayed: s.replayed,
        deadLettered: s.deadLettered,
        deadLettersDelivered: s.deadLettersDelivered,
        failedBatches: s.failedBatches,
        rebuilds: s.rebuilds,
        inflightBytes: s.inflightBytes,
        inflightMax: this.options.batch.maxBytes,
        kafkaProducerInits: s.kafkaProducerInits,
        transportsCreated: s.transportsCreated,
        breakerOpen: s.breaker === 'closed' ? 0 : s.breaker === 'open' ? 1 : 0.5,
        logSegments: log?.segments,
        logBytes: log?.diskBytes,
        logMaxBytes: log?.maxBytes,
        logQueuedBytes: log?.queuedBytes,
        logTailCacheBytes: log?.tailCacheBytes,
        logPending: log?.pendingRecords,
        logOldestAge:
          log?.oldestPendingTimestamp === undefined ? 0 : (Date.now() - log.oldestPendingTimestamp) / 1000,
        logFsyncs: log?.fsyncs,
        logRefusedFull: log?.refusedFull,
        logCorruptRegions: log?.corruptRegions,
        memoryBytes: s.memory?.bytes,
        memoryMaxBytes: s.memory?.maxBytes,
      }
    }
    const specs: MetricSpec[] = [
      {
        name: 'spillway_events_accepted_total',
        help: 'Events accepted by send()',
        type: 'counter',
        key: 'accepted',
      },
      {
        name: 'spillway_events_refused_total',
        help: 'Events refused by send(), any reason',
        type: 'counter',
        key: 'refused',
      },
      {
        name: 'spillway_events_delivered_total',
        help: 'Events acknowledged by Kafka',
        type: 'counter',
        key: 'delivered',
      },
      {
        name: 'spillway_events_replayed_total',
        help: 'Events sent again after an ambiguous or partial failure or a crash (the only source of duplicates)',
        type: 'counter',
        key: 'replayed',
      },
      {
        name: 'spillway_events_dead_lettered_total',
        help: 'Poison events moved to the dead-letter log',
        type: 'counter',
        key: 'deadLettered',
      },
      {
        name: 'spillway_dead_letters_delivered_total',
        help: 'Dead letters delivered to their dead-letter topic (deadLetterTopics)',
        type: 'counter',
        key: 'deadLettersDelivered',
      },
      {
        name: 'spillway_batches_failed_total',
        help: 'Batches Kafka did not fully acknowledge',
        type: 'counter',
        key: 'failedBatches',
      },
      {
        name: 'spillway_transport_rebuilds_total',
        help: 'Kafka producers rebuilt after a fatal error',
        type: 'counter',
        key: 'rebuilds',
      },
      {
        name: 'spillway_kafka_producer_inits_total',
        help: 'Kafka producers created by the shared transport',
        type: 'counter',
        key: 'kafkaProducerInits',
      },
      {
        name: 'spillway_transports_created_total',
        help: 'Shared transports created in this process',
        type: 'counter',
        key: 'transportsCreated',
      },
      {
        name: 'spillway_inflight_bytes',
        help: 'Bytes in the batch being sent',
        type: 'gauge',
        key: 'inflightBytes',
      },
      {
        name: 'spillway_inflight_max_bytes',
        help: 'Bound on in-flight bytes (batch.maxBytes)',
        type: 'gauge',
        key: 'inflightMax',
      },
      {
        name: 'spillway_breaker_open',
        help: 'Breaker state: 0 closed, 0.5 half-open, 1 open',
        type: 'gauge',
        key: 'breakerOpen',
      },
      {
        name: 'spillway_log_segments',
        help: 'Segment files in the local log',
        type: 'gauge',
        key: 'logSegments',
      },
      { name: 'spillway_log_bytes', help: 'Bytes on disk in the local log', type: 'gauge', key: 'logBytes' },
      {
        name: 'spillway_log_max_bytes',
        help: 'Disk budget of the local log',
        type: 'gauge',
        key: 'logMaxBytes',
      },
      {
        name: 'spillway_log_queued_bytes',
        help: 'Bytes accepted and waiting for the next write+fsync',
        type: 'gauge',
        key: 'logQueuedBytes',
      },
      {
        name: 'spillway_log_tail_cache_bytes',
        help: 'Bytes of just-written records kept in memory for delivery',
        type: 'gauge',
        key: 'logTailCacheBytes',
      },
      {
        name: 'spillway_log_pending_records',
        help: 'Records in the log not yet delivered',
        type: 'gauge',
        key: 'logPending',
      },
      {
        name: 'spillway_log_oldest_pending_seconds',
        help: 'Age of the oldest undelivered record',
        type: 'gauge',
        key: 'logOldestAge',
      },
      {
        name: 'spillway_log_fsyncs_total',
        help: 'fdatasync calls (group commits)',
        type: 'counter',
        key: 'logFsyncs',
      },
      {
        name: 'spillway_log_refused_full_total',
        help: 'Appends refused because the disk budget or disk was full',
        type: 'counter',
        key: 'logRefusedFull',
      },
      {
        name: 'spillway_log_corrupt_regions_total',
        help: 'Damaged regions found and skipped',
        type: 'counter',
        key: 'logCorruptRegions',
      },
      {
        name: 'spillway_memory_bytes',
        help: 'Bytes held by the memory/kafka-mode backlog',
        type: 'gauge',
        key: 'memoryBytes',
      },
      {
        name: 'spillway_memory_max_bytes',
        help: 'Memory budget (memoryBytes)',
        type: 'gauge',
        key: 'memoryMaxBytes',
      },
    ]
    const labels = this.#metricLabels
    this.#unregisterMetrics = registerSourcedMetrics(this.metrics, specs, flat, labels)
    if (this.#log) {
      const fsync =
        (this.metrics.getSingleMetric('spillway_log_fsync_seconds') as Histogram | undefined) ??
        new Histogram({
          name: 'spillway_log_fsync_seconds',
          help: 'fdatasync latency of the local log (the cost of a durable ack)',
          buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
          labelNames: Object.keys(labels),
          registers: [this.metrics],
        })
      this.#log.on('fsync', (ms) => fsync.observe(labels, ms / 1000))
    }
  }
}

type SentMark = NonNullable<DispatcherDeps['sentMark']> & { close(): Promise<void> }

function sentMarkFile(path: string): SentMark {
  const buffer = Buffer.alloc(8)
  let handle: Promise<FileHandle> | undefined
  return {
    read() {
      try {
        const bytes = readFileSync(path)
        return bytes.length === 8 ? bytes.readBigUInt64BE(0) : -1n
      } catch {
        return -1n
      }
    },
    async write(seq) {
      // An 8-byte positional write into the page cache, never synchronous: it survives kill -9, and after a
      // power loss an undercount of replays is the only effect. Truncating writes could stall on the journal.
      buffer.writeBigUInt64BE(seq)
      try {
        handle ??= open(path, 'a').then(async (h) => {
          await h.close()
          return await open(path, 'r+')
        })
        await (await handle).write(buffer, 0, 8, 0)
      } catch {
        // counting replays is best effort; delivery does not depend on it
      }
    },
    async close() {
      const opened = handle
      handle = undefined
      await opened?.then((h) => h.close()).catch(() => undefined)
    },
  }
}

/** Creates a producer. With `ack: 'durable'` it opens (and recovers) the local log first. */
export async function createProducer(
  options: ProducerOptions & {
    readonly registry?: Registry
    /** Labels on this producer's metrics, to tell it apart from other components sharing `registry`. */
    readonly metricLabels?: Readonly<Record<string, string>>
  },
): Promise<SpillwayProducer> {
  const { registry, metricLabels, ...rest } = options
  const resolved = resolveProducerOptions(rest)
  let log: DurableLog | undefined
  let deadLetterLog: DurableLog | undefined
  let outboxLog: DurableLog | undefined
  if (resolved.log) {
    // `kafka` and `memory` modes keep events in memory: `log` gives them the dead-letter logs only, and
    // the main directory is neither opened nor locked
    const main = resolved.log
    // a dead letter is the event plus a few headers: the same limits, a smaller budget
    const side = (name: string) =>
      DurableLog.open({
        dir: join(main.dir, name),
        fsync: main.fsync,
        maxBytes: Math.max(4096, Math.floor(main.maxBytes / 4)),
        maxRecordBytes: main.maxRecordBytes + 4096,
        segmentBytes: Math.min(main.segmentBytes, 16 * 1024 * 1024),
      })
    if (resolved.ack === 'durable') log = await DurableLog.open(main)
    try {
      deadLetterLog = await side('dead-letter')
      if (Object.keys(resolved.deadLetterTopics).length > 0) outboxLog = await side('dead-letter-outbox')
    } catch (error) {
      await deadLetterLog?.close()
      await log?.close()
      throw error
    }
  }
  try {
    return new SpillwayProducer({ options: resolved, log, deadLetterLog, outboxLog, registry, metricLabels })
  } catch (error) {
    // e.g. its metrics clash with another producer's on a shared registry: give the logs back
    await Promise.allSettled([log?.close(), deadLetterLog?.close(), outboxLog?.close()])
    throw error
  }
}
