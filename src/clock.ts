/** Injected time. Monotonic `now()` for deadlines, cooldowns and rates; `wall()` only for record timestamps. */
export interface Clock {
  now(): number
  wall(): number
  setTimeout(fn: () => void, ms: number): { unref(): unknown } | unknown
  clearTimeout(handle: unknown): void
}

export const systemClock: Clock = {
  now: () => performance.now(),
  wall: () => Date.now(),
  setTimeout: (fn, ms) => setTimeout(fn, ms),
  clearTimeout: (handle) => clearTimeout(handle as NodeJS.Timeout),
}
