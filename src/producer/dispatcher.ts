/**
 * Drains a backlog to Kafka: one batch in flight at a time (so per-key order holds and in-flight bytes
 * are bounded by `batchBytes`), each transport call under a deadline, the breaker consulted before every
 * batch, and the backlog cursor advanced only past records Kafka acknowledged or that were dead-lettered.
 *
 * After a failure the reader rewinds to the first record that was not acknowledged; records after it
 * that had been sent are sent again. Those re-sends, and re-sends of records whose outcome was
 * ambiguous (timeout, dropped connection) or that were in flight at a crash, are the only source of
 * duplicates, and each is counted in `replayed`.
 */

import { EventEmitter } from 'node:events'
import type { Breaker } from '../breaker/breaker.ts'
import { channel } from '../channels.ts'
import { type ErrorCode, isSpillwayError } from '../errors.ts'
import type { LogPosition, LogRecord } from '../log/log.ts'
import type { Cluster } from '../transport/cluster.ts'
import { withDeadline } from '../transport/deadline.ts'
import type { OutboundRecord, RecordOutcome } from '../transport/transport.ts'
import type { Backlog, BacklogReader } from './backlog.ts'
import { decodeEnvelope, type Envelope, readStoredEvent, type StoredEvent } from './envelope.ts'
import { partitionForKeyAt } from './partitioner.ts'

export interface DispatcherOptions {
  readonly batchBytes: number
  readonly batchRecords: number
  /**
   * Most envelope bytes for one partition in one batch. Kafka refuses a partition's record batch above
   * the topic's max.message.bytes (1 MiB by default), so a batch ends where one partition would pass this.
   */
  readonly partitionBytes?: number
  /** How long an idle dispatcher sleeps before looking again (it is also woken by new records). */
  readonly lingerMs: number
  /** Deadline of every transport call. */
  readonly deadlineMs: number
  /**
   * How long to wait for the real outcome of a request its deadline cut short before sending the same
   * records again (the client keeps retrying it with the same sequence numbers meanwhile). Default 30 000.
   */
  readonly lateWaitMs?: number
}

/** Metadata answers that mean a topic can take nothing: its records are dead-lettered with the reason. */
const TOPIC_POISON: ReadonlySet<ErrorCode> = new Set([
  'SPW_ERR_TOPIC_MISSING',
  'SPW_ERR_KAFKA_DENIED',
  'SPW_ERR_POISON',
])

export interface PoisonedRecord {
  readonly seq: bigint
  readonly envelope: Envelope | undefined
  readonly payload: Buffer
  readonly reason: string
  /** Wall-clock ms at which the record was appended to the log it was read from. */
  readonly loggedAt: number
}

/** Why a record waits rather than being delivered or dead-lettered. */
export const WAITING_BEHIND = 'waiting behind earlier events of its topic'

export interface DispatcherDeps {
  readonly backlog: Backlog
  /** The cluster's producer facet sends; its admin facet knows partition counts (one metadata cache). */
  readonly cluster: () => Pick<Cluster, 'producer' | 'admin'>
  readonly breaker: Breaker
  /** Stores a poison record somewhere safe; a rejection makes the dispatcher retry the batch later. */
  readonly deadLetter: (record: PoisonedRecord) => Promise<void>
  /**
   * Persisted "sent up to" mark, so records re-sent after a crash are counted as replays. Its owner (the
   * producer) opens and closes it; the dispatcher only reads and writes it.
   */
  readonly sentMark?: { read(): bigint; write(seq: bigint): Promise<void> }
  /**
   * Where records wait whose topic does not exist (yet), instead of being dead-lettered; a rejection
   * makes the dispatcher retry the batch later. Without it, such records are dead letters.
   */
  readonly wait?: (record: PoisonedRecord) => Promise<void>
  /**
   * True when a record of `topic` (at `seq`) must wait behind earlier ones of its topic that are
   * waiting already, so the topic's order holds once it exists. Asked before any metadata lookup.
   */
  readonly divert?: (topic: string, seq: bigint) => boolean
  /** Records Kafka acknowledged, counted by topic after each batch. */
  readonly onDelivered?: (topic: string, count: number) => void
}

