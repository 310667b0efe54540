/**
 * The spillway producer: every send gets an immediate, honest answer. In `durable` mode an event is
 * accepted once it is fsynced in the local log, and the request path never touches the Kafka client;
 * a dispatcher delivers the log to Kafka behind it. See docs/producer.md and docs/guarantees.md.
 *
 * This class holds the lifecycle and the wiring; each job has its own module: admission.ts (validation
 * and envelopes), kafka-acks.ts (`ack: 'kafka'` waits), dead-letters.ts, metrics.ts, sent-mark.ts,
 * logs.ts (the logs a producer opens) and types.ts (the public types).
 */

import { EventEmitter, on } from 'node:events'
import { join } from 'node:path'
import { Breaker } from '../breaker/breaker.ts'
import { channel } from '../channels.ts'
import { isSpillwayError, SpillwayError } from '../errors.ts'
import type { DurableLog } from '../log/log.ts'
import { StateMachine } from '../state-machine.ts'
import { Registry } from '../telemetry/metrics.ts'
import { acquireCluster, type ClusterLease, transportStats } from '../transport/registry.ts'
import { Admission, type Invalid, type Prepared } from './admission.ts'
import { type Backlog, MemoryBacklog } from './backlog.ts'
import { DeadLetters } from './dead-letters.ts'
import { Dispatcher } from './dispatcher.ts'
import { type Envelope, writeEnvelope } from './envelope.ts'
import { KafkaAcks } from './kafka-acks.ts'
import { openProducerLogs, type ProducerLogs } from './logs.ts'
import { registerProducerMetrics } from './metrics.ts'
import { type ProducerOptions, type ResolvedProducerOptions, resolveProducerOptions } from './options.ts'
import { type SentMark, sentMarkFile } from './sent-mark.ts'
import type {
  EventInput,
  ProducerState,
  ProducerStats,
  ProducerStatus,
  SendOptions,
  SendResult,
} from './types.ts'
import { WaitingRoom, type WaitingStats } from './waiting.ts'

export type * from './types.ts'

const LIFECYCLE: Record<ProducerState, readonly ProducerState[]> = {
  running: ['closing'],
  closing: ['closed'],
  closed: [],
}

const NO_WAITING: WaitingStats = Object.freeze({ events: 0, topics: Object.freeze({}) })

const channels = {
  send: channel('spillway:producer:send'),
  refused: channel('spillway:producer:refused'),
}

export class SpillwayProducer extends EventEmitter<{ status: [ProducerStatus] }> {
  readonly options: ResolvedProducerOptions
  readonly lifecycle: StateMachine<ProducerState>
  readonly breaker: Breaker
  readonly metrics: Registry
  readonly #backlog: Backlog
  readonly #logs: ProducerLogs
  readonly #log: DurableLog | undefined
  readonly #admission: Admission
  readonly #deadLetters: DeadLetters
  readonly #acks: KafkaAcks
  /** Delivers dead letters bound for a dead-letter topic (deadLetterTopics). */
  readonly #outboxDispatcher: Dispatcher | undefined
  /** Events of topics that do not exist yet, and the dispatcher that tries them again (durable mode). */
  readonly #waiting: WaitingRoom | undefined
  readonly #memory: MemoryBacklog | undefined
  readonly #lease: ClusterLease | undefined
  readonly #dispatcher: Dispatcher | undefined
  /** The durable log's "sent up to" mark: owned here, read and written by the dispatcher. */
  readonly #sentMark: SentMark | undefined
  readonly #metricLabels: Readonly<Record<string, string>>
  #unregisterMetrics: (() => void) | undefined
  #accepted = 0
  #refused = 0
  #refusedByCode: Record<string, number> = {}

