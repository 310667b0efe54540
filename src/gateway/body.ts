/**
 * Strict request-body parsing: valid UTF-8, bounded nesting, and errors that name where the problem is.
 * Runs on raw bytes that Fastify has already capped at the body limit.
 */
import { isUtf8 } from 'node:buffer'
import { SpillwayError } from '../errors.ts'

export function decodeUtf8(body: Buffer): string {
  if (!isUtf8(body)) {
    throw new SpillwayError('SPW_ERR_BAD_REQUEST', 'the request body is not valid UTF-8', {
      details: { path: '$' },
    })
  }
  return body.toString('utf8')
}

/** True when a parsed JSON value nests deeper than `max`; walks at most max+1 levels. */
export function deeperThan(value: unknown, max: number, depth = 1): boolean {
  if (typeof value !== 'object' || value === null) return false
  if (depth > max) return true
  if (Array.isArray(value)) {
    for (const v of value)
      if (typeof v === 'object' && v !== null && deeperThan(v, max, depth + 1)) return true
    return false
  }
  for (const key in value) {
    const v = (value as Record<string, unknown>)[key]
    if (typeof v === 'object' && v !== null && deeperThan(v, max, depth + 1)) return true
  }
  return false
}

/** Parses one JSON document. */
export function parseJson(body: Buffer, maxDepth: number): unknown {
  const text = decodeUtf8(body)
  if (text.trim().length === 0) {
    throw new SpillwayError('SPW_ERR_BAD_REQUEST', 'the request body is empty', { details: { path: '$' } })
  }
  let value: unknown
  try {
    value = JSON.parse(text)
  } catch (error) {
    // includes a RangeError from nesting so deep that the parser itself gives up
    throw new SpillwayError('SPW_ERR_BAD_REQUEST', `malformed JSON: ${(error as Error).message}`, {
      details: { path: '$' },
    })
  }
  // checked on the parsed value: proportional to its nodes, not its bytes
  if (deeperThan(value, maxDepth)) {
    throw new SpillwayError('SPW_ERR_BAD_REQUEST', `JSON nesting is deeper than ${maxDepth} levels`, {
      details: { path: '$', maxDepth },
    })
  }
  return value
}

/**
 * Parses a stream of concatenated JSON documents (REST Proxy streaming mode): `{…}{…}` or one per line.
 * Returns each document, or the error for the one that failed, so earlier ones can still be answered.
 */
export function parseJsonStream(
  body: Buffer,
  maxDepth: number,
): ({ value: unknown } | { error: SpillwayError })[] {
  const text = decodeUtf8(body)
  const out: ({ value: unknown } | { error: SpillwayError })[] = []
  let i = 0
  while (i < text.length) {
    while (i < text.length && /\s/.test(text[i] as string)) i++
    if (i >= text.length) break
    const start = i
    let depth = 0
    let inString = false
    for (; i < text.length; i++) {
      const c = text[i]
      if (inString) {
        if (c === '\\') i++
        else if (c === '"') inString = false
        continue
      }
      if (c === '"') inString = true
      else if (c === '{' || c === '[') depth++
      else if (c === '}' || c === ']') {
        depth--
        if (depth === 0) {
          i++
          break
        }
      } else if (depth === 0 && /\s/.test(c as string)) break
    }
    const chunk = text.slice(start, i)
    try {
      const value: unknown = JSON.parse(chunk)
      if (deeperThan(value, maxDepth)) throw new Error(`nesting deeper than ${maxDepth} levels`)
      out.push({ value })
    } catch (error) {
      out.push({
        error: new SpillwayError(
          'SPW_ERR_BAD_REQUEST',
          `malformed JSON in record ${out.length}: ${(error as Error).message}`,
          {
            details: { path: `$[${out.length}]` },
          },
        ),
      })
      break
    }
  }
  return out
}

export function fieldError(path: string, message: string): SpillwayError {
  return new SpillwayError('SPW_ERR_BAD_REQUEST', `${path} ${message}`, { details: { path } })
}