export interface DispatcherStats {
  delivered: number
  replayed: number
  deadLettered: number
  /** Records handed to `wait` (a missing topic, or waiting behind one). */
  waited: number
  batches: number
  failedBatches: number
  rebuilds: number
  inflightBytes: number
  lastError: string | undefined
}

/** The size of a batch sent while the breaker is not closed. */
const PROBE_BYTES = 64 * 1024
/** Under Kafka's default max.message.bytes (1 MiB + 12), with room for the batch and record framing. */
const DEFAULT_PARTITION_BYTES = 1_000_000
const PROBE_RECORDS = 100
const OK: RecordOutcome = { kind: 'ok' }
/** A record the transport answered nothing for: it may have gone out. */
const NO_OUTCOME: RecordOutcome = {
  kind: 'error',
  errorClass: 'retriable',
  reason: 'no outcome',
  ambiguous: true,
}

/** A record on its way to Kafka, with its index in the batch's log records. */
interface Outbound extends OutboundRecord {
  readonly index: number
}

/** A batch read from the backlog and made ready for Kafka. */
interface PreparedBatch {
  readonly kind: 'batch'
  readonly start: LogPosition
  readonly records: LogRecord[]
  /** Records that can never be delivered, by index, with the reason. */
  readonly poison: Map<number, string>
  /** Of those, the ones that wait instead (their topic is missing, or has records waiting already). */
  readonly waiting: Set<number>
  /** What goes to Kafka, each with its index in `records`. */
  readonly outbound: Outbound[]
  /** Set when a topic's partition count could not be fetched: the batch is tried again later. */
  readonly metadataError: string | undefined
  /** The dispatcher's signal count when the read began. */
  readonly signals: number
}

type Batch =
  | PreparedBatch
  | { readonly kind: 'unreadable'; readonly start: LogPosition; readonly reason: string }

const channels = {
  batch: channel('spillway:dispatcher:batch'),
  failure: channel('spillway:dispatcher:failure'),
  deadLetter: channel('spillway:dispatcher:dead-letter'),
}

