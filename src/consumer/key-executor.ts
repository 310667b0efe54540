/**
 * Runs handler tasks with per-lane order and a global concurrency limit. A lane is what must stay in
 * order: a key (`ordering: 'key'`), a partition (`'partition'`), or nothing (`'unordered'`: every task its
 * own lane). One task per lane runs at a time, lanes run in parallel up to `concurrency`, and a free slot
 * goes to the lane that has waited longest, so a hot lane never holds the others back beyond its own
 * tasks.
 *
 * Lanes live only while they have work: memory follows what is buffered, not how many keys exist.
 */

export type Ordering = 'key' | 'partition' | 'unordered'

export interface Task {
  /** The lane: tasks of one lane run one at a time, in submission order. null: no order to keep. */
  readonly lane: string | null
  /** What the task belongs to (a partition), for drop(). */
  readonly group?: string
  /**
   * The task's work. `release()` gives its concurrency slot back while it goes on waiting (a record
   * being forwarded to a retry tier waits for a transaction, not for a handler); its lane stays held.
   */
  readonly run: (release: () => void) => Promise<void>
}

/** A lane's tasks from `head` on, in submission order (read by index and cleared, like the ready queue). */
interface Lane {
  tasks: (Task | undefined)[]
  head: number
  running: boolean
}

const pending = (lane: Lane): number => lane.tasks.length - lane.head

export class KeyExecutor {
  readonly #concurrency: number
  readonly #lanes = new Map<string, Lane>()
  /**
   * Lanes with work and nothing running, in the order they became ready, from `#readyHead` on (a queue
   * read by index: shifting a long array moves every element). A slot taken is cleared at once: a task
   * holds its record, and a queue that never empties would otherwise keep every record it ever ran.
   */
  #ready: (string | Task | undefined)[] = []
  #readyHead = 0
  /** Tasks without a lane waiting in #ready. */
  #free = 0
  #running = 0
  #idleWaiters: (() => void)[] = []

  constructor(concurrency: number) {
    if (!Number.isInteger(concurrency) || concurrency < 1) throw new RangeError('concurrency must be ≥ 1')
    this.#concurrency = concurrency
  }

  get running(): number {
    return this.#running
  }

  /** Tasks submitted and not yet started. */
  get queued(): number {
    let n = this.#free
    for (const lane of this.#lanes.values()) n += pending(lane)
    return n
  }

  submit(task: Task): void {
    if (task.lane === null) {
      // no order to keep: straight into the ready queue, no lane to keep
      this.#ready.push(task)
      this.#free++
      this.#pump()
      return
    }
    let lane = this.#lanes.get(task.lane)
    if (!lane) {
      lane = { tasks: [], head: 0, running: false }
      this.#lanes.set(task.lane, lane)
    }
    lane.tasks.push(task)
    if (!lane.running && pending(lane) === 1) this.#ready.push(task.lane)
    this.#pump()
  }

  /** Drops tasks not yet started whose lane matches (a revoked partition's work); returns how many. */
  drop(predicate: (task: Task) => boolean): number {
    let dropped = 0
    for (const [name, lane] of this.#lanes) {
      const keep = lane.tasks.slice(lane.head).filter((t) => t !== undefined && !predicate(t))
      dropped += pending(lane) - keep.length
      lane.tasks = keep
      lane.head = 0
      if (keep.length === 0 && !lane.running) this.#lanes.delete(name)
    }
    this.#ready = this.#ready.slice(this.#readyHead).filter((item) => {
      if (item === undefined) return false
      if (typeof item === 'string') {
        const lane = this.#lanes.get(item)
        return lane !== undefined && pending(lane) > 0
      }
      if (!predicate(item)) return true
      dropped++
      this.#free--
      return false
    })
    this.#readyHead = 0
    this.#notifyIdle()
    return dropped
  }

  /** Resolves once nothing runs and nothing is queued. */
  idle(): Promise<void> {
    if (this.#running === 0 && this.#lanes.size === 0 && this.#free === 0) return Promise.resolve()
    return new Promise((resolve) => this.#idleWaiters.push(resolve))
  }

  #pump(): void {
    while (this.#running < this.#concurrency && this.#readyHead < this.#ready.length) {
      const item = this.#ready[this.#readyHead] as string | Task
      this.#ready[this.#readyHead++] = undefined
      if (this.#readyHead > 1024 && this.#readyHead * 2 > this.#ready.length) {
        this.#ready = this.#ready.slice(this.#readyHead)
        this.#readyHead = 0
      }
      if (typeof item !== 'string') {
        this.#free--
        const slot = this.#slot()
        const finishFree = (): void => {
          slot.release()
          this.#notifyIdle()
        }
        item.run(slot.release).then(finishFree, finishFree)
        continue
      }
      const name = item
      const lane = this.#lanes.get(name)
      const task = lane?.tasks[lane.head]
      if (!lane || !task) continue
      lane.tasks[lane.head++] = undefined
      if (lane.head > 1024 && lane.head * 2 > lane.tasks.length) {
        lane.tasks = lane.tasks.slice(lane.head)
        lane.head = 0
      }
      lane.running = true
      const slot = this.#slot()
      const finish = (): void => {
        lane.running = false
        if (pending(lane) > 0) this.#ready.push(name)
        else this.#lanes.delete(name)
        slot.release()
        this.#pump()
        this.#notifyIdle()
      }
      // a task's own failure is its runner's business (the consumer wraps handlers); never stall a lane
      task.run(slot.release).then(finish, finish)
    }
  }

  /** A concurrency slot taken now; release() gives it back once, whoever calls it first. */
  #slot(): { release: () => void } {
    this.#running++
    let held = true
    return {
      release: () => {
        if (!held) return
        held = false
        this.#running--
        this.#pump()
      },
    }
  }

  #notifyIdle(): void {
    if (this.#running !== 0 || this.#lanes.size !== 0 || this.#free !== 0) return
    const waiters = this.#idleWaiters
    this.#idleWaiters = []
    for (const w of waiters) w()
  }
}
