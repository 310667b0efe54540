/**
 * An explicit state machine: a table of legal moves, a guarded `transitionTo` that throws on an illegal
 * one, and a `transition` event for each move. The breaker, the log and the producer lifecycle use it, so
 * that "what state am I in?" is one value and never a pair of booleans that can disagree.
 */
import { EventEmitter } from 'node:events'
import { type ErrorCode, SpillwayError } from './errors.ts'

export interface Transition<S extends string> {
  readonly from: S
  readonly to: S
  readonly reason: string
  /** Monotonic ms (performance.now() or the injected clock). */
  readonly at: number
}

export class StateMachine<S extends string> extends EventEmitter<{ transition: [Transition<S>] }> {
  readonly name: string
  readonly #table: Readonly<Record<S, readonly S[]>>
  readonly #now: () => number
  #state: S

  constructor(
    name: string,
    initial: S,
    table: Readonly<Record<S, readonly S[]>>,
    now: () => number = performance.now.bind(performance),
  ) {
    super()
    this.name = name
    this.#state = initial
    this.#table = table
    this.#now = now
  }

  get state(): S {
    return this.#state
  }

  is(...states: S[]): boolean {
    return states.includes(this.#state)
  }

  canTransitionTo(next: S): boolean {
    return this.#table[this.#state].includes(next)
  }

  transitionTo(next: S, reason: string): void {
    const from = this.#state
    if (!this.#table[from].includes(next)) {
      throw new SpillwayError(
        'SPW_ERR_ILLEGAL_TRANSITION',
        `${this.name}: illegal transition ${from} → ${next} (${reason})`,
        {
          details: { machine: this.name, from, to: next },
        },
      )
    }
    this.#state = next
    this.emit('transition', { from, to: next, reason, at: this.#now() })
  }

  /**
   * The guard of an operation that is legal only in some states: undefined while the machine is in one
   * of `allowed`, otherwise the refusal to answer with (returned, not thrown, so hot paths such as a
   * send can refuse without unwinding).
   */
  refusal(
    operation: string,
    allowed: readonly S[],
    code: ErrorCode,
    message = `${this.name}: ${operation} is not allowed while ${this.#state}`,
  ): SpillwayError | undefined {
    if (allowed.includes(this.#state)) return undefined
    return new SpillwayError(code, message, {
      details: { machine: this.name, state: this.#state, operation },
    })
  }
}
