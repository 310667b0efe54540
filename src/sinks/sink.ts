/**
 * A sink: a consumer whose handler writes batches into a database, with each partition's offset kept in
 * the database beside the rows (the writer does both in one transaction). The consumer starts every
 * partition at the offset the database has, so a crash, a lost answer or a rebalance can neither lose nor
 * repeat an effect. Batches are one partition's consecutive records, as many as are buffered when the
 * previous batch of that partition finished, bounded by rows and bytes: under load they fill, when idle a
 * record is written at once.
 *
 * A database that is down or slow holds the partition: the batch is retried with back-off (the partition's
 * buffer fills and its fetching pauses), nothing is committed that is not written, and the batch goes in
 * once the database is back. Records the mapping cannot read, or rows the database refuses, go to the
 * dead-letter topic with the reason before the offset passes them.
 */
import { EventEmitter } from 'node:events'
import { createConsumer, type SpillwayConsumer } from '../consumer/consumer.ts'
import type { ConsumerOptions } from '../consumer/options.ts'
import type { ConsumedRecord, HandlerContext } from '../consumer/types.ts'
import { isSpillwayError, SpillwayError } from '../errors.ts'
import { sleep } from '../sleep.ts'
import type { Registry } from '../telemetry/metrics.ts'
import { type Mapping, mapRecord } from './mapping.ts'
import type { Refusal, Row, SinkWriter } from './types.ts'

export interface SinkPartitionStats {
  readonly topic: string
  readonly partition: number
  /** 'writing' while a batch is in the database, 'waiting' while the database is retried, else 'idle'. */
  readonly state: 'idle' | 'writing' | 'waiting'
  readonly rowsWritten: number
  readonly batches: number
  readonly refused: number
  readonly retries: number
  /** ms the last batch took, from its first try to its COMMIT. */
  readonly lastBatchMs: number
  readonly lastError: string | null
}

export interface SinkStats {
  readonly kind: string
  readonly target: string
  readonly name: string
  /** false while the last attempt to reach the database failed. */
  readonly databaseUp: boolean
  readonly rowsWritten: number
  /** Records whose id the table already had (a redelivery); not written again. */
  readonly rowsExisting: number
  readonly batches: number
  readonly refused: number
  readonly retries: number
  readonly lastError: string | null
  readonly partitions: readonly SinkPartitionStats[]
}

export type SinkEvent =
  | { readonly type: 'database'; readonly up: boolean; readonly message: string | null }
  | {
      readonly type: 'refused'
      readonly topic: string
      readonly partition: number
      readonly offset: bigint
      readonly id: string
      readonly code: string
      readonly message: string
    }

export interface SinkRuntimeOptions {
  /** Whose offsets the database keeps: the sink's name (default: the group). */
  readonly name: string
  readonly maxBatchRows: number
  readonly maxBatchBytes: number
  readonly retryBackoffMs: number
  readonly maxRetryBackoffMs: number
  /** Everything the consumer takes except the handler and what a sink fixes (ordering, batching). */
  readonly consumer: Omit<ConsumerOptions, 'handler' | 'batch'> & {
    readonly registry?: Registry
    readonly metricLabels?: Readonly<Record<string, string>>
  }
}

interface MutablePartition {
  topic: string
  partition: number
  state: 'idle' | 'writing' | 'waiting'
  rowsWritten: number
  batches: number
  refused: number
  retries: number
  lastBatchMs: number
  lastError: string | null
}

export class SpillwaySink extends EventEmitter<{ event: [SinkEvent] }> {
  readonly consumer: SpillwayConsumer
  readonly #writer: SinkWriter
  readonly #mapping: Mapping
  readonly #options: SinkRuntimeOptions
  readonly #partitions = new Map<string, MutablePartition>()
  #opened: Promise<void> | undefined
  #closing = new AbortController()
  #databaseUp = true
  #rowsWritten = 0
  #rowsExisting = 0
  #batches = 0
  #refused = 0
  #retries = 0
  #lastError: string | null = null

  constructor(writer: SinkWriter, mapping: Mapping, options: SinkRuntimeOptions) {
    super()
    this.#writer = writer
    this.#mapping = mapping
    this.#options = options
    this.consumer = createConsumer({
      ...options.consumer,
      ordering: 'partition',
      batch: true,
      batchBy: 'partition',
      maxBatchRecords: options.maxBatchRows,
      maxBatchBytes: options.maxBatchBytes,
      // the table's unique id is the dedupe, and it survives restarts
      dedupe: false,
      // the handler returns once the batch is in the database; revocation and close() abort it
      handlerTimeoutMs: 24 * 3_600_000,
      offsetStore: {
        load: async (partitions) => {
          await this.#open()
          return await this.#writer.loadOffsets(options.name, partitions)
        },
      },
      handler: (records: readonly ConsumedRecord<Buffer | null>[], context: HandlerContext) =>
        this.#write(records, context),
    })
  }

  /** Checks the table, then joins the group. Rejects on a setup the database says is wrong (no table). */
  async run(): Promise<void> {
    try {
      await this.#writer.open()
      this.#opened = Promise.resolve()
      this.#database(true, null)
    } catch (error) {
      if (isSpillwayError(error) && error.code === 'SPW_ERR_INVALID_OPTION') throw error
      // the database is down at start: the sink starts anyway and waits for it
      this.#database(false, (error as Error).message)
    }
    await this.consumer.run()
  }

