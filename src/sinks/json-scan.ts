/**
 * Checks that bytes are one JSON text (RFC 8259, as JSON.parse reads it) without building anything from
 * them. A sink whose mapping takes the whole value needs to know only that it is JSON, whether it is the
 * literal null, and whether its bytes hold a character the tab-separated format escapes; parsing a 1 KiB
 * value into objects and strings to learn that costs several times the scan and leaves garbage behind.
 *
 * The scan reads bytes, not characters: bytes of 0x80 and above are taken as they are inside strings and
 * refused outside them. So it answers for UTF-8 input only; a caller checks that first (isUtf8) and
 * parses anything else. A scan that says NOT_JSON is never the last word either: the caller parses the
 * text to get JSON.parse's own message, so a refusal always carries the parser's reason.
 */

/** Not one JSON text. */
export const NOT_JSON = 0
/** The literal null (with whitespace around it, if any). */
export const JSON_NULL = 1
/** JSON holding no backslash, tab, newline or carriage return: its bytes go into a row as they are. */
export const JSON_PLAIN = 2
/** JSON holding a backslash (in a string's escape) or a tab, newline or carriage return (as whitespace). */
export const JSON_SPECIAL = 3

export type JsonScan = typeof NOT_JSON | typeof JSON_NULL | typeof JSON_PLAIN | typeof JSON_SPECIAL

const QUOTE = 0x22
const BACKSLASH = 0x5c
const SPACE = 0x20
const TAB = 0x09
const NEWLINE = 0x0a
const RETURN = 0x0d
const COMMA = 0x2c
const COLON = 0x3a
const OPEN_BRACE = 0x7b
const CLOSE_BRACE = 0x7d
const OPEN_BRACKET = 0x5b
const CLOSE_BRACKET = 0x5d
const MINUS = 0x2d
const PLUS = 0x2b
const DOT = 0x2e
const ZERO = 0x30
const NINE = 0x39

/** What the scanner expects next. */
const VALUE = 0
const VALUE_OR_CLOSE = 1
const AFTER_VALUE = 2
const KEY = 3
const KEY_OR_CLOSE = 4
const AFTER_KEY = 5

const IN_OBJECT = 1
const IN_ARRAY = 2

/** Open containers, innermost last; grown as deep input needs, reused between scans. */
let containers = new Uint8Array(64)

/** 1 for the bytes that end a run of plain string content: quote, backslash, control characters. */
const STRING_STOP = new Uint8Array(257)
for (let c = 0; c < SPACE; c++) STRING_STOP[c] = 1
STRING_STOP[QUOTE] = 1
STRING_STOP[BACKSLASH] = 1
// past the end, b[i] is undefined and the look reads index NaN: undefined, not 0, so the run stops

const isDigit = (c: number): boolean => c >= ZERO && c <= NINE

function isHex(c: number): boolean {
  return (c >= ZERO && c <= NINE) || (c >= 0x41 && c <= 0x46) || (c >= 0x61 && c <= 0x66)
}

/** Set by skipString when a string holds a backslash; the scan resets it. */
let sawEscape = false

/** The index after the string whose opening quote is at `start - 1`, or -1; sets `sawEscape` on a backslash. */
function skipString(b: Uint8Array, start: number): number {
  const n = b.length
  let i = start
  while (i < n) {
    // most bytes are none of quote, backslash or a control character: one table look each
    while (STRING_STOP[b[i] as number] === 0) i++
    if (i >= n) return -1
    const c = b[i] as number
    if (c === QUOTE) return i + 1
    if (c !== BACKSLASH) return -1
    sawEscape = true
    const e = b[i + 1]
    if (e === 0x75) {
      // \uXXXX: any four hex digits (JSON.parse takes lone surrogates too)
      if (!(isHex(b[i + 2] ?? -1) && isHex(b[i + 3] ?? -1) && isHex(b[i + 4] ?? -1) && isHex(b[i + 5] ?? -1)))
        return -1
      i += 6
    } else if (
      e === QUOTE ||
      e === BACKSLASH ||
      e === 0x2f || // /
      e === 0x62 || // b
      e === 0x66 || // f
      e === 0x6e || // n
      e === 0x72 || // r
      e === 0x74 // t
    )
      i += 2
    else return -1
  }
  return -1
}

