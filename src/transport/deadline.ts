import { SpillwayError } from '../errors.ts'

/**
 * Resolves with `work`, or rejects with SPW_ERR_TIMEOUT after `ms`: no caller ever waits on a client
 * lock, queue or socket past its deadline. The work itself may still finish later; callers treat a
 * timed-out send as "outcome unknown" (it may have been written), never as "not written".
 */
export function withDeadline<T>(work: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: NodeJS.Timeout | undefined
  const deadline = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () =>
        reject(
          new SpillwayError('SPW_ERR_TIMEOUT', `${what} did not finish within ${ms} ms`, {
            details: { deadlineMs: ms },
          }),
        ),
      ms,
    )
  })
  // a late rejection of `work` after the deadline must not become an unhandled rejection
  work.catch(() => undefined)
  return Promise.race([work, deadline]).finally(() => clearTimeout(timer))
}
