/**
 * Runs the handler over fetched records: lanes by ordering (key executor), duplicates skipped (dedupe),
 * superseded records of a key skipped (coalesce), one key's records together (batch), a deadline per
 * call, and the error policies (retry in place with back-off, skip, dead-letter). A record leaves the
 * runner done (its offset completes) or, when its partition is revoked first, not at all.
 */
import { type ErrorCode, SpillwayError } from '../errors.ts'
import { sleep } from '../sleep.ts'
import type { FetchedRecord } from '../transport/cluster.ts'
import type { DedupeStore } from './dedupe.ts'
import type { KeyExecutor } from './key-executor.ts'
import type { ResolvedConsumerOptions } from './options.ts'
import type { PartitionWork } from './partition.ts'
import type { RetryRouter } from './retry/router.ts'
import {
  type ConsumedRecord,
  type ConsumerStatus,
  type ErrorAction,
  type HandlerContext,
  ID_HEADER,
} from './types.ts'

export interface RunnerCounters {
  handled: number
  failed: number
  retried: number
  skipped: number
  deadLettered: number
  duplicates: number
  coalesced: number
  alreadyDone: number
  handlerTimeouts: number
  handlerCalls: number
  dropped: number
  /** Records moved on to a retry tier. */
  tiered: number
  /** Records moved to a tier unhandled, behind their key's earlier records (retry.blockKey). */
  blockedBehind: number
}

export interface RunnerDeps<T> {
  readonly options: ResolvedConsumerOptions<T>
  readonly executor: KeyExecutor
  readonly dedupe: DedupeStore | undefined
  /** Writes records to their dead-letter topic; resolves once Kafka has them. */
  readonly deadLetter: (
    records: readonly ConsumedRecord<Buffer | null>[],
    error: unknown,
    code: ErrorCode,
  ) => Promise<void>
  /** With retry tiers: moves failed records to the next tier or the dead-letter topic, transactionally. */
  readonly retry: RetryRouter | undefined
  /** A record is done: its bytes leave the buffer. */
  readonly onDone: (work: PartitionWork, offset: bigint) => void
  readonly status: (status: ConsumerStatus) => void
  readonly counters: RunnerCounters
}

interface Entry {
  readonly work: PartitionWork
  readonly record: ConsumedRecord<Buffer | null>
  readonly lane: string | null
  readonly sameKey: string
  /** The record carries a spillway-id: only such records can be copies of an event (dedupe). */
  readonly hasId: boolean
  taken: boolean
}

type Outcome =
  | { readonly ok: true }
  | { readonly ok: false; readonly error: unknown; readonly code: ErrorCode }

/** The record's spillway-id header (the producer's event id), if it has one. */
function idHeader(headers: readonly (readonly [string, Buffer])[]): string | undefined {
  for (const [name, value] of headers) if (name === ID_HEADER) return value.toString('utf8')
  return undefined
}

/**
 * A fetched record as the handler sees it. Its id is its spillway-id header, or for a record without one
 * an id made from where it sits in Kafka.
 */
function toConsumed(
  topic: string,
  partition: number,
  r: FetchedRecord,
  headerId: string | undefined,
): ConsumedRecord<Buffer | null> {
  return {
    topic,
    partition,
    offset: r.offset,
    timestamp: r.timestamp,
    key: r.key,
    value: r.value,
    headers: r.headers,
    id: headerId ?? `kafka:${topic}:${partition}:${r.offset}`,
  }
}

export class Runner<T> {
  readonly #deps: RunnerDeps<T>
  /**
   * Entries not yet taken, per lane, in offset order, from `head` on (read by index, never shifted; a
   * slot taken is cleared, so a lane that never empties does not keep the records it handed out).
   */
  readonly #lanes = new Map<string, { items: (Entry | undefined)[]; head: number }>()

  constructor(deps: RunnerDeps<T>) {
    this.#deps = deps
  }

