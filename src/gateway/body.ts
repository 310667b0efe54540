/**
 * Strict request-body parsing: valid UTF-8, bounded nesting, and errors that name where the problem is.
 * Runs on raw bytes that Fastify has already capped at the body limit.
 */
import { SpillwayError } from '../errors.ts'

const utf8 = new TextDecoder('utf-8', { fatal: true })

/** Nesting depth of a JSON text, counted outside strings; stops early once past `max`. */
export function jsonDepth(text: string, max: number): number {
  let depth = 0
  let deepest = 0
  let inString = false
  for (let i = 0; i < text.length; i++) {
    const c = text.charCodeAt(i)
    if (inString) {
      if (c === 92)
        i++ // backslash: skip the escaped character
      else if (c === 34) inString = false
      continue
    }
    if (c === 34) inString = true
    else if (c === 123 || c === 91) {
      depth++
      if (depth > deepest) {
        deepest = depth
        if (deepest > max) return deepest
      }
    } else if (c === 125 || c === 93) depth--
  }
  return deepest
}

export function decodeUtf8(body: Buffer): string {
  try {
    return utf8.decode(body)
  } catch {
    throw new SpillwayError('SPW_ERR_BAD_REQUEST', 'the request body is not valid UTF-8', {
      details: { path: '$' },
    })
  }
}

/** Parses one JSON document. */
export function parseJson(body: Buffer, maxDepth: number): unknown {
  const text = decodeUtf8(body)
  if (text.trim().length === 0) {
    throw new SpillwayError('SPW_ERR_BAD_REQUEST', 'the request body is empty', { details: { path: '$' } })
  }
  const depth = jsonDepth(text, maxDepth)
  if (depth > maxDepth) {
    throw new SpillwayError('SPW_ERR_BAD_REQUEST', `JSON nesting is deeper than ${maxDepth} levels`, {
      details: { path: '$', maxDepth },
    })
  }
  try {
    return JSON.parse(text)
  } catch (error) {
    throw new SpillwayError('SPW_ERR_BAD_REQUEST', `malformed JSON: ${(error as Error).message}`, {
      details: { path: '$' },
    })
  }
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
      if (jsonDepth(chunk, maxDepth) > maxDepth) throw new Error(`nesting deeper than ${maxDepth} levels`)
      out.push({ value: JSON.parse(chunk) })
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
