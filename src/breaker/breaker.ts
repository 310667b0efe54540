/**
 * The circuit breaker between the dispatcher and Kafka. Pure: no I/O, no timers; time comes from the
 * injected clock and randomness from the injected source, so tests drive it deterministically.
 *
 *   closed ──failure──► open ──cooldown elapsed──► half-open ──probe ok──► closed
 *                        ▲                            │
 *                        └────────probe failed────────┘
 *
 * In `open` nothing is sent. In `half-open` exactly one probe batch is allowed; everything else is
 * refused until its outcome is known. Cooldowns grow exponentially with consecutive openings and are
 * jittered so that many processes do not retry in step.
 */
import { readInteger, readNumber, readObject, rejectUnknownKeys } from '../options.ts'
import { StateMachine } from '../state-machine.ts'

export type BreakerState = 'closed' | 'open' | 'half-open'

const TRANSITIONS: Record<BreakerState, readonly BreakerState[]> = {
  closed: ['open'],
  open: ['half-open'],
  'half-open': ['closed', 'open'],
}

export interface BreakerOptions {
  /** First cooldown in ms. Default 500. */
  readonly cooldownMs?: number
  /** Cap on the cooldown. Default 30 000. */
  readonly maxCooldownMs?: number
  /** Fraction of the cooldown that is randomised, 0…1. Default 0.5. */
  readonly jitter?: number
}

export interface ResolvedBreakerOptions {
  readonly cooldownMs: number
  readonly maxCooldownMs: number
  readonly jitter: number
}

export function resolveBreakerOptions(input: unknown, prefix = 'breaker'): ResolvedBreakerOptions {
  const o = readObject(input, prefix)
  rejectUnknownKeys(o, prefix, ['cooldownMs', 'maxCooldownMs', 'jitter'])
  const cooldownMs = readInteger(o.cooldownMs, `${prefix}.cooldownMs`, 500, { min: 1, max: 3_600_000 })
  return {
    cooldownMs,
    maxCooldownMs: readInteger(o.maxCooldownMs, `${prefix}.maxCooldownMs`, Math.max(30_000, cooldownMs), {
      min: cooldownMs,
      max: 3_600_000,
    }),
    jitter: readNumber(o.jitter, `${prefix}.jitter`, 0.5, { min: 0, max: 1 }),
  }
}

/** What the caller may do now. */
export type Permit =
  | { readonly kind: 'send' }
  | { readonly kind: 'probe' }
  | { readonly kind: 'wait'; readonly retryInMs: number }

export class Breaker {
  readonly machine: StateMachine<BreakerState>
  readonly options: ResolvedBreakerOptions
  readonly #now: () => number
  readonly #random: () => number
  #openings = 0
  #reopenAt = 0
  #probeOut = false
  #lastOutcome: 'success' | 'failure' | undefined

  constructor(
    options: BreakerOptions = {},
    now: () => number = () => performance.now(),
    random: () => number = Math.random,
  ) {
    this.options = resolveBreakerOptions(options)
    this.#now = now
    this.#random = random
    this.machine = new StateMachine<BreakerState>('breaker', 'closed', TRANSITIONS, now)
  }

  get state(): BreakerState {
    return this.machine.state
  }

  get lastOutcome(): 'success' | 'failure' | undefined {
    return this.#lastOutcome
  }

  /** Asks to send. In half-open, the first caller gets the probe; the rest wait. */
  acquire(): Permit {
    const state = this.machine.state
    if (state === 'closed') return { kind: 'send' }
    if (state === 'open') {
      const remaining = this.#reopenAt - this.#now()
      if (remaining > 0) return { kind: 'wait', retryInMs: remaining }
      this.machine.transitionTo('half-open', 'cooldown elapsed')
    }
    if (this.#probeOut) return { kind: 'wait', retryInMs: Math.max(1, this.options.cooldownMs / 10) }
    this.#probeOut = true
    return { kind: 'probe' }
  }

  /**
   * True only while closed. An open breaker whose cooldown has passed, or a half-open one, would still
   * let one probe through acquire(); callers that must not wait on Kafka (kafka ack mode) refuse then.
   */
  isClosed(): boolean {
    return this.machine.state === 'closed'
  }

  success(): void {
    this.#lastOutcome = 'success'
    if (this.machine.state === 'half-open') {
      this.#probeOut = false
      this.#openings = 0
      this.machine.transitionTo('closed', 'probe succeeded')
    }
  }

  failure(reason: string): void {
    this.#lastOutcome = 'failure'
    const state = this.machine.state
    if (state === 'open') return
    this.#probeOut = false
    this.#openings++
    const base = Math.min(
      this.options.maxCooldownMs,
      this.options.cooldownMs * 2 ** Math.min(30, this.#openings - 1),
    )
    const cooldown = base * (1 - this.options.jitter * this.#random())
    this.#reopenAt = this.#now() + cooldown
    this.machine.transitionTo('open', reason)
  }

  /** Ms until a probe may go out (0 when closed or due). */
  retryInMs(): number {
    return this.machine.state === 'open' ? Math.max(0, this.#reopenAt - this.#now()) : 0
  }
}