  /** The lane a record runs in: its key's, its partition's, or its own. */
  #lane(
    work: PartitionWork,
    record: ConsumedRecord<Buffer | null>,
  ): { lane: string | null; sameKey: string } {
    const ordering = this.#deps.options.ordering
    // a record without a key has no order to keep: it runs on its own, like 'unordered'
    if (ordering === 'unordered' || (ordering === 'key' && record.key === null))
      return { lane: null, sameKey: '' }
    const sameKey = record.key === null ? '\u0001' : record.key.toString('latin1')
    if (ordering === 'partition') return { lane: work.key, sameKey }
    return { lane: `${work.key}\u0000${sameKey}`, sameKey }
  }

  /** Hands fetched records of one partition to their lanes. */
  submit(work: PartitionWork, records: readonly FetchedRecord[]): void {
    for (const raw of records) {
      work.add(raw.offset, raw.timestamp, raw.size)
      if (work.tracker.alreadyDone(raw.offset)) {
        // a previous owner handled it (the commit's metadata says so)
        this.#deps.counters.alreadyDone++
        this.#deps.onDone(work, raw.offset)
        continue
      }
      const headerId = idHeader(raw.headers)
      const record = toConsumed(work.topic, work.partition, raw, headerId)
      const { lane, sameKey } = this.#lane(work, record)
      const hasId = headerId !== undefined
      const entry: Entry = { work, record, lane, sameKey, hasId, taken: false }
      if (lane !== null) {
        let list = this.#lanes.get(lane)
        if (!list) {
          list = { items: [], head: 0 }
          this.#lanes.set(lane, list)
        }
        list.items.push(entry)
      }
      this.#deps.executor.submit({ lane, group: work.key, run: (release) => this.#run(entry, release) })
    }
  }

  /** Forgets a revoked partition's records that have not started. Returns how many. */
  drop(work: PartitionWork): number {
    const dropped = this.#deps.executor.drop((task) => task.group === work.key)
    for (const [lane, list] of [...this.#lanes])
      if (list.items[list.head]?.work === work) this.#lanes.delete(lane)
    this.#deps.counters.dropped += dropped
    return dropped
  }

  /** The entries this run handles: the entry alone, or with batch/coalesce its key's waiting run. */
  #take(entry: Entry): Entry[] {
    if (entry.lane === null) {
      entry.taken = true
      return [entry]
    }
    const list = this.#lanes.get(entry.lane) ?? { items: [], head: 0 }
    const { batch, coalesce, maxBatchRecords, maxBatchBytes, batchBy } = this.#deps.options
    const limit = coalesce ? Number.POSITIVE_INFINITY : batch ? maxBatchRecords : 1
    const acrossKeys = batch && batchBy === 'partition'
    const chunk: Entry[] = []
    let bytes = 0
    while (list.head < list.items.length && chunk.length < limit) {
      const next = list.items[list.head] as Entry
      if (!acrossKeys && next.sameKey !== entry.sameKey && chunk.length > 0) break
      const size = (next.record.key?.length ?? 0) + (next.record.value?.length ?? 0)
      if (batch && !coalesce && chunk.length > 0 && bytes + size > maxBatchBytes) break
      bytes += size
      list.items[list.head++] = undefined
      next.taken = true
      chunk.push(next)
      if (next === entry && limit === 1) break
    }
    if (list.head >= list.items.length) this.#lanes.delete(entry.lane)
    else if (list.head > 1024 && list.head * 2 > list.items.length) {
      list.items = list.items.slice(list.head)
      list.head = 0
    }
    if (!chunk.includes(entry)) {
      entry.taken = true
      chunk.unshift(entry)
    }
    return chunk
  }

  async #run(entry: Entry, release: () => void): Promise<void> {
    // let the rest of this fetch's records reach their lanes first, so a batch or coalesce sees them
    await null
    if (entry.taken || entry.work.stopping) return
    let chunk = this.#take(entry)
    const work = entry.work
    work.running++
    try {
      if (this.#deps.options.coalesce && chunk.length > 1) {
        // a full-state topic: only the newest record of the key matters
        const newest = chunk[chunk.length - 1] as Entry
        for (const older of chunk.slice(0, -1)) {
          this.#deps.counters.coalesced++
          this.#deps.onDone(work, older.record.offset)
        }
        chunk = [newest]
      }
      const fresh: Entry[] = this.#deps.dedupe ? [] : chunk
      if (this.#deps.dedupe)
        for (const e of chunk) {
          let seen = e.hasId ? this.#isDuplicate(this.#dedupeKey(e.record)) : false
          if (typeof seen !== 'boolean') seen = await seen
          if (!seen) {
            fresh.push(e)
            continue
          }
          this.#deps.counters.duplicates++
          this.#deps.retry?.settled([e.record])
          this.#deps.onDone(work, e.record.offset)
        }
      // retry.blockKey: a record whose key has earlier records in a later tier follows them there
      const router = this.#deps.retry
      const behind = router ? fresh.filter((e) => router.follows(e.record) !== undefined) : []
      const now = behind.length > 0 ? fresh.filter((e) => !behind.includes(e)) : fresh
      if (now.length > 0) await this.#handle(work, now, release)
      for (const e of behind) await this.#forward(work, [e], undefined, false, release)
    } finally {
      work.running--
      work.notifyIdle()
    }
  }

  /** What dedupe remembers a record by: its id, and with retry tiers the tier it is in. */
  #dedupeKey(record: ConsumedRecord<Buffer | null>): string {
    return this.#deps.retry ? this.#deps.retry.dedupeKey(record) : record.id
  }

  /** Whether dedupe has seen the id; a promise only when the store answers with one. */
  #isDuplicate(id: string): boolean | Promise<boolean> {
    const store = this.#deps.dedupe
    if (!store) return false
    try {
      const seen = store.has(id)
      // a dedupe store that fails must not lose the record: handle it (at least once)
      return typeof seen === 'boolean' ? seen : seen.catch(() => false)
    } catch {
      return false
    }
  }

  async #handle(work: PartitionWork, entries: readonly Entry[], release: () => void): Promise<void> {
    const { options, counters } = this.#deps
    const raw = entries.map((e) => e.record)
    for (let attempt = 1; ; attempt++) {
      if (work.revoked || work.stopping) return
      const outcome = await this.#call(work, raw, attempt)
      // revoked while the handler ran: its outcome no longer counts (the next owner handles the records)
      if (work.revoked) return
      if (outcome.ok) {
        for (const e of entries) {
          const remembered =
            e.hasId && this.#deps.dedupe ? this.#remember(this.#dedupeKey(e.record)) : undefined
          if (remembered) await remembered
          this.#deps.onDone(work, e.record.offset)
        }
        this.#deps.retry?.settled(raw)
        counters.handled += raw.length
        return
      }
      counters.failed += raw.length
      if (outcome.code === 'SPW_ERR_HANDLER_TIMEOUT') counters.handlerTimeouts++
      let action = await this.#decide(outcome, raw, attempt)
      // in-place attempts spent: on to the next retry tier if there are tiers, else afterRetries
      const spent = action === 'retry' && attempt > options.retries
      if (spent && !this.#deps.retry) action = options.afterRetries
      const first = raw[0] as ConsumedRecord<Buffer | null>
      this.#deps.status({
        type: 'record-error',
        code: outcome.code,
        message: outcome.error instanceof Error ? outcome.error.message : String(outcome.error),
        topic: first.topic,
        partition: first.partition,
        offset: first.offset,
        id: first.id,
        action,
        attempt,
      })
      if (action === 'retry' && !spent) {
        counters.retried += raw.length
        work.retrying++
        const backoff = Math.min(options.maxRetryBackoffMs, options.retryBackoffMs * 2 ** (attempt - 1))
        await sleep(backoff, work.signal)
        work.retrying--
        continue
      }
      if (action === 'skip') {
        counters.skipped += raw.length
        for (const r of raw) this.#deps.onDone(work, r.offset)
        this.#deps.retry?.settled(raw)
        return
      }
      if (this.#deps.retry) {
        await this.#forward(work, entries, outcome, action === 'dead-letter', release)
        return
      }
      if (await this.#toDeadLetters(work, raw, outcome)) {
        counters.deadLettered += raw.length
        for (const r of raw) this.#deps.onDone(work, r.offset)
      }
      return
    }
  }

  /**
   * Moves failed records to their next tier (or the dead-letter topic) in a transaction with their
   * offsets, trying again with back-off until it commits or the partition goes. The forwarder completes
   * the offsets once committed; the ids are remembered so a copy of the event in this topic is skipped.
   */
  async #forward(
    work: PartitionWork,
    entries: readonly Entry[],
    outcome: (Outcome & { ok: false }) | undefined,
    deadLetterNow: boolean,
    release: () => void,
  ): Promise<void> {
    // waiting for a transaction is not a handler's work: other keys may use the slot meanwhile
    release()
    const router = this.#deps.retry as RetryRouter
    const raw = entries.map((e) => e.record)
    // undefined outcome: not handled, only following its key's earlier records (retry.blockKey)
    const behind = outcome ? undefined : router.follows(raw[0] as ConsumedRecord<Buffer | null>)
    const reason = outcome
      ? outcome.error instanceof Error
        ? outcome.error.message
        : String(outcome.error)
      : 'its key has earlier records in a retry tier (retry.blockKey)'
    const code = outcome?.code ?? 'SPW_ERR_HANDLER_FAILED'
    work.blocked++
    try {
      for (let attempt = 1; ; attempt++) {
        if (work.revoked) return
        try {
          const moved = await router.forward(work, raw, {
            reason,
            code,
            deadLetterNow,
            ...(behind !== undefined ? { behind } : {}),
          })
          if (!moved) return
          for (const to of moved) {
            if (behind !== undefined) this.#deps.counters.blockedBehind++
            else if (to.kind === 'tier') this.#deps.counters.tiered++
            else this.#deps.counters.deadLettered++
          }
          for (const e of entries) {
            const remembered = e.hasId ? this.#remember(this.#dedupeKey(e.record)) : undefined
            if (remembered) await remembered
          }
          return
        } catch (error) {
          const first = raw[0] as ConsumedRecord<Buffer | null>
          this.#deps.status({
            type: 'record-error',
            code: error instanceof SpillwayError ? error.code : 'SPW_ERR_RETRY_TRANSACTION',
            message: `forwarding failed: ${error instanceof Error ? error.message : String(error)}`,
            topic: first.topic,
            partition: first.partition,
            offset: first.offset,
            id: first.id,
            action: deadLetterNow ? 'dead-letter' : 'retry',
            attempt,
          })
          await sleep(
            Math.min(this.#deps.options.maxRetryBackoffMs, 100 * 2 ** Math.min(attempt, 8)),
            work.signal,
          )
        }
      }
    } finally {
      work.blocked--
    }
  }

  /** Tells dedupe the id was handled; a promise only when the store answers with one. */
  #remember(id: string): undefined | Promise<void> {
    // not remembering only means a later copy is handled again: at least once still holds
    try {
      const added = this.#deps.dedupe?.add(id)
      return added === undefined ? undefined : added.catch(() => undefined)
    } catch {
      return undefined
    }
  }

  async #decide(
    outcome: Outcome & { ok: false },
    raw: readonly ConsumedRecord<Buffer | null>[],
    attempt: number,
  ): Promise<ErrorAction> {
    const { onError, onHandlerTimeout } = this.#deps.options
    const policy = outcome.code === 'SPW_ERR_HANDLER_TIMEOUT' ? onHandlerTimeout : onError
    if (typeof policy !== 'function') return policy
    try {
      const action = await policy({
        records: raw as never,
        error: outcome.error,
        code: outcome.code,
        attempt,
      })
      return action === 'retry' || action === 'skip' || action === 'dead-letter' ? action : 'dead-letter'
    } catch {
      // a policy that throws cannot choose: keep the record (dead-letter) rather than drop it
      return 'dead-letter'
    }
  }

  /** Writes to the dead-letter topic, retrying with back-off until Kafka has it or the partition goes. */
  async #toDeadLetters(
    work: PartitionWork,
    raw: readonly ConsumedRecord<Buffer | null>[],
    outcome: Outcome & { ok: false },
  ): Promise<boolean> {
    work.blocked++
    try {
      for (let attempt = 1; ; attempt++) {
        if (work.revoked) return false
        try {
          await this.#deps.deadLetter(raw, outcome.error, outcome.code)
          return true
        } catch (error) {
          const first = raw[0] as ConsumedRecord<Buffer | null>
          this.#deps.status({
            type: 'record-error',
            code: error instanceof SpillwayError ? error.code : 'SPW_ERR_UNAVAILABLE',
            message: `dead-letter write failed: ${error instanceof Error ? error.message : String(error)}`,
            topic: first.topic,
            partition: first.partition,
            offset: first.offset,
            id: first.id,
            action: 'dead-letter',
            attempt,
          })
          await sleep(
            Math.min(this.#deps.options.maxRetryBackoffMs, 200 * 2 ** Math.min(attempt, 8)),
            work.signal,
          )
        }
      }
    } finally {
      work.blocked--
    }
  }

  /** One call of the handler under its deadline, its record values decoded. */
  async #call(
    work: PartitionWork,
    raw: readonly ConsumedRecord<Buffer | null>[],
    attempt: number,
  ): Promise<Outcome> {
    const { options, counters } = this.#deps
    let records: readonly ConsumedRecord<T>[]
    try {
      const decode = options.decode
      records = decode
        ? raw.map((r) => ({ ...r, value: decode(r.value, r) }))
        : (raw as unknown as readonly ConsumedRecord<T>[])
    } catch (error) {
      return { ok: false, error, code: 'SPW_ERR_HANDLER_FAILED' }
    }
    counters.handlerCalls++
    const call = new Call(work, performance.now() + options.handlerTimeoutMs)
    const argument = options.batch ? records : (records[0] as ConsumedRecord<T>)
    const handler = options.handler as (argument: unknown, context: HandlerContext) => unknown
    let result: unknown
    try {
      result = handler(
        argument,
        call.context(attempt, (some, error) => this.#deadLetterSome(raw, some, error)),
      )
    } catch (error) {
      return { ok: false, error, code: 'SPW_ERR_HANDLER_FAILED' }
    }
    // a handler that finished synchronously needs no deadline
    if (typeof (result as PromiseLike<unknown> | undefined)?.then !== 'function') return { ok: true }
    this.#calls.add(call)
    this.#sweep()
    try {
      return await Promise.race([
        Promise.resolve(result).then(
          (): Outcome => ({ ok: true }),
          (error: unknown): Outcome => ({ ok: false, error, code: 'SPW_ERR_HANDLER_FAILED' }),
        ),
        call.ended,
      ])
    } finally {
      this.#calls.delete(call)
    }
  }

  /**
   * A handler's own dead letters (a sink's rows the database refused): the raw records behind the ones it
   * names go to their dead-letter topics now, and are counted; the handler then finishes the batch.
   */
  async #deadLetterSome(
    raw: readonly ConsumedRecord<Buffer | null>[],
    some: readonly ConsumedRecord<unknown>[],
    error: unknown,
  ): Promise<void> {
    const wanted = new Set(some.map((r) => `${r.topic}\u0000${r.partition}\u0000${r.offset}`))
    const records = raw.filter((r) => wanted.has(`${r.topic}\u0000${r.partition}\u0000${r.offset}`))
    if (records.length === 0) return
    const code = error instanceof SpillwayError ? error.code : 'SPW_ERR_HANDLER_FAILED'
    await this.#deps.deadLetter(records, error, code)
    this.#deps.counters.deadLettered += records.length
  }

  /** Calls awaiting their handler; one timer checks their deadlines, rather than a timer per call. */
  readonly #calls = new Set<Call>()
  #sweeper: NodeJS.Timeout | undefined

  #sweep(): void {
    if (this.#sweeper) return
    const every = Math.max(5, Math.min(250, Math.floor(this.#deps.options.handlerTimeoutMs / 4)))
    this.#sweeper = setInterval(() => {
      const now = performance.now()
      for (const call of this.#calls) {
        if (call.work.revoked)
          call.end({ ok: false, error: call.work.signal.reason, code: 'SPW_ERR_GROUP_FENCED' })
        else if (now >= call.deadline) {
          const error = new SpillwayError(
            'SPW_ERR_HANDLER_TIMEOUT',
            `the handler took longer than ${this.#deps.options.handlerTimeoutMs} ms`,
          )
          call.end({ ok: false, error, code: 'SPW_ERR_HANDLER_TIMEOUT' })
        }
      }
      if (this.#calls.size === 0) {
        clearInterval(this.#sweeper)
        this.#sweeper = undefined
      }
    }, every)
  }

  /** Ends the calls of a partition given up: they are not waited for, and their signals abort. */
  abandon(work: PartitionWork): void {
    for (const call of this.#calls) {
      if (call.work === work) call.end({ ok: false, error: work.signal.reason, code: 'SPW_ERR_GROUP_FENCED' })
    }
  }
}

/** One handler call: its deadline, and a signal and an end made only if the handler needs them. */
class Call {
  readonly work: PartitionWork
  readonly deadline: number
  #ended: Promise<Outcome> | undefined
  #end: ((outcome: Outcome) => void) | undefined
  #outcome: Outcome | undefined
  controller: AbortController | undefined
  reason: unknown

  constructor(work: PartitionWork, deadline: number) {
    this.work = work
    this.deadline = deadline
  }

  /** Settles once the call is ended from outside (its deadline, a revocation). */
  get ended(): Promise<Outcome> {
    this.#ended ??= this.#outcome
      ? Promise.resolve(this.#outcome)
      : new Promise((resolve) => {
          this.#end = resolve
        })
    return this.#ended
  }

  context(
    attempt: number,
    deadLetter: (records: readonly ConsumedRecord<unknown>[], error: unknown) => Promise<void>,
  ): HandlerContext {
    return new CallContext(this, attempt, deadLetter)
  }

  end(outcome: Outcome): void {
    if (this.reason !== undefined) return
    this.reason = outcome.ok ? new Error('ended') : outcome.error
    this.#outcome = outcome
    this.controller?.abort(this.reason)
    this.#end?.(outcome)
  }
}

/** What a handler call is given: a class, so a context costs one small object and no closure. */
class CallContext implements HandlerContext {
  readonly attempt: number
  readonly deadLetter: (records: readonly ConsumedRecord<unknown>[], error: unknown) => Promise<void>
  readonly #call: Call

  constructor(
    call: Call,
    attempt: number,
    deadLetter: (records: readonly ConsumedRecord<unknown>[], error: unknown) => Promise<void>,
  ) {
    this.#call = call
    this.attempt = attempt
    this.deadLetter = deadLetter
  }

  get signal(): AbortSignal {
    const call = this.#call
    call.controller ??= new AbortController()
    if (call.reason !== undefined && !call.controller.signal.aborted) call.controller.abort(call.reason)
    return call.controller.signal
  }
}
