/**
 * Keys and rate limits. Keys are compared in constant time (SHA-256 digests, timingSafeEqual), never
 * logged, and each carries a topic allow-list and a token-bucket rate limit counted in events.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { SpillwayError } from '../errors.ts'
import type { KeyConfig } from './config.ts'

export interface Principal {
  readonly name: string
  readonly topics: readonly string[]
  readonly bucket: TokenBucket | undefined
}

export class TokenBucket {
  readonly #rate: number
  readonly #burst: number
  #tokens: number
  #at: number

  constructor(ratePerSecond: number, burst: number, now = performance.now()) {
    this.#rate = ratePerSecond
    this.#burst = burst
    this.#tokens = burst
    this.#at = now
  }

  /** Takes `n` tokens, or returns the ms until they would be available. */
  take(n: number, now = performance.now()): { ok: true } | { ok: false; retryInMs: number } {
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#at) / 1000) * this.#rate)
    this.#at = now
    if (n <= this.#tokens) {
      this.#tokens -= n
      return { ok: true }
    }
    return { ok: false, retryInMs: Math.ceil(((n - this.#tokens) / this.#rate) * 1000) }
  }
}

const digest = (value: string): Buffer => createHash('sha256').update(value).digest()

export class KeyRing {
  readonly open: boolean
  readonly #entries: { digest: Buffer; secret: Buffer | undefined; principal: Principal }[]
  readonly #anonymous: Principal = { name: 'anonymous', topics: ['*'], bucket: undefined }

  constructor(keys: readonly KeyConfig[]) {
    this.open = keys.length === 0
    this.#entries = keys.map((k) => ({
      digest: digest(k.key),
      secret: k.secret === undefined ? undefined : digest(k.secret),
      principal: {
        name: k.name,
        topics: k.topics,
        bucket: k.ratePerSecond > 0 ? new TokenBucket(k.ratePerSecond, k.burst) : undefined,
      },
    }))
  }

  /**
   * Finds the key's principal; every entry is compared so timing does not reveal which one matched.
   * `secret` is the REST Basic-auth password (checked when the key has one); Segment passes none.
   */
  authenticate(key: string | undefined, secret?: string): Principal {
    if (this.open) return this.#anonymous
    if (!key) throw new SpillwayError('SPW_ERR_UNAUTHORIZED', 'a write key or API key is required')
    const candidate = digest(key)
    const secretDigest = secret === undefined ? undefined : digest(secret)
    let found: Principal | undefined
    for (const entry of this.#entries) {
      const keyMatches = timingSafeEqual(entry.digest, candidate)
      // a secret is checked when the caller presents one (REST Basic auth); Segment write keys carry none
      const secretMatches =
        entry.secret === undefined ||
        secretDigest === undefined ||
        timingSafeEqual(entry.secret, secretDigest)
      if (keyMatches && secretMatches) found = entry.principal
    }
    if (!found) throw new SpillwayError('SPW_ERR_UNAUTHORIZED', 'unknown write key or API key')
    return found
  }
}

export function mayWrite(principal: Principal, topic: string): boolean {
  return principal.topics.includes('*') || principal.topics.includes(topic)
}

/** Reads HTTP Basic credentials: `user:password`, base64. */
export function basicAuth(header: string | undefined): { user: string; password: string } | undefined {
  if (!header || !/^basic /i.test(header)) return undefined
  const decoded = Buffer.from(header.slice(6).trim(), 'base64').toString('utf8')
  const colon = decoded.indexOf(':')
  return colon < 0
    ? { user: decoded, password: '' }
    : { user: decoded.slice(0, colon), password: decoded.slice(colon + 1) }
}

export function charge(principal: Principal, events: number): void {
  if (!principal.bucket) return
  const result = principal.bucket.take(events)
  if (!result.ok) {
    throw new SpillwayError('SPW_ERR_RATE_LIMITED', `rate limit of key ${principal.name} exceeded`, {
      details: { retryAfterMs: result.retryInMs },
    })
  }
}
