/**
 * ClassicMembership: the classic group protocol (JoinGroup, SyncGroup, Heartbeat, LeaveGroup) with the
 * cooperative-sticky assignor, for brokers without KIP-848 (before Kafka 4.0, or with the `consumer`
 * rebalance protocol turned off).
 *
 * Cooperative rebalancing, as KIP-429 describes it: a member joins again while it keeps working on what it
 * owns, and tells the coordinator what that is. The leader keeps every owned partition with its owner
 * and leaves a partition that must move unassigned for one generation: its owner gives it up (finishes or
 * abandons the work and commits it under the generation it is in), then joins again, and the next
 * generation gives it to its new member. So no partition has two owners at once, and partitions that do
 * not move are never revoked. Heartbeats run on their own timer and never wait for handlers; a heartbeat
 * that says a rebalance is under way sends the member to join again. A member the coordinator no longer
 * knows has lost everything: its partitions are dropped without a commit and it joins as a new member.
 *
 * The generation plays the part of KIP-848's member epoch: commits carry it, and a commit refused as
 * stale is dropped like one refused for an old epoch.
 */
import { asSpillwayError, type SpillwayError } from '../errors.ts'
import { sleep } from '../sleep.ts'
import type { AdminFacet, ClassicSync, GroupFacet } from '../transport/cluster.ts'
import { cooperativeAssignment } from '../transport/group.ts'
import {
  flatten,
  grouped,
  key,
  type Membership,
  type MembershipHandlers,
  type PartitionRef,
} from './membership.ts'

export interface ClassicMembershipOptions {
  /** The consumer's session: the member talks to its coordinator over connections of its own. */
  readonly session: string
  readonly groupId: string
  readonly topics: readonly string[]
  readonly rebalanceTimeoutMs: number
  readonly requestTimeoutMs: number
  /** How long the coordinator waits for a heartbeat before it gives the member's partitions away. */
  readonly sessionTimeoutMs: number
}

/** Kafka's answer when the group is rebalancing: join again. */
const REBALANCING = 'REBALANCE_IN_PROGRESS'

const kafkaErrors = (e: SpillwayError): string[] => (e.details.kafkaErrors as string[] | undefined) ?? []

export class ClassicMembership implements Membership {
  #memberId = ''
  #generation = -1
  readonly #group: GroupFacet
  readonly #admin: AdminFacet
  readonly #options: ClassicMembershipOptions
  readonly #handlers: MembershipHandlers
  readonly #owned = new Map<string, PartitionRef>()
  /** The generation the owned partitions were received under (what the next JoinGroup reports). */
  #ownedGeneration = -1
  #mustJoin = true
  readonly #stop = new AbortController()
  #running: Promise<void> | undefined

  constructor(
    group: GroupFacet,
    admin: AdminFacet,
    options: ClassicMembershipOptions,
    handlers: MembershipHandlers,
  ) {
    this.#group = group
    this.#admin = admin
    this.#options = options
    this.#handlers = handlers
  }

  get memberId(): string | undefined {
    return this.#memberId === '' ? undefined : this.#memberId
  }

  /** The generation this member is in; -1 before it joined. */
  get epoch(): number {
    return this.#generation
  }

  start(): void {
    this.#running ??= this.#run()
  }

