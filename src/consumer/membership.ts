/**
 * How a consumer comes to own partitions.
 *
 * GroupMembership: KIP-848 (`group.protocol=consumer`). Heartbeats run on their own timer and never wait
 * for handlers. A new target assignment is reconciled one step at a time: partitions to give up are
 * revoked first (the consumer finishes or abandons their work and commits it under the epoch it owned
 * them), and only then does the next heartbeat tell the coordinator they are free; new partitions are
 * taken once their committed offsets are known. A fenced member (its epoch or id unknown to the
 * coordinator) has lost everything: its partitions are dropped without a commit and it joins again.
 *
 * StaticAssignment: no group; every partition of the topics, nothing committed (`spillway consume`
 * without --group).
 */
import { randomUUID } from 'node:crypto'
import { asSpillwayError, SpillwayError } from '../errors.ts'
import type { AdminFacet, ClusterSnapshot, GroupFacet, TopicPartitions } from '../transport/cluster.ts'

export interface PartitionRef {
  readonly topic: string
  readonly partition: number
}

export interface MembershipHandlers {
  /** New partitions, owned from `epoch` on. Resolves once they are set up (offsets known). */
  assigned(partitions: readonly PartitionRef[], epoch: number): Promise<void>
  /** Partitions to give up; `lost`: the group already gave them away, commit nothing. */
  revoked(partitions: readonly PartitionRef[], lost: boolean): Promise<void>
  /** A failure talking to the cluster (kept trying with back-off), or its end (error undefined). */
  trouble(error: SpillwayError | undefined): void
}

export interface Membership {
  readonly memberId: string | undefined
  readonly epoch: number
  start(): void
  /** Gives everything up (handlers.revoked) and leaves the group. */
  leave(): Promise<void>
}

export const key = (p: PartitionRef): string => `${p.topic}\u0000${p.partition}`

export function flatten(list: readonly TopicPartitions[]): PartitionRef[] {
  return list.flatMap((t) => t.partitions.map((partition) => ({ topic: t.topic, partition })))
}

export function grouped(refs: Iterable<PartitionRef>): TopicPartitions[] {
  const byTopic = new Map<string, number[]>()
  for (const r of refs) byTopic.set(r.topic, [...(byTopic.get(r.topic) ?? []), r.partition])
  return [...byTopic].map(([topic, partitions]) => ({ topic, partitions: partitions.sort((a, b) => a - b) }))
}

export interface GroupMembershipOptions {
  readonly groupId: string
  readonly topics: readonly string[]
  readonly rebalanceTimeoutMs: number
  readonly requestTimeoutMs: number
  /**
   * The broker's assignor to ask for (KIP-848 server-side assignors, e.g. 'range', which gives one member
   * the same partition number of every topic); default the broker's choice.
   */
  readonly serverAssignor?: string
}

export class GroupMembership implements Membership {
  readonly memberId = randomUUID()
  #epoch = 0
  readonly #group: GroupFacet
  readonly #options: GroupMembershipOptions
  readonly #handlers: MembershipHandlers
  /** What the member owns now (told to the coordinator once changed). */
  readonly #owned = new Map<string, PartitionRef>()
  #ownedChanged = true
  #subscriptionSent = false
  #target: PartitionRef[] | undefined
  #reconciling: Promise<void> | undefined
  #timer: NodeJS.Timeout | undefined
  #intervalMs = 1000
  #failures = 0
  #stopped = false
  #beating: Promise<void> | undefined

  constructor(group: GroupFacet, options: GroupMembershipOptions, handlers: MembershipHandlers) {
    this.#group = group
    this.#options = options
    this.#handlers = handlers
  }

  get epoch(): number {
    return this.#epoch
  }

  start(): void {
    this.#schedule(0)
  }