  /** The writer's setup, retried with back-off until the database answers (or the sink closes). */
  #open(): Promise<void> {
    this.#opened ??= (async () => {
      for (let attempt = 1; ; attempt++) {
        try {
          await this.#writer.open()
          this.#database(true, null)
          return
        } catch (error) {
          this.#database(false, (error as Error).message)
          if (this.#closing.signal.aborted) throw error
          await sleep(this.#backoff(attempt), this.#closing.signal)
        }
      }
    })()
    return this.#opened
  }

  #backoff(attempt: number): number {
    return Math.min(
      this.#options.maxRetryBackoffMs,
      this.#options.retryBackoffMs * 2 ** Math.min(attempt - 1, 16),
    )
  }

  #database(up: boolean, message: string | null): void {
    if (!up) this.#lastError = message
    if (up === this.#databaseUp) return
    this.#databaseUp = up
    this.emit('event', { type: 'database', up, message })
  }

  #partition(topic: string, partition: number): MutablePartition {
    const key = `${topic}[${partition}]`
    let p = this.#partitions.get(key)
    if (!p) {
      p = {
        topic,
        partition,
        state: 'idle',
        rowsWritten: 0,
        batches: 0,
        refused: 0,
        retries: 0,
        lastBatchMs: 0,
        lastError: null,
      }
      this.#partitions.set(key, p)
    }
    return p
  }

  async #write(records: readonly ConsumedRecord<Buffer | null>[], context: HandlerContext): Promise<void> {
    const first = records[0]
    const last = records[records.length - 1]
    if (!first || !last) return
    const stats = this.#partition(first.topic, first.partition)
    const rows: Row[] = []
    const unreadable: Refusal[] = []
    for (const record of records) {
      try {
        rows.push({ record, values: mapRecord(this.#mapping, record, this.#writer.timestamps) })
      } catch (error) {
        unreadable.push({ record, error: error as SpillwayError })
      }
    }
    const batch = {
      owner: this.#options.name,
      topic: first.topic,
      partition: first.partition,
      nextOffset: last.offset + 1n,
      rows,
    }
    const started = performance.now()
    // a dead-letter topic that cannot be written holds the batch too, but says nothing about the database
    let deadLetterFailed = false
    const deadLetter = async (refusals: readonly Refusal[]): Promise<void> => {
      try {
        await this.#deadLetter(refusals, context)
      } catch (error) {
        deadLetterFailed = true
        throw error
      }
    }
    stats.state = 'writing'
    try {
      for (let attempt = 1; ; attempt++) {
        try {
          await this.#open()
          const result = await this.#writer.write(batch, unreadable, deadLetter)
          this.#database(true, null)
          const existing = rows.length - result.inserted - (result.refused - unreadable.length)
          stats.rowsWritten += result.inserted
          stats.batches++
          stats.refused += result.refused
          stats.lastBatchMs = performance.now() - started
          stats.lastError = null
          this.#rowsWritten += result.inserted
          this.#rowsExisting += Math.max(0, existing)
          this.#batches++
          this.#refused += result.refused
          return
        } catch (error) {
          const message = error instanceof Error ? error.message : String(error)
          if (context.signal.aborted) throw error
          if (deadLetterFailed) this.#lastError = message
          else this.#database(false, message)
          stats.state = 'waiting'
          stats.retries++
          stats.lastError = message
          this.#retries++
          await sleep(this.#backoff(attempt), context.signal)
          if (context.signal.aborted) throw error
          stats.state = 'writing'
        }
      }
    } finally {
      stats.state = 'idle'
    }
  }

  /** Dead-letters refusals grouped by reason (the dead-letter headers carry one reason per call). */
  async #deadLetter(refusals: readonly Refusal[], context: HandlerContext): Promise<void> {
    const byReason = new Map<string, Refusal[]>()
    for (const r of refusals) byReason.set(r.error.message, [...(byReason.get(r.error.message) ?? []), r])
    for (const group of byReason.values()) {
      const error = (group[0] as Refusal).error
      await context.deadLetter(
        group.map((r) => r.record),
        error,
      )
      for (const r of group)
        this.emit('event', {
          type: 'refused',
          topic: r.record.topic,
          partition: r.record.partition,
          offset: r.record.offset,
          id: r.record.id,
          code: r.error.code,
          message: r.error.message,
        })
    }
  }

  stats(): SinkStats {
    return {
      kind: this.#writer.kind,
      target: this.#writer.target,
      name: this.#options.name,
      databaseUp: this.#databaseUp,
      rowsWritten: this.#rowsWritten,
      rowsExisting: this.#rowsExisting,
      batches: this.#batches,
      refused: this.#refused,
      retries: this.#retries,
      lastError: this.#lastError,
      partitions: [...this.#partitions.values()].map((p) => ({ ...p })),
    }
  }

  /** Stops fetching, lets running batches finish within the consumer's closeTimeoutMs, commits, leaves. */
  async close(): Promise<void> {
    this.#closing.abort(new SpillwayError('SPW_ERR_CLOSED', 'the sink is closing'))
    try {
      await this.consumer.close()
    } finally {
      await this.#writer.close()
    }
  }
}
