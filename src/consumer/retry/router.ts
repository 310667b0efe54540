/**
 * Where a record goes after its handler gave up on it: the next retry tier, or the dead-letter topic once
 * the tiers or the attempts (`maxAttempts`) are spent or the error policy said 'dead-letter'. The copy
 * keeps the record's key, value, id and the user's headers, goes to the same partition number (tier
 * topics are made with the source topic's partition count, so a key stays on one partition number through
 * the tiers), and the move commits with the source offset through the transactional forwarder.
 */
import { deadLetterTopic } from '../options.ts'
import type { PartitionWork } from '../partition.ts'
import type { ConsumedRecord } from '../types.ts'
import type { Copy, TransactionalForwarder } from './forwarder.ts'
import { nextHeaders, retryState } from './headers.ts'
import { type ResolvedRetry, tierTopic, tierTopics } from './options.ts'

export type Destination = { readonly kind: 'tier'; readonly stage: number } | { readonly kind: 'dead-letter' }

export interface RouterDeps {
  readonly retry: ResolvedRetry
  readonly sources: readonly string[]
  readonly deadLetterRoutes: Readonly<Record<string, string>>
  readonly groupId: string
  readonly forwarder: TransactionalForwarder
  /** Partition count of a topic (the consumer's metadata cache). */
  readonly partitions: (topic: string) => Promise<number>
  readonly now?: () => number
}

export class RetryRouter {
  readonly #deps: RouterDeps
  /** Tier topic → its stage (1-based); source topics are stage 0. */
  readonly stages: ReadonlyMap<string, number>
  /**
   * retry.blockKey: per partition number and key, how many of the key's records are in the tiers and
   * the deepest tier one of them is in. Later records of the key follow them there.
   */
  readonly #blocked = new Map<string, { count: number; stage: number }>()

  constructor(deps: RouterDeps) {
    this.#deps = deps
    this.stages = tierTopics(deps.retry, deps.sources)
  }

