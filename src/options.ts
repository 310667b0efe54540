/**
 * Small readers for option objects. Each one names the key, the bad value and what is allowed, so a
 * wrong config fails at creation with a message an operator can act on. Components keep their own
 * schema, defaults and validation in their `options.ts`, built from these.
 */
import { readFileSync } from 'node:fs'
import { SpillwayError } from './errors.ts'

function show(value: unknown): string {
  if (typeof value === 'string') return JSON.stringify(value)
  if (typeof value === 'bigint') return `${value}n`
  try {
    return JSON.stringify(value) ?? String(value)
  } catch {
    return String(value)
  }
}

export function invalid(key: string, value: unknown, allowed: string): SpillwayError {
  return new SpillwayError('SPW_ERR_INVALID_OPTION', `option ${key} is ${show(value)}; expected ${allowed}`, {
    details: { key, allowed },
  })
}

export function readObject(value: unknown, key: string): Record<string, unknown> {
  if (value === undefined) return {}
  if (typeof value !== 'object' || value === null || Array.isArray(value))
    throw invalid(key, value, 'an object')
  return value as Record<string, unknown>
}

/** Rejects keys the schema does not know, naming the closest allowed ones. */
export function rejectUnknownKeys(
  object: Record<string, unknown>,
  prefix: string,
  known: readonly string[],
): void {
  for (const key of Object.keys(object)) {
    if (!known.includes(key)) {
      const path = prefix ? `${prefix}.${key}` : key
      throw new SpillwayError(
        'SPW_ERR_INVALID_OPTION',
        `unknown option ${path}; allowed: ${known.join(', ')}`,
        {
          details: { key: path, allowed: known },
        },
      )
    }
  }
}

interface Range {
  min?: number
  max?: number
}

function readBounded(value: unknown, key: string, fallback: number, range: Range, integer: boolean): number {
  if (value === undefined) return fallback
  const min = range.min ?? (integer ? Number.MIN_SAFE_INTEGER : Number.NEGATIVE_INFINITY)
  const max = range.max ?? (integer ? Number.MAX_SAFE_INTEGER : Number.POSITIVE_INFINITY)
  const ok = typeof value === 'number' && (integer ? Number.isInteger(value) : !Number.isNaN(value))
  if (!ok || (value as number) < min || (value as number) > max) {
    throw invalid(key, value, `${integer ? 'an integer' : 'a number'} from ${min} to ${max}`)
  }
  return value as number
}

export function readInteger(value: unknown, key: string, fallback: number, range: Range = {}): number {
  return readBounded(value, key, fallback, range, true)
}

export function readNumber(value: unknown, key: string, fallback: number, range: Range = {}): number {
  return readBounded(value, key, fallback, range, false)
}

export function readString(value: unknown, key: string, fallback?: string): string {
  if (value === undefined && fallback !== undefined) return fallback
  if (typeof value !== 'string' || value.length === 0) throw invalid(key, value, 'a non-empty string')
  return value
}

export function readBoolean(value: unknown, key: string, fallback: boolean): boolean {
  if (value === undefined) return fallback
  if (typeof value !== 'boolean') throw invalid(key, value, 'true or false')
  return value
}

export function readEnum<T extends string>(
  value: unknown,
  key: string,
  allowed: readonly T[],
  fallback: T,
): T {
  if (value === undefined) return fallback
  if (typeof value !== 'string' || !allowed.includes(value as T)) {
    throw invalid(key, value, `one of ${allowed.map((a) => JSON.stringify(a)).join(', ')}`)
  }
  return value as T
}

export function readStringArray(value: unknown, key: string, fallback?: string[]): string[] {
  if (value === undefined && fallback !== undefined) return fallback
  if (typeof value === 'string' && value.length > 0) return value.split(',').map((s) => s.trim())
  if (
    !Array.isArray(value) ||
    value.length === 0 ||
    value.some((v) => typeof v !== 'string' || v.length === 0)
  ) {
    throw invalid(key, value, 'a non-empty list of strings')
  }
  return value as string[]
}

/** `prefix.key`, or `key` at the top level. */
export function joinKey(prefix: string, key: string): string {
  return prefix ? `${prefix}.${key}` : key
}

/** The text of a file named by an option; a file that cannot be read is an error naming the option. */
export function readFileOption(path: unknown, key: string): string {
  const file = readString(path, key)
  try {
    return readFileSync(file, 'utf8')
  } catch (error) {
    throw invalid(key, file, `a readable file (${(error as NodeJS.ErrnoException).code ?? 'unreadable'})`)
  }
}

/**
 * A secret given as `password` or `passwordFile` (one trailing newline dropped), never both; errors
 * never show its value.
 */
export function readPassword(
  o: Record<string, unknown>,
  prefix: string,
  required: boolean,
): string | undefined {
  if (o.password !== undefined && o.passwordFile !== undefined)
    throw invalid(joinKey(prefix, 'password'), '(both given)', 'either password or passwordFile, not both')
  const password =
    o.passwordFile !== undefined
      ? readFileOption(o.passwordFile, joinKey(prefix, 'passwordFile')).replace(/\r?\n$/, '')
      : o.password
  if (password === undefined && !required) return undefined
  if (typeof password !== 'string' || password.length === 0)
    throw invalid(
      joinKey(prefix, 'password'),
      o.password === undefined ? undefined : '(hidden)',
      'a non-empty string, or passwordFile',
    )
  return password
}

/** A JSON config file's content; an unreadable file or bad JSON is an option error naming the file. */
export function loadConfigFile(path: string): unknown {
  let text: string
  try {
    text = readFileSync(path, 'utf8')
  } catch (error) {
    throw new SpillwayError(
      'SPW_ERR_INVALID_OPTION',
      `cannot read config file ${path}: ${(error as Error).message}`,
      {
        details: { key: 'config' },
      },
    )
  }
  try {
    return JSON.parse(text)
  } catch (error) {
    throw new SpillwayError(
      'SPW_ERR_INVALID_OPTION',
      `config file ${path} is not valid JSON: ${(error as Error).message}`,
      { details: { key: 'config' } },
    )
  }
}

/**
 * The environment overrides every spillway service takes over its config file: SPILLWAY_HOST,
 * SPILLWAY_PORT, SPILLWAY_BROKERS and SPILLWAY_SASL_PASSWORD (into `kafka`).
 */
export function applyServiceEnvironment(
  raw: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
): Record<string, unknown> {
  const out: Record<string, unknown> = { ...raw }
  if (env.SPILLWAY_HOST) out.host = env.SPILLWAY_HOST
  if (env.SPILLWAY_PORT) out.port = Number(env.SPILLWAY_PORT)
  if (env.SPILLWAY_BROKERS)
    out.kafka = { ...readObject(out.kafka, 'kafka'), brokers: env.SPILLWAY_BROKERS.split(',') }
  if (env.SPILLWAY_SASL_PASSWORD) {
    const kafka = readObject(out.kafka, 'kafka')
    out.kafka = {
      ...kafka,
      sasl: { ...readObject(kafka.sasl, 'kafka.sasl'), password: env.SPILLWAY_SASL_PASSWORD },
    }
  }
  return out
}
