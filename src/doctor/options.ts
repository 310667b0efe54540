/**
 * The doctor's options, read with readable errors. The CLI (`spillway doctor`) and the programmatic
 * `runDoctor` share this reader.
 */
import { invalid, readEnum, readInteger, readObject, readString, rejectUnknownKeys } from '../options.ts'
import { CONNECTION_KEYS, type ConnectionOptions, readConnection } from '../transport/connection.ts'
import { CHECK_IDS, type CheckId } from './types.ts'

export interface DoctorOptions {
  readonly brokers?: readonly string[] | string
  readonly clientId?: string
  readonly tls?: unknown
  readonly sasl?: unknown
  /** Checks to run (default: all that need no extra input). */
  readonly checks?: readonly string[]
  /** Topics to look at (default: all). */
  readonly topics?: readonly string[]
  /** Groups to look at (default: all). */
  readonly groups?: readonly string[]
  /** The whole run's time budget, ms. Default 10 000. */
  readonly budgetMs?: number
  /** Bytes the sampler may read across all topics. Default 64 MiB. */
  readonly maxBytes?: number
  /** How far back the sampler starts, ms. Default one hour. */
  readonly sampleWindowMs?: number
  /** A JSON path (dots) to the event id in the value, instead of the `spillway-id` header. */
  readonly idPath?: string
  /** The consumers' fetch size per partition, bytes. Default 1 MiB (max.partition.fetch.bytes). */
  readonly consumerFetchBytes?: number
  /** Lag below this many seconds is healthy. Default 60. */
  readonly maxLagSeconds?: number
  /** A previous `--json` report to compare counts with. */
  readonly baseline?: string
  /** A topic to write a few probe records to (the only writing the doctor does). */
  readonly probeTopic?: string
  /** The lowest severity that makes the exit code non-zero: 'warn' (default) or 'crit'. */
  readonly failOn?: 'warn' | 'crit'
}

export interface ResolvedDoctorOptions {
  readonly connection: ConnectionOptions
  readonly checks: readonly CheckId[]
  readonly topics: readonly string[] | null
  readonly groups: readonly string[] | null
  readonly budgetMs: number
  readonly maxBytes: number
  readonly sampleWindowMs: number
  readonly idPath: readonly string[] | null
  readonly consumerFetchBytes: number
  readonly maxLagSeconds: number
  readonly baseline: string | null
  readonly probeTopic: string | null
  readonly failOn: 'warn' | 'crit'
}

const KEYS = [
  ...CONNECTION_KEYS,
  'checks',
  'topics',
  'groups',
  'budgetMs',
  'maxBytes',
  'sampleWindowMs',
  'idPath',
  'consumerFetchBytes',
  'maxLagSeconds',
  'baseline',
  'probeTopic',
  'failOn',
]

/** Checks run when none are named: every one that needs no extra input. */
export const DEFAULT_CHECKS: readonly CheckId[] = CHECK_IDS.filter((c) => c !== 'baseline' && c !== 'probe')

function readList(value: unknown, key: string): string[] | null {
  if (value === undefined) return null
  const list = typeof value === 'string' ? value.split(',').map((s) => s.trim()) : value
  if (!Array.isArray(list) || list.length === 0 || list.some((v) => typeof v !== 'string' || v.length === 0))
    throw invalid(key, value, 'a non-empty list of names')
  return list as string[]
}

export function resolveDoctorOptions(input: DoctorOptions): ResolvedDoctorOptions {
  const o = readObject(input, 'options')
  rejectUnknownKeys(o, '', KEYS)
  const connection = readConnection(o, '', 'spillway-doctor')
  if (!connection) throw invalid('brokers', undefined, 'a list of "host:port" bootstrap brokers')
  const baseline = o.baseline === undefined ? null : readString(o.baseline, 'baseline')
  const probeTopic = o.probeTopic === undefined ? null : readString(o.probeTopic, 'probeTopic')
  const named = readList(o.checks, 'checks')
  for (const c of named ?? []) {
    if (!(CHECK_IDS as readonly string[]).includes(c))
      throw invalid('checks', c, `check ids from ${CHECK_IDS.join(', ')}`)
  }
  const checks = (named as CheckId[] | null) ?? [
    ...DEFAULT_CHECKS,
    ...(baseline ? (['baseline'] as const) : []),
    ...(probeTopic ? (['probe'] as const) : []),
  ]
  if (checks.includes('baseline') && !baseline)
    throw invalid('baseline', undefined, 'a report file for the baseline check')
  if (checks.includes('probe') && !probeTopic)
    throw invalid('probeTopic', undefined, 'a topic for the probe check')
  const idPath = o.idPath === undefined ? null : readString(o.idPath, 'idPath').split('.')
  return {
    connection,
    checks,
    topics: readList(o.topics, 'topics'),
    groups: readList(o.groups, 'groups'),
    budgetMs: readInteger(o.budgetMs, 'budgetMs', 10_000, { min: 2_000, max: 3_600_000 }),
    maxBytes: readInteger(o.maxBytes, 'maxBytes', 64 * 1024 * 1024, { min: 1024, max: 64 * 1024 ** 3 }),
    sampleWindowMs: readInteger(o.sampleWindowMs, 'sampleWindowMs', 3_600_000, { min: 1_000 }),
    idPath,
    consumerFetchBytes: readInteger(o.consumerFetchBytes, 'consumerFetchBytes', 1024 * 1024, { min: 1024 }),
    maxLagSeconds: readInteger(o.maxLagSeconds, 'maxLagSeconds', 60, { min: 0 }),
    baseline,
    probeTopic,
    failOn: readEnum(o.failOn, 'failOn', ['warn', 'crit'] as const, 'warn'),
  }
}