  /** @internal use createProducer() */
  constructor(init: {
    options: ResolvedProducerOptions
    logs: ProducerLogs
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
    this.#logs = init.logs
    this.#log = init.logs.log
    this.#admission = new Admission(options.maxEventBytes)
    this.#acks = new KafkaAcks(options.deliveryTimeoutMs)
    this.#deadLetters = new DeadLetters(init.logs, options.deadLetterTopics, (status) =>
      this.emit('status', status),
    )
    // first, before any delivery starts: a clash on a shared registry throws here with nothing to undo
    this.#registerMetrics()
    if (options.ack === 'durable') {
      this.#backlog = init.logs.log as DurableLog
    } else {
      this.#memory = new MemoryBacklog(options.memoryBytes)
      this.#backlog = this.#memory
    }
    this.lifecycle.on('transition', (t) => this.emit('status', { type: 'lifecycle', ...t }))
    this.breaker.machine.on('transition', (t) => this.emit('status', { type: 'breaker', ...t }))
    this.#log?.status.on('transition', (t) => this.emit('status', { type: 'log', ...t }))

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
        options.ack === 'durable' && this.#log
          ? sentMarkFile(join(this.#log.options.dir, 'dispatch-mark'))
          : undefined
      const dispatch = {
        batchBytes: options.batch.maxBytes,
        batchRecords: options.batch.maxRecords,
        partitionBytes: options.batch.maxPartitionBytes,
        lingerMs: options.batch.lingerMs,
        deadlineMs: options.deliveryTimeoutMs,
      }
      // durable mode: events of topics that do not exist yet wait in logs of their own
      const room =
        options.ack === 'durable' && this.#log
          ? new WaitingRoom(
              {
                dir: join(this.#log.options.dir, 'waiting'),
                log: this.#log.options,
                timeoutMs: options.unknownTopicTimeoutMs,
                dispatch,
                breaker: options.breaker,
                cluster: () => lease.cluster,
                report: (change, topic, events) =>
                  this.emit('status', { type: 'waiting', topic, change, events }),
              },
              this.#deadLetters,
            )
          : undefined
      this.#waiting = room
      this.#dispatcher = new Dispatcher(dispatch, {
        backlog: this.#backlog,
        cluster: () => lease.cluster,
        breaker: this.breaker,
        deadLetter: (record) => this.#deadLetters.store(record),
        ...(this.#sentMark ? { sentMark: this.#sentMark } : {}),
        ...(room ? { wait: (record) => room.park(record), divert: (topic) => room.holds(topic) } : {}),
      })
      this.#dispatcher.on('delivered', (next) => this.#acks.delivered(next))
      this.#dispatcher.on('poisoned', (record) => this.#acks.poisoned(record.seq, record.reason))
      this.#dispatcher.on('failure', (reason) => this.emit('status', { type: 'delivery-failure', reason }))
      this.#dispatcher.start()
      if (init.logs.outboxLog) {
        // its own breaker: a dead-letter topic that fails must not hold up the events themselves
        this.#outboxDispatcher = new Dispatcher(dispatch, {
          backlog: init.logs.outboxLog,
          cluster: () => lease.cluster,
          breaker: new Breaker(options.breaker),
          deadLetter: (record) => this.#deadLetters.keep(record),
        })
        this.#outboxDispatcher.start()
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
    const closed = this.lifecycle.refusal(
      'send',
      ['running'],
      'SPW_ERR_CLOSED',
      'the producer is closing or closed',
    )
    if (closed) return Array.from({ length: count }, (_, i) => this.#refuse(eventOf(i)?.id, closed))
    const now = Date.now()
    const prepared: (Prepared | Invalid)[] = new Array(count)
    const valid: Prepared[] = []
    let invalid: Invalid | undefined
    for (let i = 0; i < count; i++) {
      const p = this.#admission.prepare(topicOf(i), eventOf(i), i, now)
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
    const outcomes = await this.#acks.wait(firstSeq, envelopes.length, this.#backlog.cursor.seq)
    return envelopes.map((e, i) => {
      const outcome = outcomes[i]
      if (outcome?.kind === 'refused') return this.#refuse(e.id, outcome.error)
      this.#accepted++
      return { status: 'accepted', id: e.id, durable: false, acked: true }
    })
  }

  #refuse(id: string | undefined, error: SpillwayError): SendResult {
    this.#refused++
    this.#refusedByCode[error.code] = (this.#refusedByCode[error.code] ?? 0) + 1
    if (channels.refused.hasSubscribers) channels.refused.publish({ id, code: error.code })
    return { status: 'refused', id, error }
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
    const outbox = this.#outboxDispatcher
    if (outbox && !(await outbox.drained(Math.max(0, until - performance.now())))) return false
    // events waiting for their topic are not delivered yet: flush says so rather than returning true
    return this.#waiting ? await this.#waiting.empty(Math.max(0, until - performance.now())) : true
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
      await this.#waiting?.close()
      const outbox = this.#outboxDispatcher
      if (outbox) {
        await outbox.drained(Math.min(timeoutMs, 1000))
        await outbox.stop()
      }
      // what Kafka acknowledged is accepted; the rest was never delivered (the memory backlog goes with
      // the producer) and is refused as retriable, never reported as acked
      this.#acks.close(this.#backlog.cursor.seq)
    } finally {
      // "must I close the transport?" does not depend on whether sending worked
      this.#unregisterMetrics?.()
      await this.#lease?.release()
      await this.#sentMark?.close()
      await this.#logs.close()
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
      delivered: (d?.delivered ?? 0) + (this.#waiting?.delivered ?? 0),
      replayed: d?.replayed ?? 0,
      // from the main log and from the waiting logs alike
      deadLettered: this.#deadLetters.total,
      deadLettersDelivered: this.#outboxDispatcher?.stats.delivered ?? 0,
      waiting: this.#waiting?.stats() ?? NO_WAITING,
      deadLettersByTopic: this.#deadLetters.counts(),
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
    this.#unregisterMetrics = registerProducerMetrics(
      this.metrics,
      () => this.stats(),
      this.options.batch.maxBytes,
      this.#metricLabels,
      this.#log,
    )
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
  const logs = await openProducerLogs(resolved)
  try {
    return new SpillwayProducer({ options: resolved, logs, registry, metricLabels })
  } catch (error) {
    // e.g. its metrics clash with another producer's on a shared registry: give the logs back
    await logs.close()
    throw error
  }
}
