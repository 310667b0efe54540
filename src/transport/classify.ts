/**
 * Classifies a Kafka client error as retriable, poison or fatal, from the protocol error names it
 * carries anywhere in its tree (AggregateError members, causes).
 */
import type { ErrorClass } from './transport.ts'

const POISON = new Set([
  'MESSAGE_TOO_LARGE',
  'RECORD_LIST_TOO_LARGE',
  'INVALID_TOPIC_EXCEPTION',
  'TOPIC_AUTHORIZATION_FAILED',
  'INVALID_RECORD',
  'INVALID_TIMESTAMP',
  'CORRUPT_MESSAGE',
  'POLICY_VIOLATION',
  'UNKNOWN_TOPIC_OR_PARTITION_PERMANENT',
])

const FATAL = new Set([
  'OUT_OF_ORDER_SEQUENCE_NUMBER',
  'UNKNOWN_PRODUCER_ID',
  'INVALID_PRODUCER_EPOCH',
  'PRODUCER_FENCED',
  'INVALID_PRODUCER_ID_MAPPING',
  'CLUSTER_AUTHORIZATION_FAILED',
])

export interface Classification {
  readonly errorClass: ErrorClass
  readonly reason: string
  /** The request may have been written although it failed (timeouts, dropped connections). */
  readonly ambiguous: boolean
}

function collect(
  error: unknown,
  names: Set<string>,
  codes: Set<string>,
  messages: string[],
  depth = 0,
): void {
  if (depth > 8 || typeof error !== 'object' || error === null) return
  const e = error as {
    apiId?: unknown
    apiCode?: unknown
    code?: unknown
    message?: unknown
    errors?: unknown
    cause?: unknown
  }
  // @platformatic/kafka: apiId is the protocol error name, apiCode its number
  if (typeof e.apiId === 'string') names.add(e.apiId)
  if (typeof e.apiCode === 'string') names.add(e.apiCode)
  if (typeof e.code === 'string') codes.add(e.code)
  if (typeof e.message === 'string' && messages.length < 4) messages.push(e.message)
  if (Array.isArray(e.errors)) for (const inner of e.errors) collect(inner, names, codes, messages, depth + 1)
  if (e.cause !== undefined) collect(e.cause, names, codes, messages, depth + 1)
}

export function classify(error: unknown): Classification {
  const names = new Set<string>()
  const codes = new Set<string>()
  const messages: string[] = []
  collect(error, names, codes, messages)
  const list = [...names]
  const reason = list.length > 0 ? list.join(', ') : (messages.at(-1) ?? String(error))
  const fatal = list.find((n) => FATAL.has(n))
  if (fatal) return { errorClass: 'fatal', reason: fatal, ambiguous: true }
  const poison = list.find((n) => POISON.has(n))
  if (poison) return { errorClass: 'poison', reason: poison, ambiguous: false }
  // A broker that answered with an error code did not write the batch; anything else (network,
  // timeout, closed socket) may have written it before failing.
  const answered = list.length > 0 && !codes.has('PLT_KFK_NETWORK') && !codes.has('PLT_KFK_TIMEOUT')
  return { errorClass: 'retriable', reason, ambiguous: !answered }
}