export class Dispatcher extends EventEmitter<{
  delivered: [nextSeq: bigint]
  poisoned: [PoisonedRecord]
  failure: [reason: string]
}> {
  readonly options: DispatcherOptions
  readonly stats: DispatcherStats = {
    delivered: 0,
    replayed: 0,
    deadLettered: 0,
    waited: 0,
    batches: 0,
    failedBatches: 0,
    rebuilds: 0,
    inflightBytes: 0,
    lastError: undefined,
  }
  readonly #deps: DispatcherDeps
  #reader: BacklogReader | undefined
  #running: Promise<void> | undefined
  #stopping = false
  #wake: (() => void) | undefined
  #stopWake: (() => void) | undefined
  #replayBelow: bigint
  #roundRobin = 0
  #idle = false
  /** Counts the backlog's "new records" signals, so a read that raced one is not taken for idleness. */
  #signals = 0
  /** Records that may already be in Kafka: sending one again is a counted replay. */
  readonly #maybeWritten = new Set<bigint>()
  /** Outcomes of requests a deadline cut short, still under way in the client. */
  #late: { readonly seqs: readonly bigint[]; readonly outcomes: Promise<RecordOutcome[]> } | undefined
  /** Real outcomes of such requests, by seq, until the records are in a batch again. */
  readonly #lateOutcomes = new Map<bigint, RecordOutcome>()
  /** Callers of drained() waiting for the loop to find the backlog empty. */
  readonly #drainWaiters = new Set<(drained: boolean) => void>()

  constructor(options: DispatcherOptions, deps: DispatcherDeps) {
    super()
    this.options = options
    this.#deps = deps
    this.#replayBelow = deps.sentMark?.read() ?? -1n
  }

  /** True when the last read found nothing to send. */
  get idle(): boolean {
    return this.#idle
  }

  start(): void {
    if (this.#running) return
    this.#stopping = false
    this.#reader = this.#deps.backlog.reader()
    const wake = (): void => {
      this.#signals++
      this.#idle = false
      this.#wake?.()
    }
    this.#deps.backlog.on('durable', wake)
    this.#running = this.#loop().finally(() => {
      this.#deps.backlog.off('durable', wake)
    })
  }

  /** Stops after the batch in flight (bounded by its deadline). */
  async stop(): Promise<void> {
    this.#stopping = true
    this.#stopWake?.()
    await this.#running
    this.#running = undefined
    await this.#reader?.close()
    for (const settle of this.#drainWaiters) settle(false)
    this.#drainWaiters.clear()
  }

  /** Nothing left to send: the last read found nothing, and everything read is committed. */
  #isDrained(): boolean {
    return (
      this.#idle && this.#reader !== undefined && this.#reader.position.seq <= this.#deps.backlog.cursor.seq
    )
  }

  /**
   * Resolves true once the backlog is empty, false when `ms` passes first or the dispatcher stops.
   * Never rejects. Woken by the loop when it finds nothing more to read (no polling).
   */
  drained(ms: number): Promise<boolean> {
    if (this.#isDrained()) return Promise.resolve(true)
    if (!this.#running) return Promise.resolve(false)
    return new Promise((resolve) => {
      const settle = (drained: boolean): void => {
        clearTimeout(timer)
        this.#drainWaiters.delete(settle)
        resolve(drained)
      }
      const timer = setTimeout(() => settle(false), ms)
      this.#drainWaiters.add(settle)
    })
  }

  /** Sleeps for `ms`; new records end the sleep early only when `wakeOnData` (never during a cooldown). */
  #sleep(ms: number, wakeOnData: boolean): Promise<void> {
    return new Promise((resolve) => {
      const timer = setTimeout(done, ms)
      const self = this
      function done(): void {
        clearTimeout(timer)
        self.#wake = undefined
        self.#stopWake = undefined
        resolve()
      }
      this.#stopWake = done
      this.#wake = wakeOnData ? done : undefined
    })
  }

  async #loop(): Promise<void> {
    const reader = this.#reader as BacklogReader
    // The next batch, read and prepared while the one before it is in flight (never sent before it).
    let ahead: Promise<Batch> | undefined
    // A batch that failed (or had to wait for the breaker), kept for the next attempt.
    let retained: PreparedBatch | undefined
    /** Drops the batch read ahead (after it settles, so the reader is idle) and moves the reader. */
    const rewind = async (to: LogPosition): Promise<void> => {
      if (ahead) await ahead
      ahead = undefined
      reader.rewind(to)
    }
    try {
      while (!this.#stopping) {
        // While the breaker cools down, do not even read: new appends must not cost O(backlog) work each.
        const cooling = this.#deps.breaker.retryInMs()
        if (cooling > 0) {
          await this.#sleep(Math.min(cooling, 1000), false)
          continue
        }
        const batch =
          !ahead && retained?.start.seq === reader.position.seq
            ? this.#reuse(retained, reader)
            : await (ahead ?? this.#read(reader))
        ahead = undefined
        retained = undefined
        if (batch.kind === 'unreadable') {
          this.stats.lastError = `reading the backlog failed: ${batch.reason}`
          await this.#sleep(this.options.lingerMs * 10 + 10, false)
          continue
        }
        if (batch.records.length === 0) {
          // records that became durable after this read began: read again rather than sleep
          if (batch.signals !== this.#signals) continue
          this.#idle = true
          if (this.#drainWaiters.size > 0 && this.#isDrained())
            for (const settle of [...this.#drainWaiters]) settle(true)
          await this.#sleep(1000, true)
          // linger briefly after new records arrive, so a trickle still leaves in batches
          if (this.options.lingerMs > 0 && !this.#stopping) await this.#sleep(this.options.lingerMs, false)
          continue
        }
        this.#idle = false
        const permit = this.#deps.breaker.acquire()
        if (permit.kind === 'wait') {
          reader.rewind(batch.start)
          retained = batch
          await this.#sleep(Math.min(permit.retryInMs, 1000), false)
          continue
        }
        const result = await this.#transmit(batch, () => {
          // read ahead only while Kafka takes records; a probe is likely to fail and be sent again
          if (!this.#stopping && permit.kind === 'send') ahead = this.#read(reader)
        })
        if (result.rewindTo) {
          await rewind(result.rewindTo)
          // the same records go next: keep them decoded rather than read them again on every retry
          // a batch with waiting records is read afresh: its topic may exist by the next attempt
          if (
            result.rewindTo === batch.start &&
            batch.metadataError === undefined &&
            batch.waiting.size === 0
          )
            retained = batch
        }
      }
    } finally {
      if (ahead) await rewind((await ahead).start)
    }
  }

  /**
   * Takes a kept batch again instead of reading it: cut to the probe size while the breaker is not closed,
   * and the reader moved past what is taken.
   */
  #reuse(batch: PreparedBatch, reader: BacklogReader): PreparedBatch {
    let taken = batch
    if (!this.#deps.breaker.isClosed() && batch.records.length > 1) {
      const { maxRecords, maxBytes } = this.#limits()
      let n = 0
      let bytes = 0
      while (n < batch.records.length && n < maxRecords && bytes < maxBytes) {
        bytes += (batch.records[n] as LogRecord).payload.length
        n++
      }
      if (n < batch.records.length) taken = cut(batch, n)
    }
    reader.rewind((taken.records.at(-1) as LogRecord).next)
    return taken
  }

  /**
   * How much one batch may hold. While Kafka is failing, a small probe: a large request costs a long
   * synchronous serialisation in the client, which would stall every caller's send() for nothing.
   */
  #limits(): { maxBytes: number; maxRecords: number } {
    const { batchBytes, batchRecords } = this.options
    if (this.#deps.breaker.isClosed()) return { maxBytes: batchBytes, maxRecords: batchRecords }
    return { maxBytes: Math.min(batchBytes, PROBE_BYTES), maxRecords: Math.min(batchRecords, PROBE_RECORDS) }
  }

  /** Reads the next batch and prepares it for Kafka: decoded, routed to its topic and partition. */
  async #read(reader: BacklogReader): Promise<Batch> {
    const start = reader.position
    const signals = this.#signals
    let records: LogRecord[]
    try {
      records = await reader.read(this.#limits())
    } catch (error) {
      return { kind: 'unreadable', start, reason: (error as Error).message }
    }
    const poison = new Map<number, string>()
    const waiting = new Set<number>()
    const canWait = this.#deps.wait !== undefined
    const events: (StoredEvent | undefined)[] = records.map((r, i) => {
      try {
        return readStoredEvent(r.payload)
      } catch {
        poison.set(i, 'undecodable envelope')
        return undefined
      }
    })

    // Partition by key exactly like the Java client; keyless records rotate across partitions.
    const outbound: Outbound[] = []
    /** Each topic's partition count, or why it can take nothing (missing, invalid, not authorised). */
    const topics = new Map<string, number | string>()
    const partitionBytes = new Map<string, number[]>()
    const partitionLimit = this.options.partitionBytes ?? DEFAULT_PARTITION_BYTES
    let end = records.length
    let metadataError: string | undefined
    /** Topics the broker says do not exist: their records wait (when `wait` is given). */
    const missing = new Set<string>()
    for (let i = 0; i < events.length; i++) {
      const e = events[i]
      if (!e) continue
      const topic = e.topic
      if (canWait && this.#deps.divert?.(topic, (records[i] as LogRecord).seq)) {
        poison.set(i, WAITING_BEHIND)
        waiting.add(i)
        continue
      }
      if (!topics.has(topic)) {
        try {
          topics.set(topic, await this.#partitionCount(topic))
        } catch (error) {
          if (!(isSpillwayError(error) && TOPIC_POISON.has(error.code))) {
            metadataError = (error as Error).message
            break
          }
          topics.set(topic, (error as Error).message)
          if (canWait && error.code === 'SPW_ERR_TOPIC_MISSING') missing.add(topic)
        }
      }
      const count = topics.get(topic) as number | string
      if (typeof count === 'string') {
        poison.set(i, count)
        if (missing.has(topic)) waiting.add(i)
        continue
      }
      if (e.partition !== undefined && e.partition >= count) {
        poison.set(i, `partition ${e.partition} does not exist in ${topic} (${count} partitions)`)
        continue
      }
      const partition =
        e.partition !== undefined
          ? e.partition
          : e.keyStart >= 0
            ? partitionForKeyAt(e.body, e.keyStart, e.keyEnd, count)
            : this.#roundRobin++ % count
      const perPartition = partitionBytes.get(topic) ?? []
      partitionBytes.set(topic, perPartition)
      const bytes = (perPartition[partition] ?? 0) + (records[i] as LogRecord).payload.length
      if (bytes > partitionLimit && i > 0) {
        // this partition is full: the batch ends here, and the rest is read again for the next one
        end = i
        break
      }
      perPartition[partition] = bytes
      outbound.push({ topic, partition, timestamp: e.timestamp, body: e.body, index: i })
    }
    const batch: PreparedBatch = {
      kind: 'batch',
      start,
      records,
      poison,
      waiting,
      outbound,
      metadataError,
      signals,
    }
    if (end === records.length) return batch
    reader.rewind((records[end - 1] as LogRecord).next)
    return cut(batch, end)
  }

  /** From the cluster's metadata cache, which decides how long a count is trusted. */
  async #partitionCount(topic: string): Promise<number> {
    return await this.#deps.cluster().admin.partitions(topic, this.options.deadlineMs)
  }

  #fail(reason: string, records: number): void {
    this.stats.failedBatches++
    this.stats.lastError = reason
    this.#deps.breaker.failure(reason)
    this.emit('failure', reason)
    if (channels.failure.hasSubscribers) channels.failure.publish({ reason, records })
  }

  /**
   * Sends one prepared batch and settles its records: acknowledged and dead-lettered ones are committed;
   * on a failure the breaker is told and the reader must go back to the first unsettled record.
   * `sending` is called once the request is on its way, so the caller can prepare the next batch.
   */
  async #transmit(batch: PreparedBatch, sending: () => void): Promise<{ rewindTo?: LogPosition }> {
    const { records, outbound, start } = batch
    const poison = new Map(batch.poison)
    this.stats.batches++
    if (batch.metadataError !== undefined) {
      this.#fail(`metadata: ${batch.metadataError}`, records.length)
      return { rewindTo: start }
    }

    // A request cut short by its deadline may still succeed: wait (bounded) for its real outcome before
    // sending the same records again, so a slow success is not turned into a duplicate.
    const alreadyOk = new Set<number>()
    if (this.#late) {
      const late = this.#late
      this.#late = undefined
      const settled = await this.#awaitLate(late.outcomes)
      if (this.#stopping) {
        // closing: leave these records in the backlog rather than risk a second copy on the way out
        this.#late = late
        return { rewindTo: start }
      }
      // kept by seq: a probe batch holds only the first of these records, later batches the rest
      if (settled) {
        for (const [k, seq] of late.seqs.entries()) this.#lateOutcomes.set(seq, settled[k] as RecordOutcome)
      }
    }
    if (this.#lateOutcomes.size > 0) {
      records.forEach((r, i) => {
        const o = this.#lateOutcomes.get(r.seq)
        if (!o) return
        this.#lateOutcomes.delete(r.seq)
        if (o.kind === 'ok') alreadyOk.add(i)
        if (o.kind === 'ok' || !o.ambiguous) this.#maybeWritten.delete(r.seq)
      })
    }
    const toSend = alreadyOk.size > 0 ? outbound.filter((o) => !alreadyOk.has(o.index)) : outbound

    let bytes = 0
    for (const r of records) bytes += r.payload.length
    this.stats.inflightBytes = bytes
    const lastSeq = (records.at(-1) as LogRecord).seq
    if (this.#deps.sentMark && lastSeq >= this.#replayBelow) {
      await this.#deps.sentMark.write(lastSeq + 1n)
    }
    // replays: records sent before the last restart, or sent before and maybe written
    if (this.#maybeWritten.size > 0 || (records[0] as LogRecord).seq < this.#replayBelow) {
      for (const o of toSend) {
        const seq = (records[o.index] as LogRecord).seq
        if (seq < this.#replayBelow || this.#maybeWritten.delete(seq)) this.stats.replayed++
      }
    }

    let outcomes: RecordOutcome[] = []
    if (toSend.length > 0) {
      const request = withDeadline(
        this.#deps.cluster().producer.send(toSend, this.options.deadlineMs),
        this.options.deadlineMs + 1000,
        'send',
      )
      sending()
      try {
        outcomes = await request
      } catch (error) {
        outcomes = toSend.map(() => ({
          kind: 'error',
          errorClass: 'retriable',
          reason: (error as Error).message,
          ambiguous: true,
        }))
      }
    }
    this.stats.inflightBytes = 0
    /** Each record's outcome by its index in `records`; none for records that were not sent. */
    const byIndex: (RecordOutcome | undefined)[] = new Array(records.length)
    for (const i of alreadyOk) byIndex[i] = OK
    let poisonAnswers = 0
    for (let k = 0; k < toSend.length; k++) {
      const outcome = outcomes[k] ?? NO_OUTCOME
      const i = (toSend[k] as (typeof toSend)[number]).index
      byIndex[i] = outcome
      if (outcome.kind === 'error' && outcome.errorClass === 'poison') {
        // A poison answer for a multi-record request may be caused by one record: isolate before blaming.
        poison.set(i, outcome.reason)
        poisonAnswers++
      }
    }
    if (poisonAnswers > 0) await this.#isolatePoison(outbound, byIndex, poison)

    // The first record that is neither acknowledged nor poison decides where the cursor stops.
    let firstFail = -1
    for (let i = 0; i < records.length; i++) {
      const outcome = byIndex[i]
      if (poison.size > 0 && poison.has(i)) continue
      if (outcome?.kind !== 'ok') {
        firstFail = i
        break
      }
    }
    const settledEnd = firstFail < 0 ? records.length : firstFail
    for (let i = 0; i < settledEnd; i++) {
      const reason = poison.get(i)
      if (reason === undefined) continue
      const record = records[i] as LogRecord
      const poisoned: PoisonedRecord = {
        seq: record.seq,
        envelope: decodable(record.payload),
        payload: record.payload,
        reason,
        loggedAt: record.timestamp,
      }
      const waits = this.#deps.wait !== undefined && batch.waiting.has(i)
      try {
        if (waits) await this.#deps.wait?.(poisoned)
        else await this.#deps.deadLetter(poisoned)
      } catch (error) {
        this.#fail(`dead-lettering failed: ${(error as Error).message}`, records.length)
        this.#commit(records, i, countPoison(poison, i))
        return { rewindTo: i === 0 ? start : (records[i - 1] as LogRecord).next }
      }
      if (waits) {
        this.stats.waited++
        continue
      }
      this.stats.deadLettered++
      this.emit('poisoned', poisoned)
      if (channels.deadLetter.hasSubscribers) channels.deadLetter.publish({ seq: record.seq, reason })
    }
    this.#commit(records, settledEnd, countPoison(poison, settledEnd))
    if (this.#deps.onDelivered) {
      const byTopic = new Map<string, number>()
      for (const o of outbound) {
        if (o.index >= settledEnd || poison.has(o.index)) continue
        byTopic.set(o.topic, (byTopic.get(o.topic) ?? 0) + 1)
      }
      for (const [topic, n] of byTopic) this.#deps.onDelivered(topic, n)
    }
    if (firstFail >= 0) {
      const failed = byIndex[firstFail]
      const reason = failed?.kind === 'error' ? failed.reason : 'send failed'
      // Everything from firstFail on goes again; re-sending one that was or may have been written is a replay.
      const lateSeqs: bigint[] = []
      const lateOutcomes: Promise<RecordOutcome>[] = []
      for (let i = firstFail; i < records.length; i++) {
        const o = byIndex[i]
        const seq = (records[i] as LogRecord).seq
        if (o && (o.kind === 'ok' || o.ambiguous)) this.#maybeWritten.add(seq)
        if (o?.kind === 'error' && o.late) {
          lateSeqs.push(seq)
          lateOutcomes.push(o.late)
        }
      }
      if (lateSeqs.length > 0) this.#late = { seqs: lateSeqs, outcomes: Promise.all(lateOutcomes) }
      if (failed?.kind === 'error' && failed.errorClass === 'fatal') {
        this.stats.rebuilds++
        await this.#deps
          .cluster()
          .producer.rebuild(reason)
          .catch(() => undefined)
      }
      this.#fail(reason, records.length)
      return { rewindTo: firstFail === 0 ? start : (records[firstFail - 1] as LogRecord).next }
    }
    this.#deps.breaker.success()
    if (channels.batch.hasSubscribers) channels.batch.publish({ records: records.length, bytes })
    return {}
  }

  /** The late outcome, or undefined when `lateWaitMs` passes or the dispatcher is stopping. */
  async #awaitLate(outcomes: Promise<RecordOutcome[]>): Promise<RecordOutcome[] | undefined> {
    let timer: NodeJS.Timeout | undefined
    const stopped = new Promise<undefined>((resolve) => {
      timer = setTimeout(() => resolve(undefined), this.options.lateWaitMs ?? 30_000)
      this.#stopWake = () => resolve(undefined)
    })
    try {
      return await Promise.race([outcomes.catch(() => undefined), stopped])
    } finally {
      clearTimeout(timer)
      this.#stopWake = undefined
    }
  }

  /** Re-sends each record of a topic that got a poison answer on its own, to find the real culprit(s). */
  async #isolatePoison(
    outbound: Outbound[],
    byIndex: (RecordOutcome | undefined)[],
    poison: Map<number, string>,
  ): Promise<void> {
    const suspects = outbound.filter((o) => {
      const outcome = byIndex[o.index]
      return outcome?.kind === 'error' && outcome.errorClass === 'poison'
    })
    if (suspects.length <= 1) return
    for (const s of suspects) {
      const [outcome] = await this.#deps
        .cluster()
        .producer.send([s], this.options.deadlineMs)
        .catch((): RecordOutcome[] => [
          { kind: 'error', errorClass: 'retriable', reason: 'isolation send failed', ambiguous: true },
        ])
      const result = outcome ?? {
        kind: 'error',
        errorClass: 'retriable',
        reason: 'no outcome',
        ambiguous: true,
      }
      byIndex[s.index] = result
      if (result.kind === 'error' && result.errorClass === 'poison') poison.set(s.index, result.reason)
      else poison.delete(s.index)
    }
  }

  #commit(records: LogRecord[], count: number, deadLettered: number): void {
    if (count <= 0) return
    const last = records[count - 1] as LogRecord
    this.stats.delivered += count - deadLettered
    // The cursor moves now; the checkpoint is persisted behind us (coalesced). Losing it to a crash only
    // means these records are replayed, and the sent mark counts those replays.
    this.#deps.backlog.commit(last.next).catch((error: unknown) => {
      this.stats.lastError = `checkpoint failed: ${(error as Error).message}`
    })
    this.emit('delivered', last.next.seq)
  }
}

/** The first `n` records of a prepared batch. */
function cut(batch: PreparedBatch, n: number): PreparedBatch {
  return {
    ...batch,
    records: batch.records.slice(0, n),
    poison: new Map([...batch.poison].filter(([i]) => i < n)),
    waiting: new Set([...batch.waiting].filter((i) => i < n)),
    outbound: batch.outbound.filter((o) => o.index < n),
  }
}

function decodable(payload: Buffer): Envelope | undefined {
  try {
    return decodeEnvelope(payload)
  } catch {
    return undefined
  }
}

function countPoison(poison: Map<number, string>, below: number): number {
  let n = 0
  for (const i of poison.keys()) if (i < below) n++
  return n
}