/** The index after the number starting at `start`, or -1. */
function skipNumber(b: Uint8Array, start: number): number {
  let i = start
  if (b[i] === MINUS) i++
  const first = b[i] ?? -1
  if (first === ZERO) i++
  else if (first > ZERO && first <= NINE) {
    i++
    while (isDigit(b[i] ?? -1)) i++
  } else return -1
  if (b[i] === DOT) {
    i++
    if (!isDigit(b[i] ?? -1)) return -1
    while (isDigit(b[i] ?? -1)) i++
  }
  const e = b[i]
  if (e === 0x65 || e === 0x45) {
    i++
    if (b[i] === PLUS || b[i] === MINUS) i++
    if (!isDigit(b[i] ?? -1)) return -1
    while (isDigit(b[i] ?? -1)) i++
  }
  return i
}

/** Whether `b` holds `word` (ASCII) at `at`. */
function matches(b: Uint8Array, at: number, word: readonly number[]): boolean {
  for (let k = 0; k < word.length; k++) if (b[at + k] !== word[k]) return false
  return true
}

const TRUE = [0x74, 0x72, 0x75, 0x65]
const FALSE = [0x66, 0x61, 0x6c, 0x73, 0x65]
const NULL = [0x6e, 0x75, 0x6c, 0x6c]

/** Scans UTF-8 bytes as one JSON text. */
export function scanJson(b: Uint8Array): JsonScan {
  const n = b.length
  sawEscape = false
  let special = false
  let depth = 0
  let state = VALUE
  let i = 0
  let onlyNull = false
  for (;;) {
    // whitespace: the four JSON allows
    while (i < n) {
      const c = b[i] as number
      if (c === SPACE) i++
      else if (c === TAB || c === NEWLINE || c === RETURN) {
        special = true
        i++
      } else break
    }
    if (state === AFTER_VALUE && depth === 0) {
      if (i !== n) return NOT_JSON
      if (onlyNull) return JSON_NULL
      return special || sawEscape ? JSON_SPECIAL : JSON_PLAIN
    }
    if (i >= n) return NOT_JSON
    const c = b[i] as number
    // an empty array or object closes where its first value or key would be
    if ((state === VALUE_OR_CLOSE && c === CLOSE_BRACKET) || (state === KEY_OR_CLOSE && c === CLOSE_BRACE)) {
      depth--
      i++
      state = AFTER_VALUE
      continue
    }
    switch (state) {
      case VALUE_OR_CLOSE:
      case VALUE:
        if (c === OPEN_BRACE || c === OPEN_BRACKET) {
          if (depth === containers.length) {
            const grown = new Uint8Array(containers.length * 2)
            grown.set(containers)
            containers = grown
          }
          containers[depth++] = c === OPEN_BRACE ? IN_OBJECT : IN_ARRAY
          i++
          state = c === OPEN_BRACE ? KEY_OR_CLOSE : VALUE_OR_CLOSE
          continue
        }
        if (c === QUOTE) i = skipString(b, i + 1)
        else if (c === MINUS || isDigit(c)) i = skipNumber(b, i)
        else if (c === 0x74) i = matches(b, i, TRUE) ? i + TRUE.length : -1
        else if (c === 0x66) i = matches(b, i, FALSE) ? i + FALSE.length : -1
        else if (c === 0x6e) {
          i = matches(b, i, NULL) ? i + NULL.length : -1
          onlyNull = depth === 0
        } else return NOT_JSON
        if (i < 0) return NOT_JSON
        state = AFTER_VALUE
        continue
      case AFTER_VALUE: {
        const inside = containers[depth - 1]
        if (c === COMMA) {
          i++
          state = inside === IN_OBJECT ? KEY : VALUE
        } else if (
          (c === CLOSE_BRACE && inside === IN_OBJECT) ||
          (c === CLOSE_BRACKET && inside === IN_ARRAY)
        ) {
          depth--
          i++
        } else return NOT_JSON
        continue
      }
      case KEY_OR_CLOSE:
      case KEY:
        if (c !== QUOTE) return NOT_JSON
        i = skipString(b, i + 1)
        if (i < 0) return NOT_JSON
        state = AFTER_KEY
        continue
      case AFTER_KEY:
        if (c !== COLON) return NOT_JSON
        i++
        state = VALUE
        continue
    }
  }
}