  /** A third of the session timeout, as the Java client does by default. */
  get #intervalMs(): number {
    return Math.max(100, Math.floor(this.#options.sessionTimeoutMs / 3))
  }

  async #run(): Promise<void> {
    let failures = 0
    const signal = this.#stop.signal
    while (!signal.aborted) {
      try {
        if (this.#mustJoin) await this.#join()
        else {
          await sleep(this.#intervalMs, signal)
          if (signal.aborted) break
          await this.#group.classicHeartbeat(
            {
              session: this.#options.session,
              groupId: this.#options.groupId,
              memberId: this.#memberId,
              generationId: this.#generation,
            },
            this.#options.requestTimeoutMs,
          )
        }
        if (failures > 0) this.#handlers.trouble(undefined)
        failures = 0
      } catch (error) {
        if (signal.aborted) break
        const e = asSpillwayError(error)
        if (kafkaErrors(e).includes(REBALANCING)) {
          this.#mustJoin = true
          continue
        }
        failures++
        // a group's coordinator is still loading, or just moved: usual for a new group, so ask again soon
        const moving = kafkaErrors(e).some((n) => n.includes('COORDINATOR'))
        if (moving && failures <= 5) {
          await sleep(50 * 2 ** failures, signal)
          continue
        }
        this.#handlers.trouble(e)
        if (e.code === 'SPW_ERR_GROUP_FENCED') await this.#lose()
        await sleep(Math.min(this.#intervalMs * 2 ** Math.min(failures - 1, 3), 10_000), signal)
      }
    }
  }

  /** The coordinator gave our partitions away: drop them uncommitted and join as a new member. */
  async #lose(): Promise<void> {
    const lost = [...this.#owned.values()]
    this.#owned.clear()
    this.#memberId = ''
    this.#generation = -1
    this.#ownedGeneration = -1
    this.#mustJoin = true
    if (lost.length > 0) await this.#handlers.revoked(lost, true)
  }

  /** One JoinGroup and SyncGroup round, then the owned partitions moved to the assignment. */
  async #join(): Promise<void> {
    const { session, groupId, topics, rebalanceTimeoutMs, requestTimeoutMs, sessionTimeoutMs } = this.#options
    // the coordinator holds JoinGroup until every member has joined, for up to the rebalance timeout
    const answer = await this.#group.classicJoin(
      {
        session,
        groupId,
        memberId: this.#memberId,
        sessionTimeoutMs,
        rebalanceTimeoutMs,
        topics,
        owned: grouped(this.#owned.values()),
        generationId: this.#ownedGeneration,
      },
      rebalanceTimeoutMs + requestTimeoutMs,
    )
    this.#memberId = answer.memberId
    if (process.env.CLDEBUG)
      console.log(
        'joined',
        answer.memberId,
        'gen',
        answer.generationId,
        'leader',
        answer.leader === answer.memberId,
        'members',
        answer.members.length,
      )
    let assignments: ClassicSync['assignments'] = []
    if (answer.leader === answer.memberId) {
      const wanted = [...new Set(answer.members.flatMap((m) => m.topics))]
      const snapshot = await this.#admin.metadata(wanted, requestTimeoutMs)
      const counts = new Map(snapshot.topics.map((t) => [t.name, t.partitions.length]))
      assignments = cooperativeAssignment(answer.members, counts)
    }
    const mine = await this.#group.classicSync(
      { session, groupId, memberId: answer.memberId, generationId: answer.generationId, assignments },
      requestTimeoutMs,
    )
    // closing: leave() gives up what we own; nothing new is taken
    if (this.#stop.signal.aborted) return
    this.#generation = answer.generationId
    this.#mustJoin = false
    const target = new Map(flatten(mine).map((p) => [key(p), p]))
    const revoke = [...this.#owned.values()].filter((p) => !target.has(key(p)))
    const add = [...target.values()].filter((p) => !this.#owned.has(key(p)))
    if (revoke.length > 0) {
      await this.#handlers.revoked(revoke, false)
      for (const p of revoke) this.#owned.delete(key(p))
      // cooperative: what we gave up goes to its new member in the next generation
      this.#mustJoin = true
    }
    if (add.length > 0) {
      await this.#handlers.assigned(add, answer.generationId)
      for (const p of add) this.#owned.set(key(p), p)
    }
    this.#ownedGeneration = answer.generationId
  }

  async leave(): Promise<void> {
    this.#stop.abort()
    // a JoinGroup under way may wait for the whole rebalance: leaving does not wait for it
    let timer: NodeJS.Timeout | undefined
    await Promise.race([
      this.#running?.catch(() => undefined),
      new Promise((resolve) => {
        timer = setTimeout(resolve, this.#options.requestTimeoutMs)
      }),
    ])
    clearTimeout(timer)
    const owned = [...this.#owned.values()]
    this.#owned.clear()
    if (owned.length > 0) await this.#handlers.revoked(owned, false)
    if (this.#memberId === '') return
    try {
      await this.#group.classicLeave(
        { session: this.#options.session, groupId: this.#options.groupId, memberId: this.#memberId },
        this.#options.requestTimeoutMs,
      )
    } catch {
      // leaving is a courtesy: the session timeout frees the partitions anyway
    }
  }
}
