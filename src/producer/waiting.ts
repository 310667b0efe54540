/**
 * Events for a topic that does not exist yet. Operators create topics after deploying, and many clusters
 * create them on first use, so a missing topic is not poison: its events move to a waiting log of their
 * topic's own (`<log.dir>/waiting/<topic>`, fsynced like every log) and the main log's cursor moves on,
 * so no other topic is held up. Each waiting topic has a dispatcher of its own; while the topic is
 * missing, its breaker backs off (cooldown up to `breaker.maxCooldownMs`) and it tries again, until the
 * topic exists or an event has waited `timeoutMs` (default: forever) and becomes a dead letter.
 *
 * Order per topic holds: a topic's waiting log is first in, first out, and while it holds events, the
 * main dispatcher sends new events of that topic to its end (`holds`) rather than to Kafka. A topic's
 * log is closed and removed once it has delivered everything, so memory follows the topics that wait.
 */
import { readdirSync } from 'node:fs'
import { rm } from 'node:fs/promises'
import { join } from 'node:path'
import { Breaker } from '../breaker/breaker.ts'
import { DurableLog } from '../log/log.ts'
import type { ResolvedLogOptions } from '../log/options.ts'
import { isTopicName } from '../topic-name.ts'
import type { DeadLetters } from './dead-letters.ts'
import { Dispatcher, type DispatcherDeps, type DispatcherOptions, type PoisonedRecord } from './dispatcher.ts'

export interface WaitingOptions {
  /** Where each topic's waiting log goes: `<dir>/<topic>`. */
  readonly dir: string
  /** The main log's options: waiting logs share its limits and fsync policy. */
  readonly log: ResolvedLogOptions
  /** How long an event may wait before it is dead-lettered, ms; undefined waits forever. */
  readonly timeoutMs: number | undefined
  readonly dispatch: DispatcherOptions
  /** The breaker settings a topic's dispatcher backs off with while the topic is missing. */
  readonly breaker: ConstructorParameters<typeof Breaker>[0]
  readonly cluster: DispatcherDeps['cluster']
  /** Told when a topic starts or stops waiting (the producer's status stream). */
  readonly report?: (change: 'started' | 'ended', topic: string, events: number) => void
}

export interface WaitingStats {
  /** Events waiting, in all. */
  readonly events: number
  /** Events waiting, per topic. */
  readonly topics: Readonly<Record<string, number>>
}

interface Lane {
  readonly topic: string
  readonly log: DurableLog
  readonly dispatcher: Dispatcher
  /** Events parked and not yet delivered or dead-lettered. */
  events: number
  /** Wall-clock ms of the oldest event waiting. */
  since: number
  /** Set while the drained lane is being closed: parking waits for it, then opens a new lane. */
  closing: Promise<void> | undefined
}

/** Waiting logs hold an event and nothing more: a small tail cache each (memory follows the topics). */
const WAITING_TAIL_CACHE_BYTES = 256 * 1024

export class WaitingRoom {
  readonly #options: WaitingOptions
  readonly #deadLetters: DeadLetters
  readonly #lanes = new Map<string, Lane>()
  readonly #opening = new Map<string, Promise<Lane>>()
  #emptyWaiters = new Set<() => void>()
  #closed = false
  /** Events delivered from the waiting logs. */
  delivered = 0

  /**
   * Lanes for the topics a previous run left events waiting for are opened at once: the directory is
   * listed synchronously, so `holds()` answers for them before the main dispatcher's first batch.
   */
  constructor(options: WaitingOptions, deadLetters: DeadLetters) {
    this.#options = options
    this.#deadLetters = deadLetters
    let names: string[] = []
    try {
      names = readdirSync(options.dir)
    } catch {
      // nothing waited before
    }
    for (const topic of names.filter(isTopicName)) {
      void this.#lane(topic).then(
        (lane) => (lane.events === 0 ? this.#retire(lane) : undefined),
        () => undefined,
      )
    }
  }

