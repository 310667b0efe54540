/**
 * Classifies a Kafka client error, from what the client itself says about it anywhere in its tree
 * (AggregateError members, causes):
 * - the client's flags: `hasStaleMetadata` (refresh metadata), `needsRejoin` (the group moved on),
 *   `producerFenced`, and its error codes (PLT_KFK_AUTHENTICATION, PLT_KFK_NETWORK, PLT_KFK_TIMEOUT);
 * - the protocol error names, for the one decision the flags do not carry: whether Kafka will never
 *   take a record (poison) or the producer's state is broken (fatal).
 *
 * `toSpillwayError` is the boundary: what leaves transport/ is a SpillwayError with a stable code.
 */
import { type ErrorCode, isSpillwayError, SpillwayError } from '../errors.ts'
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
])

const FATAL = new Set([
  'OUT_OF_ORDER_SEQUENCE_NUMBER',
  'UNKNOWN_PRODUCER_ID',
  'INVALID_PRODUCER_EPOCH',
  'PRODUCER_FENCED',
  'INVALID_PRODUCER_ID_MAPPING',
  'CLUSTER_AUTHORIZATION_FAILED',
])

/** The group no longer knows this member at this epoch or generation: its partitions are gone. */
const GROUP_FENCED = new Set([
  'FENCED_MEMBER_EPOCH',
  'UNKNOWN_MEMBER_ID',
  'STALE_MEMBER_EPOCH',
  'ILLEGAL_GENERATION',
  'FENCED_INSTANCE_ID',
])

export interface Classification {
  readonly errorClass: ErrorClass
  readonly reason: string
  /** The request may have been written although it failed (timeouts, dropped connections). */
  readonly ambiguous: boolean
}

/** What the client's errors say about themselves, gathered over the whole tree. */
export interface ClientErrorFacts {
  /** Protocol error names (NOT_LEADER_OR_FOLLOWER, …). */
  readonly names: ReadonlySet<string>
  /** The client's error codes (PLT_KFK_NETWORK, …). */
  readonly codes: ReadonlySet<string>
  readonly messages: readonly string[]
  readonly staleMetadata: boolean
  readonly needsRejoin: boolean
  readonly producerFenced: boolean
  readonly authentication: boolean
}

export function clientErrorFacts(error: unknown): ClientErrorFacts {
  const names = new Set<string>()
  const codes = new Set<string>()
  const messages: string[] = []
  const flags = { staleMetadata: false, needsRejoin: false, producerFenced: false }
  const visit = (e: unknown, depth: number): void => {
    if (depth > 8 || typeof e !== 'object' || e === null) return
    const x = e as Record<string, unknown>
    // @platformatic/kafka: apiId is the protocol error name
    if (typeof x.apiId === 'string') names.add(x.apiId)
    if (typeof x.code === 'string') codes.add(x.code)
    // the client's metadata call turns UNKNOWN_TOPIC_OR_PARTITION into a UserError that keeps no cause
    if (x.code === 'PLT_KFK_USER' && typeof x.message === 'string' && x.message.startsWith('Unknown topic '))
      names.add('UNKNOWN_TOPIC_OR_PARTITION')
    if (typeof x.message === 'string' && messages.length < 4) messages.push(x.message)
    if (x.hasStaleMetadata === true) flags.staleMetadata = true
    if (x.needsRejoin === true) flags.needsRejoin = true
    if (x.producerFenced === true) flags.producerFenced = true
    if (Array.isArray(x.errors)) for (const inner of x.errors) visit(inner, depth + 1)
    if (x.cause !== undefined) visit(x.cause, depth + 1)
  }
  visit(error, 0)
  const authentication = codes.has('PLT_KFK_AUTHENTICATION') || names.has('SASL_AUTHENTICATION_FAILED')
  return { names, codes, messages, ...flags, authentication }
}

export function classify(error: unknown): Classification {
  const facts = clientErrorFacts(error)
  const list = [...facts.names]
  const reason =
    list.length > 0
      ? list.join(', ')
      : facts.authentication
        ? 'SASL_AUTHENTICATION_FAILED'
        : (facts.messages.at(-1) ?? String(error))
  const fatal = facts.producerFenced ? 'INVALID_PRODUCER_EPOCH' : list.find((n) => FATAL.has(n))
  if (fatal) return { errorClass: 'fatal', reason: fatal, ambiguous: true }
  const poison = list.find((n) => POISON.has(n))
  if (poison) return { errorClass: 'poison', reason: poison, ambiguous: false }
  // A broker that answered with an error code did not write the batch; a refused login sent nothing;
  // anything else (network, timeout, closed socket) may have written it before failing.
  const answered =
    facts.authentication ||
    (list.length > 0 && !facts.codes.has('PLT_KFK_NETWORK') && !facts.codes.has('PLT_KFK_TIMEOUT'))
  return { errorClass: 'retriable', reason, ambiguous: !answered }
}

/** The stable code for a client error that leaves transport/ (admin calls, connection checks). */
export function codeOf(facts: ClientErrorFacts): ErrorCode {
  if (facts.authentication) return 'SPW_ERR_KAFKA_AUTH'
  if ([...facts.names].some((n) => n.endsWith('_AUTHORIZATION_FAILED'))) return 'SPW_ERR_KAFKA_DENIED'
  if (facts.names.has('UNKNOWN_TOPIC_OR_PARTITION') || facts.names.has('UNKNOWN_TOPIC_ID'))
    return 'SPW_ERR_TOPIC_MISSING'
  if (facts.names.has('INVALID_TOPIC_EXCEPTION')) return 'SPW_ERR_POISON'
  if ([...facts.names].some((n) => GROUP_FENCED.has(n))) return 'SPW_ERR_GROUP_FENCED'
  if (facts.names.has('UNSUPPORTED_VERSION') || facts.codes.has('PLT_KFK_UNSUPPORTED_API'))
    return 'SPW_ERR_KAFKA_UNSUPPORTED'
  return 'SPW_ERR_UNAVAILABLE'
}

/** Translates any failure of a Kafka call into a SpillwayError naming what was being done. */
export function toSpillwayError(error: unknown, what: string): SpillwayError {
  if (isSpillwayError(error)) return error
  const facts = clientErrorFacts(error)
  const code = codeOf(facts)
  const names = [...facts.names]
  const detail =
    code === 'SPW_ERR_KAFKA_AUTH'
      ? 'the brokers refused the SASL credentials (check sasl.username, the password and the mechanism)'
      : names.length > 0
        ? names.join(', ')
        : (facts.messages.at(-1) ?? String(error))
  return new SpillwayError(code, `${what} failed: ${detail}`, {
    cause: error,
    details: names.length > 0 ? { kafkaErrors: names } : {},
  })
}
