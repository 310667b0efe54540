/**
 * The consumer's `retry` option: tiers of delayed retry topics, the dead-letter topic after the last tier,
 * the attempt cap, per-key blocking, and the transactional producer's connection and timeout.
 */
import {
  invalid,
  readBoolean,
  readInteger,
  readObject,
  readString,
  rejectUnknownKeys,
} from '../../options.ts'
import { isTopicName } from '../../topic-name.ts'
import { type ConnectionOptions, readConnection } from '../../transport/connection.ts'

export interface RetryTierInput {
  /** The tier's topic. Default `<source topic>.retry-<n>` (n from 1). */
  readonly topic?: string
  /** How long a record waits in this tier before its next attempt, counted from when it failed. */
  readonly delayMs: number
}

export interface RetryInput {
  readonly tiers: readonly RetryTierInput[]
  /** Where a record goes after the last tier. Default: the consumer's dead-letter route for its topic. */
  readonly deadLetterTopic?: string
  /** Handler attempts an event gets in all, the source topic's included. Default: one per tier, plus one. */
  readonly maxAttempts?: number
  /** Later records of a key wait (in the tiers, behind it) while one of its records is in a tier. */
  readonly blockKey?: boolean
  /** The coordinator aborts a forwarding transaction left open this long (a crashed process's). Default 15 s. */
  readonly transactionTimeoutMs?: number
  /** Brokers (and tls, sasl) for the tiers' transactional producer, when not the consumer's own. */
  readonly connection?: {
    readonly brokers: readonly string[]
    readonly clientId?: string
    readonly tls?: unknown
    readonly sasl?: unknown
  }
}

export interface ResolvedTier {
  readonly topic: string | undefined
  readonly delayMs: number
}

export interface ResolvedRetry {
  readonly tiers: readonly ResolvedTier[]
  readonly deadLetterTopic: string | undefined
  readonly maxAttempts: number
  readonly blockKey: boolean
  readonly transactionTimeoutMs: number
  readonly connection: ConnectionOptions | undefined
}

export const MAX_TIERS = 10

export function readRetry(value: unknown, groupId: string | undefined): ResolvedRetry | undefined {
  if (value === undefined || value === false) return undefined
  const o = readObject(value, 'retry')
  rejectUnknownKeys(o, 'retry', [
    'tiers',
    'deadLetterTopic',
    'maxAttempts',
    'blockKey',
    'transactionTimeoutMs',
    'connection',
  ])
  if (groupId === undefined)
    throw invalid(
      'groupId',
      undefined,
      'a consumer group when retry tiers are set (a move to a tier commits the group offset in a transaction)',
    )
  if (!Array.isArray(o.tiers) || o.tiers.length === 0 || o.tiers.length > MAX_TIERS)
    throw invalid('retry.tiers', o.tiers, `a list of 1 to ${MAX_TIERS} tiers, e.g. [{ delayMs: 5000 }]`)
  const tiers = o.tiers.map((raw, i): ResolvedTier => {
    const t = readObject(raw, `retry.tiers[${i}]`)
    rejectUnknownKeys(t, `retry.tiers[${i}]`, ['topic', 'delayMs'])
    const topic = t.topic === undefined ? undefined : readString(t.topic, `retry.tiers[${i}].topic`)
    if (topic !== undefined && !isTopicName(topic))
      throw invalid(`retry.tiers[${i}].topic`, topic, "a Kafka topic name (letters, digits, '.', '_', '-')")
    if (t.delayMs === undefined) throw invalid(`retry.tiers[${i}].delayMs`, undefined, 'a delay in ms')
    return { topic, delayMs: readInteger(t.delayMs, `retry.tiers[${i}].delayMs`, 0, { min: 0 }) }
  })
  const names = tiers.map((t) => t.topic).filter((t): t is string => t !== undefined)
  if (new Set(names).size !== names.length)
    throw invalid('retry.tiers', names, 'a different topic for each tier')
  const deadLetterTopic =
    o.deadLetterTopic === undefined ? undefined : readString(o.deadLetterTopic, 'retry.deadLetterTopic')
  if (deadLetterTopic !== undefined && !isTopicName(deadLetterTopic))
    throw invalid('retry.deadLetterTopic', deadLetterTopic, 'a Kafka topic name')
  const connection =
    o.connection === undefined
      ? undefined
      : readConnection(readObject(o.connection, 'retry.connection'), 'retry.connection', 'spillway-retry')
  return {
    tiers,
    deadLetterTopic,
    maxAttempts: readInteger(o.maxAttempts, 'retry.maxAttempts', tiers.length + 1, {
      min: 1,
      max: tiers.length + 1,
    }),
    blockKey: readBoolean(o.blockKey, 'retry.blockKey', false),
    transactionTimeoutMs: readInteger(o.transactionTimeoutMs, 'retry.transactionTimeoutMs', 15_000, {
      min: 1000,
      max: 900_000,
    }),
    connection,
  }
}

/** The topic of tier `stage` (1-based) for records that came from `source`. */
export function tierTopic(retry: ResolvedRetry, stage: number, source: string): string {
  return retry.tiers[stage - 1]?.topic ?? `${source}.retry-${stage}`
}

/** Every tier topic the consumer reads besides its source topics, each with its stage. */
export function tierTopics(retry: ResolvedRetry, sources: readonly string[]): Map<string, number> {
  const out = new Map<string, number>()
  for (let stage = 1; stage <= retry.tiers.length; stage++)
    for (const source of sources) out.set(tierTopic(retry, stage, source), stage)
  return out
}