  #lane(topic: string): Promise<Lane> {
    const open = this.#lanes.get(topic)
    if (open && !open.closing) return Promise.resolve(open)
    let opening = this.#opening.get(topic)
    if (!opening) {
      opening = (async () => {
        await open?.closing
        const log = await DurableLog.open({
          ...this.#options.log,
          dir: join(this.#options.dir, topic),
          tailCacheBytes: Math.min(this.#options.log.tailCacheBytes, WAITING_TAIL_CACHE_BYTES),
        })
        const left = log.stats()
        const lane: Lane = {
          topic,
          log,
          // what a previous run (or lane) left in this log waits too
          events: Number(left.pendingRecords),
          since: left.oldestPendingTimestamp ?? Date.now(),
          closing: undefined,
          dispatcher: new Dispatcher(this.#options.dispatch, {
            backlog: log,
            cluster: this.#options.cluster,
            // its own breaker: while the topic is missing it backs off, and no other topic notices
            breaker: new Breaker(this.#options.breaker),
            deadLetter: (record) => this.#deadLetter(lane, record),
            wait: (record) => this.#stillMissing(lane, record),
            onDelivered: (_topic, count) => {
              this.delivered += count
              this.#settled(lane, count)
            },
          }),
        }
        this.#lanes.set(topic, lane)
        lane.dispatcher.start()
        return lane
      })().finally(() => this.#opening.delete(topic))
      this.#opening.set(topic, opening)
    }
    return opening
  }

  /** The main dispatcher: does this topic have events waiting, that a new one must follow? */
  holds(topic: string): boolean {
    return this.#lanes.has(topic) || this.#opening.has(topic)
  }

  /** The main dispatcher's `wait`: moves an event to the end of its topic's waiting log. */
  async park(record: PoisonedRecord): Promise<void> {
    const topic = record.envelope?.topic
    if (topic === undefined || !isTopicName(topic) || this.#closed)
      return await this.#deadLetters.store(record)
    const lane = await this.#lane(topic)
    await lane.log.append([record.payload])
    if (lane.events === 0) {
      lane.since = Date.now()
      this.#options.report?.('started', topic, 1)
    }
    lane.events++
  }

  /**
   * A lane's `wait`: its topic is still missing. Throwing makes its dispatcher keep the event and back
   * off; past `timeoutMs` the event becomes a dead letter instead.
   */
  async #stillMissing(lane: Lane, record: PoisonedRecord): Promise<void> {
    const timeout = this.#options.timeoutMs
    if (timeout !== undefined && Date.now() - lane.since >= timeout) {
      const topic = lane.topic
      return await this.#deadLetter(lane, {
        ...record,
        reason: `topic ${topic} did not appear within ${timeout} ms (unknownTopicTimeoutMs)`,
      })
    }
    throw new Error(`topic ${lane.topic} does not exist yet; ${lane.events} events wait for it`)
  }

  async #deadLetter(lane: Lane, record: PoisonedRecord): Promise<void> {
    await this.#deadLetters.store(record)
    this.#settled(lane, 1)
  }

  #settled(lane: Lane, count: number): void {
    lane.events = Math.max(0, lane.events - count)
    if (lane.events > 0) return
    this.#options.report?.('ended', lane.topic, 0)
    // the next event still waiting (if any) is the oldest now
    lane.since = Date.now()
    void this.#retire(lane)
    if (this.#total() === 0) for (const settle of [...this.#emptyWaiters]) settle()
  }

  /** A drained lane: its dispatcher stops, its log closes and its directory goes. */
  async #retire(lane: Lane): Promise<void> {
    if (lane.closing) return
    lane.closing = (async () => {
      await lane.dispatcher.stop()
      await lane.log.close()
      // something parked meanwhile keeps the directory (the next lane reopens it)
      if (lane.events === 0) await rm(join(this.#options.dir, lane.topic), { recursive: true, force: true })
    })().finally(() => {
      if (this.#lanes.get(lane.topic) === lane) this.#lanes.delete(lane.topic)
    })
    await lane.closing
  }

  #total(): number {
    let n = 0
    for (const lane of this.#lanes.values()) n += lane.events
    return n
  }

  /** Resolves true once nothing waits, false when `ms` passes first. */
  empty(ms: number): Promise<boolean> {
    if (this.#total() === 0) return Promise.resolve(true)
    return new Promise((resolve) => {
      const settle = (): void => {
        clearTimeout(timer)
        this.#emptyWaiters.delete(settle)
        resolve(this.#total() === 0)
      }
      const timer = setTimeout(settle, ms)
      this.#emptyWaiters.add(settle)
    })
  }

  stats(): WaitingStats {
    let events = 0
    const topics: Record<string, number> = {}
    for (const lane of this.#lanes.values()) {
      if (lane.events === 0) continue
      events += lane.events
      topics[lane.topic] = lane.events
    }
    return { events, topics }
  }

  /** Stops every lane: what still waits stays in its log for the next run. */
  async close(): Promise<void> {
    this.#closed = true
    await Promise.allSettled([...this.#opening.values()])
    await Promise.allSettled(
      [...this.#lanes.values()].map(async (lane) => {
        await lane.closing
        await lane.dispatcher.stop()
        await lane.log.close()
      }),
    )
    this.#lanes.clear()
  }
}
