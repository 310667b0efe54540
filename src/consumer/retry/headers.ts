/**
 * What a record carries through the retry tiers, in headers: its id (`spillway-id`, unchanged), where it
 * first came from, how many attempts it has had, its first and last error with their times, and when its
 * next attempt is due. The dead-letter copy after the last tier carries the consumer's dead-letter headers
 * too, so `spillway dead-letters replay --from-topic` sends it back to its source topic.
 */
import { DEAD_LETTER_HEADERS } from '../dead-letters.ts'
import { type ConsumedRecord, ID_HEADER } from '../types.ts'

export const RETRY_HEADERS = {
  attempts: 'spillway-retry-attempts',
  stage: 'spillway-retry-stage',
  due: 'spillway-retry-due',
  firstError: 'spillway-retry-first-error',
  firstAt: 'spillway-retry-first-at',
  lastError: 'spillway-retry-last-error',
  lastAt: 'spillway-retry-last-at',
  /** Forwarded behind a blocked key without being handled at this stage (retry.blockKey). */
  blocked: 'spillway-retry-blocked',
} as const

export type Headers = readonly (readonly [string, Buffer])[]

export function header(headers: Headers, name: string): string | undefined {
  for (const [k, v] of headers) if (k === name) return v.toString('utf8')
  return undefined
}

function numberHeader(headers: Headers, name: string): number | undefined {
  const raw = header(headers, name)
  if (raw === undefined) return undefined
  const n = Number(raw)
  return Number.isFinite(n) ? n : undefined
}

/**
 * Where a record stands in the retry chain, read from its headers. A record read from a source topic
 * starts afresh whatever its headers say (a dead letter replayed to its source carries old ones).
 */
export interface RetryState {
  /** Handler attempts so far (0 for a record that was never handled). */
  readonly attempts: number
  /** When its attempt in the current tier is due (ms since the epoch); 0 when at once. */
  readonly due: number
  readonly blocked: boolean
  readonly sourceTopic: string
  readonly sourcePartition: number
  readonly sourceOffset: bigint
  readonly firstError: string | undefined
  readonly firstAt: number | undefined
}

export function retryState(record: ConsumedRecord<unknown>, fromTier: boolean): RetryState {
  const h = fromTier ? record.headers : []
  const offset = header(h, DEAD_LETTER_HEADERS.offset)
  return {
    attempts: numberHeader(h, RETRY_HEADERS.attempts) ?? 0,
    due: numberHeader(h, RETRY_HEADERS.due) ?? 0,
    blocked: header(h, RETRY_HEADERS.blocked) === 'true',
    sourceTopic: header(h, DEAD_LETTER_HEADERS.topic) ?? record.topic,
    sourcePartition: numberHeader(h, DEAD_LETTER_HEADERS.partition) ?? record.partition,
    sourceOffset: offset !== undefined && /^\d+$/.test(offset) ? BigInt(offset) : record.offset,
    firstError: header(h, RETRY_HEADERS.firstError),
    firstAt: numberHeader(h, RETRY_HEADERS.firstAt),
  }
}

const OWN = new Set<string>([
  ID_HEADER,
  ...Object.values(RETRY_HEADERS),
  ...Object.values(DEAD_LETTER_HEADERS),
])

/**
 * The headers of a record's next copy: the user's headers unchanged, then the id, the origin, the attempt
 * count and the errors. `attempted` is false for a record forwarded behind a blocked key.
 */
export function nextHeaders(
  record: ConsumedRecord<unknown>,
  next: { stage: number | 'dead-letter'; due: number; reason: string; code: string; attempted: boolean },
  fromTier: boolean,
  group: string | undefined,
  now: number,
): [string, string][] {
  const state = retryState(record, fromTier)
  const attempts = state.attempts + (next.attempted ? 1 : 0)
  const out: [string, string][] = []
  for (const [k, v] of record.headers) if (!OWN.has(k)) out.push([k, v.toString('utf8')])
  const reason = next.reason.slice(0, 1000)
  out.push(
    [ID_HEADER, record.id],
    [DEAD_LETTER_HEADERS.topic, state.sourceTopic],
    [DEAD_LETTER_HEADERS.partition, String(state.sourcePartition)],
    [DEAD_LETTER_HEADERS.offset, String(state.sourceOffset)],
    [RETRY_HEADERS.attempts, String(attempts)],
  )
  if (group !== undefined) out.push([DEAD_LETTER_HEADERS.group, group])
  if (next.attempted || state.firstError !== undefined) {
    out.push(
      [RETRY_HEADERS.firstError, state.firstError ?? reason],
      [RETRY_HEADERS.firstAt, String(state.firstAt ?? now)],
    )
  }
  if (next.attempted) out.push([RETRY_HEADERS.lastError, reason], [RETRY_HEADERS.lastAt, String(now)])
  if (next.stage === 'dead-letter') {
    out.push([DEAD_LETTER_HEADERS.error, reason], [DEAD_LETTER_HEADERS.code, next.code])
  } else {
    out.push([RETRY_HEADERS.stage, String(next.stage)], [RETRY_HEADERS.due, String(next.due)])
    if (!next.attempted) out.push([RETRY_HEADERS.blocked, 'true'])
  }
  return out
}