  #schedule(ms: number): void {
    clearTimeout(this.#timer)
    if (this.#stopped) return
    if (this.#beating) {
      // one heartbeat at a time: the one under way schedules the next
      if (ms === 0) this.#again = true
      return
    }
    this.#timer = setTimeout(() => {
      this.#beating = this.#beat().then((next) => {
        this.#beating = undefined
        const now = this.#again
        this.#again = false
        if (next !== undefined) this.#schedule(now ? 0 : next)
      })
    }, ms)
  }

  #again = false

  /** One heartbeat; resolves with the delay to the next one (undefined: stopped). */
  async #beat(): Promise<number | undefined> {
    if (this.#stopped) return undefined
    const ownedChanged = this.#ownedChanged
    const request = {
      groupId: this.#options.groupId,
      memberId: this.memberId,
      memberEpoch: this.#epoch,
      rebalanceTimeoutMs: this.#options.rebalanceTimeoutMs,
      topics: this.#subscriptionSent && this.#epoch > 0 ? null : this.#options.topics,
      owned: ownedChanged || this.#epoch === 0 ? grouped(this.#owned.values()) : null,
      serverAssignor: this.#options.serverAssignor ?? null,
    }
    try {
      const answer = await this.#group.heartbeat(request, this.#options.requestTimeoutMs)
      if (this.#stopped) return undefined
      if (this.#failures > 0) this.#handlers.trouble(undefined)
      this.#failures = 0
      this.#subscriptionSent = true
      if (ownedChanged) this.#ownedChanged = false
      this.#epoch = answer.memberEpoch
      if (answer.heartbeatIntervalMs > 0) this.#intervalMs = answer.heartbeatIntervalMs
      if (answer.assignment) {
        this.#target = flatten(answer.assignment)
        this.#reconcile()
      }
      return this.#intervalMs
    } catch (error) {
      if (this.#stopped) return undefined
      const e = asSpillwayError(error)
      this.#failures++
      if (e.code === 'SPW_ERR_GROUP_FENCED') {
        // the group went on without us: what we own is someone else's now
        const lost = [...this.#owned.values()]
        this.#owned.clear()
        this.#epoch = 0
        this.#subscriptionSent = false
        this.#ownedChanged = true
        this.#target = undefined
        this.#handlers.trouble(e)
        await this.#reconciling
        if (lost.length > 0) await this.#handlers.revoked(lost, true)
        return Math.min(this.#intervalMs, 500)
      }
      const moving = ((e.details.kafkaErrors as string[] | undefined) ?? []).some((n) =>
        n.includes('COORDINATOR'),
      )
      // a group's coordinator is still loading, or just moved: usual for a new group, so ask again soon
      if (moving && this.#failures <= 5) return 50 * 2 ** this.#failures
      this.#handlers.trouble(e)
      return Math.min(this.#intervalMs * 2 ** Math.min(this.#failures - 1, 3), 10_000)
    }
  }

  /** Moves what we own toward the target, one step at a time (a step at once when one is running). */
  #reconcile(): void {
    if (this.#reconciling) return
    const run = async (): Promise<void> => {
      while (this.#target && !this.#stopped) {
        const target = new Map(this.#target.map((p) => [key(p), p]))
        const revoke = [...this.#owned.values()].filter((p) => !target.has(key(p)))
        const add = [...target.values()].filter((p) => !this.#owned.has(key(p)))
        if (revoke.length === 0 && add.length === 0) break
        if (revoke.length > 0) {
          await this.#handlers.revoked(revoke, false)
          for (const p of revoke) this.#owned.delete(key(p))
        }
        if (add.length > 0) {
          const epoch = this.#epoch
          await this.#handlers.assigned(add, epoch)
          for (const p of add) this.#owned.set(key(p), p)
        }
        this.#ownedChanged = true
        // tell the coordinator now rather than at the next interval: a revocation frees partitions
        this.#schedule(0)
      }
    }
    // cleared in a later tick, so a reconciliation that finishes at once does not leave itself set
    this.#reconciling = run().finally(() => {
      this.#reconciling = undefined
    })
  }

  async leave(): Promise<void> {
    this.#stopped = true
    clearTimeout(this.#timer)
    await this.#beating
    await this.#reconciling
    const owned = [...this.#owned.values()]
    this.#owned.clear()
    if (owned.length > 0) await this.#handlers.revoked(owned, false)
    if (this.#epoch <= 0) return
    try {
      await this.#group.heartbeat(
        {
          groupId: this.#options.groupId,
          memberId: this.memberId,
          memberEpoch: -1,
          rebalanceTimeoutMs: this.#options.rebalanceTimeoutMs,
          topics: null,
          owned: null,
        },
        this.#options.requestTimeoutMs,
      )
    } catch {
      // leaving is a courtesy: the session timeout frees the partitions anyway
    }
  }
}

/**
 * The topics' metadata, or SPW_ERR_TOPIC_MISSING naming those that do not exist. Asked as metadata, not
 * partitions(): a consumer never creates the topics it reads.
 */
export async function existingTopics(
  admin: AdminFacet,
  topics: readonly string[],
  timeoutMs: number,
): Promise<ClusterSnapshot> {
  const snapshot = await admin.metadata(topics, timeoutMs)
  const missing = topics.filter((topic) => !snapshot.topics.some((t) => t.name === topic))
  if (missing.length > 0) {
    throw new SpillwayError('SPW_ERR_TOPIC_MISSING', `topic ${missing.join(', ')} does not exist`, {
      details: { topics: missing },
    })
  }
  return snapshot
}

/** Every partition of the topics, for a consumer without a group. */
export class StaticAssignment implements Membership {
  readonly memberId = undefined
  readonly epoch = 0
  readonly #admin: AdminFacet
  readonly #topics: readonly string[]
  readonly #handlers: MembershipHandlers
  readonly #requestTimeoutMs: number
  readonly #owned: PartitionRef[] = []
  #stopped = false
  #timer: NodeJS.Timeout | undefined
  #running: Promise<void> | undefined

  constructor(
    admin: AdminFacet,
    topics: readonly string[],
    requestTimeoutMs: number,
    handlers: MembershipHandlers,
  ) {
    this.#admin = admin
    this.#topics = topics
    this.#requestTimeoutMs = requestTimeoutMs
    this.#handlers = handlers
  }

  start(): void {
    this.#running = this.#assign(1)
  }

  async #assign(attempt: number): Promise<void> {
    if (this.#stopped) return
    try {
      const snapshot = await existingTopics(this.#admin, this.#topics, this.#requestTimeoutMs)
      const refs: PartitionRef[] = snapshot.topics.flatMap((t) =>
        t.partitions.map((p) => ({ topic: t.name, partition: p.partition })),
      )
      if (this.#stopped) return
      this.#handlers.trouble(undefined)
      await this.#handlers.assigned(refs, 0)
      this.#owned.push(...refs)
    } catch (error) {
      const e = asSpillwayError(error)
      this.#handlers.trouble(e)
      this.#timer = setTimeout(
        () => {
          this.#running = this.#assign(attempt + 1)
        },
        Math.min(500 * 2 ** Math.min(attempt - 1, 4), 10_000),
      )
    }
  }

  async leave(): Promise<void> {
    this.#stopped = true
    clearTimeout(this.#timer)
    await this.#running
    if (this.#owned.length > 0) await this.#handlers.revoked(this.#owned.splice(0), false)
  }
}
