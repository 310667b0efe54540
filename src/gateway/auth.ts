/**
 * Keys and rate limits. Keys are compared in constant time (SHA-256 digests, timingSafeEqual), never
 * logged, and each carries a topic allow-list and token-bucket rate limits in events and in bytes.
 *
 * A key with a `secret` must present it on every route (Basic auth: the key as user, the secret as
 * password). A key without one is a public write key (it ships in browser code): it may use the Segment
 * routes only, never the REST Proxy, where records are written raw.
 */
import { createHash, timingSafeEqual } from 'node:crypto'
import { SpillwayError } from '../errors.ts'
import type { KeyConfig } from './config.ts'

export interface Principal {
  readonly name: string
  readonly topics: readonly string[]
  /** Events per second. */
  readonly bucket: TokenBucket | undefined
  /** Bytes per second (what the request writes, after merging). */
  readonly bytes: TokenBucket | undefined
  /** 'key': event ids are namespaced by the key's name, so tenants cannot collide downstream. */
  readonly dedupeScope: 'global' | 'key'
}

export type RouteFamily = 'segment' | 'rest'

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

  get burst(): number {
    return this.#burst
  }

  #refill(now: number): void {
    this.#tokens = Math.min(this.#burst, this.#tokens + ((now - this.#at) / 1000) * this.#rate)
    this.#at = now
  }

  /** Whether `n` tokens are there now (taking none), or the ms until they would be. */
  check(n: number, now = performance.now()): { ok: true } | { ok: false; retryInMs: number } {
    this.#refill(now)
    if (n <= this.#tokens) return { ok: true }
    return { ok: false, retryInMs: Math.ceil(((n - this.#tokens) / this.#rate) * 1000) }
  }

  /** Takes `n` tokens (after the request they pay for was accepted); may go below zero under races. */
  take(n: number, now = performance.now()): void {
    this.#refill(now)
    this.#tokens -= n
  }
}

const digest = (value: string): Buffer => createHash('sha256').update(value).digest()

export class KeyRing {
  readonly open: boolean
  readonly #entries: { digest: Buffer; secret: Buffer | undefined; principal: Principal }[]
  readonly #anonymous: Principal = {
    name: 'anonymous',
    topics: ['*'],
    bucket: undefined,
    bytes: undefined,
    dedupeScope: 'global',
  }

  constructor(keys: readonly KeyConfig[]) {
    this.open = keys.length === 0
    this.#entries = keys.map((k) => ({
      digest: digest(k.key),
      secret: k.secret === undefined ? undefined : digest(k.secret),
      principal: {
        name: k.name,
        topics: k.topics,
        bucket: k.ratePerSecond > 0 ? new TokenBucket(k.ratePerSecond, k.burst) : undefined,
        bytes: k.bytesPerSecond > 0 ? new TokenBucket(k.bytesPerSecond, k.burstBytes) : undefined,
        dedupeScope: k.dedupeScope,
      },
    }))
  }

  /**
   * Finds the key's principal; every entry is compared so timing does not reveal which one matched. A key
   * with a secret needs it (`secret`, the Basic-auth password) on every route; a public key (no secret)
   * is refused on the REST Proxy route.
   */
  authenticate(key: string | undefined, secret: string | undefined, route: RouteFamily): Principal {
    if (this.open) return this.#anonymous
    if (!key) throw new SpillwayError('SPW_ERR_UNAUTHORIZED', 'a write key or API key is required')
    const candidate = digest(key)
    const secretDigest = digest(secret ?? '')
    let found: { principal: Principal; public: boolean } | undefined
    for (const entry of this.#entries) {
      const keyMatches = timingSafeEqual(entry.digest, candidate)
      const secretMatches = entry.secret === undefined || timingSafeEqual(entry.secret, secretDigest)
      if (keyMatches && secretMatches)
        found = { principal: entry.principal, public: entry.secret === undefined }
    }
    if (!found) throw new SpillwayError('SPW_ERR_UNAUTHORIZED', 'unknown key, or a wrong or missing secret')
    if (found.public && route === 'rest') {
      throw new SpillwayError(
        'SPW_ERR_UNAUTHORIZED',
        `key ${found.principal.name} is a public write key (it has no secret): it may use the Segment routes only`,
      )
    }
    return found.principal
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

/**
 * The rate limits of a request of `events` events writing `bytes` bytes, checked before it is admitted
 * (nothing is taken: `pay` takes the tokens once it was accepted). A request larger than a bucket's
 * burst can never pass: that is a non-retriable 413 naming the burst, not a 429 whose Retry-After could
 * never be met.
 */
export function checkRate(principal: Principal, events: number, bytes: number): void {
  for (const [bucket, n, unit] of [
    [principal.bucket, events, 'events'],
    [principal.bytes, bytes, 'bytes'],
  ] as const) {
    if (!bucket) continue
    if (n > bucket.burst) {
      throw new SpillwayError(
        'SPW_ERR_PAYLOAD_TOO_LARGE',
        `the request has ${n} ${unit}, more than key ${principal.name}'s burst of ${bucket.burst}; send smaller requests`,
        { details: { path: '$', burst: bucket.burst, unit } },
      )
    }
    const result = bucket.check(n)
    if (!result.ok) {
      throw new SpillwayError(
        'SPW_ERR_RATE_LIMITED',
        `rate limit (${unit}) of key ${principal.name} exceeded`,
        {
          details: { retryAfterMs: result.retryInMs },
        },
      )
    }
  }
}

/** Charges an accepted request to the key's buckets. */
export function pay(principal: Principal, events: number, bytes: number): void {
  principal.bucket?.take(events)
  principal.bytes?.take(bytes)
}