  /** Every topic the consumer reads: its sources, then the tiers. */
  get topics(): string[] {
    return [...new Set([...this.#deps.sources, ...this.stages.keys()])]
  }

  stage(topic: string): number {
    return this.stages.get(topic) ?? 0
  }

  /** The dedupe key of a record: its id in the source topics; its id and tier in a tier. */
  dedupeKey(record: ConsumedRecord<unknown>): string {
    const stage = this.stage(record.topic)
    return stage === 0 ? record.id : `${record.id}\u0000retry-${stage}`
  }

  #blockOf(record: ConsumedRecord<unknown>): string | undefined {
    if (!this.#deps.retry.blockKey || record.key === null) return undefined
    return `${record.partition}\u0000${record.key.toString('latin1')}`
  }

  /**
   * retry.blockKey: the tier a record must follow its key's earlier records to without being handled
   * (they are in a later tier than the record), or undefined when it may be handled now.
   */
  follows(record: ConsumedRecord<Buffer | null>): number | undefined {
    const key = this.#blockOf(record)
    const block = key === undefined ? undefined : this.#blocked.get(key)
    if (!block || block.count <= 0) return undefined
    return block.stage > this.stage(record.topic) ? block.stage : undefined
  }

  /** Keys blocked now (retry.blockKey). */
  get blockedKeys(): number {
    return this.#blocked.size
  }

  /** A tier's record is done here (handled, skipped, a copy): its key holds one record fewer in the tiers. */
  settled(records: readonly ConsumedRecord<Buffer | null>[]): void {
    for (const record of records) {
      if (this.stage(record.topic) === 0) continue
      const key = this.#blockOf(record)
      const block = key === undefined ? undefined : this.#blocked.get(key)
      if (!key || !block) continue
      if (--block.count <= 0) this.#blocked.delete(key)
    }
  }

  /** A record moved from its stage to `to`: keep its key's block count and depth. */
  #moved(record: ConsumedRecord<Buffer | null>, to: Destination): void {
    const key = this.#blockOf(record)
    if (key === undefined) return
    const from = this.stage(record.topic)
    if (to.kind === 'dead-letter') {
      if (from > 0) this.settled([record])
      return
    }
    const block = this.#blocked.get(key)
    if (block) {
      if (from === 0) block.count++
      block.stage = Math.max(block.stage, to.stage)
    } else this.#blocked.set(key, { count: 1, stage: to.stage })
  }

  /** Where a record that failed now goes next. */
  destination(record: ConsumedRecord<unknown>, deadLetterNow: boolean): Destination {
    const stage = this.stage(record.topic)
    const attempts = retryState(record, stage > 0).attempts + 1
    const next = stage + 1
    if (deadLetterNow || next > this.#deps.retry.tiers.length || attempts >= this.#deps.retry.maxAttempts)
      return { kind: 'dead-letter' }
    return { kind: 'tier', stage: next }
  }

  /** The topic a destination means for a record. */
  topicOf(record: ConsumedRecord<unknown>, to: Destination): string {
    const source = retryState(record, this.stage(record.topic) > 0).sourceTopic
    if (to.kind === 'tier') return tierTopic(this.#deps.retry, to.stage, source)
    return this.#deps.retry.deadLetterTopic ?? deadLetterTopic(this.#deps.deadLetterRoutes, source)
  }

  /**
   * Moves failed records on, each to its destination, committing their offsets in the same transaction.
   * Resolves with where each went once committed, or undefined when the partition was revoked first.
   * `failure.behind` moves records that were not handled to the tier their key's earlier records are in.
   */
  async forward(
    work: PartitionWork,
    records: readonly ConsumedRecord<Buffer | null>[],
    failure: {
      readonly reason: string
      readonly code: string
      readonly deadLetterNow: boolean
      readonly behind?: number
    },
  ): Promise<Destination[] | undefined> {
    const now = (this.#deps.now ?? Date.now)()
    const destinations: Destination[] = []
    const copies: Copy[] = []
    // partition counts, asked once per destination topic of this move
    const counts = new Map<string, number>()
    for (const record of records) {
      const to: Destination =
        failure.behind !== undefined
          ? { kind: 'tier', stage: failure.behind }
          : this.destination(record, failure.deadLetterNow)
      destinations.push(to)
      const topic = this.topicOf(record, to)
      let count = counts.get(topic)
      if (count === undefined) {
        count = await this.#deps.partitions(topic)
        counts.set(topic, count)
      }
      const stage = to.kind === 'tier' ? to.stage : ('dead-letter' as const)
      const delay = to.kind === 'tier' ? (this.#deps.retry.tiers[to.stage - 1]?.delayMs ?? 0) : 0
      copies.push({
        topic,
        partition: work.partition % count,
        key: record.key,
        value: record.value,
        timestamp: now,
        headers: nextHeaders(
          record,
          {
            stage,
            due: now + delay,
            reason: failure.reason,
            code: failure.code,
            attempted: failure.behind === undefined,
          },
          this.stage(record.topic) > 0,
          this.#deps.groupId,
          now,
        ),
      })
    }
    const done = await this.#deps.forwarder.forward(
      work,
      records.map((r) => r.offset),
      copies,
    )
    if (!done) return undefined
    for (const [i, r] of records.entries()) this.#moved(r, destinations[i] as Destination)
    return destinations
  }

  /** The tier and dead-letter topics to create for the source topics that exist, with their partition counts. */
  topicsToCreate(sources: ReadonlyMap<string, number>): { name: string; partitions: number }[] {
    const out = new Map<string, number>()
    for (const [source, partitions] of sources) {
      for (let stage = 1; stage <= this.#deps.retry.tiers.length; stage++) {
        const tier = tierTopic(this.#deps.retry, stage, source)
        out.set(tier, Math.max(out.get(tier) ?? 0, partitions))
      }
      const dead = this.#deps.retry.deadLetterTopic ?? deadLetterTopic(this.#deps.deadLetterRoutes, source)
      out.set(dead, Math.max(out.get(dead) ?? 0, partitions))
    }
    return [...out].map(([name, partitions]) => ({ name, partitions }))
  }
}
