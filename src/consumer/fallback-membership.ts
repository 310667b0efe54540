/**
 * `groupProtocol: 'auto'`: KIP-848 first, and the classic protocol when the broker does not offer KIP-848
 * (it answers the first ConsumerGroupHeartbeat as an unsupported API: a broker before Kafka 4.0, or one
 * whose group.coordinator.rebalance.protocols leaves `consumer` out). The switch happens at most once,
 * before anything was assigned, and holds for the consumer's life.
 */
import type { SpillwayError } from '../errors.ts'
import type { Membership, MembershipHandlers, PartitionRef } from './membership.ts'

export class FallbackMembership implements Membership {
  readonly #handlers: MembershipHandlers
  readonly #classic: (handlers: MembershipHandlers) => Membership
  #current: Membership
  #protocol: 'consumer' | 'classic' = 'consumer'
  #assigned = false
  #started = false
  #retired: Promise<void> | undefined

  constructor(
    modern: (handlers: MembershipHandlers) => Membership,
    classic: (handlers: MembershipHandlers) => Membership,
    handlers: MembershipHandlers,
  ) {
    this.#handlers = handlers
    this.#classic = classic
    this.#current = modern({
      assigned: (partitions: readonly PartitionRef[], epoch: number) => {
        this.#assigned = true
        return handlers.assigned(partitions, epoch)
      },
      revoked: handlers.revoked,
      trouble: (error: SpillwayError | undefined) => {
        if (error?.code === 'SPW_ERR_KAFKA_UNSUPPORTED' && this.#protocol === 'consumer' && !this.#assigned)
          this.#fallBack()
        else handlers.trouble(error)
      },
    })
  }

  /** The protocol in use: 'consumer' (KIP-848) until the broker turns out not to offer it. */
  get protocol(): 'consumer' | 'classic' {
    return this.#protocol
  }

  get memberId(): string | undefined {
    return this.#current.memberId
  }

  get epoch(): number {
    return this.#current.epoch
  }

  start(): void {
    this.#started = true
    this.#current.start()
  }

  #fallBack(): void {
    this.#protocol = 'classic'
    const modern = this.#current
    this.#current = this.#classic(this.#handlers)
    // the KIP-848 member never joined: it has nothing to give up and stops at once
    this.#retired = modern.leave()
    if (this.#started) this.#current.start()
  }

  async leave(): Promise<void> {
    await this.#retired
    await this.#current.leave()
  }
}
