/**
 * Tab-separated text, the one row format both databases read fast: PostgreSQL's COPY text format and
 * ClickHouse's TabSeparated. One line per row, columns separated by tabs, `\N` for null, and backslash,
 * tab, newline and carriage return escaped inside values.
 *
 * A cell is text, or the bytes of UTF-8 text that holds nothing to escape (a record's value as it came
 * from Kafka, checked by the mapping): those are copied into the batch as they are, so a 1 KiB JSON value
 * is neither decoded nor encoded again.
 */
import { isUtf8 } from 'node:buffer'

declare const checked: unique symbol

/**
 * UTF-8 bytes known to hold nothing the format escapes, so they are copied into a batch unread. Only
 * `plainBytes` (which checks) and a scan that proved it (json-scan.ts) make them.
 */
export type PlainBytes = Buffer & { readonly [checked]: true }

/** Text, checked bytes of text, or null. */
export type Cell = string | PlainBytes | null

const SPECIAL = /[\\\t\n\r]/g
const ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' }
const BACKSLASH = 0x5c
const TAB = 0x09
const NEWLINE = 0x0a
const RETURN = 0x0d
const NULL_CELL = '\\N'

export function tsvValue(value: string | null): string {
  if (value === null) return NULL_CELL
  return value.replace(SPECIAL, (c) => ESCAPES[c] as string)
}

export function tsvLine(values: readonly (string | null)[]): string {
  return `${values.map(tsvValue).join('\t')}\n`
}

/** The bytes as a cell to copy as they are, or null when they are not UTF-8 or hold a character to escape. */
export function plainBytes(bytes: Buffer): PlainBytes | null {
  const special =
    bytes.indexOf(BACKSLASH) >= 0 ||
    bytes.indexOf(TAB) >= 0 ||
    bytes.indexOf(NEWLINE) >= 0 ||
    bytes.indexOf(RETURN) >= 0
  return special || !isUtf8(bytes) ? null : (bytes as PlainBytes)
}

/**
 * The rows as one buffer of tab-separated lines. `plain[i]` says column i never holds a character to
 * escape (numbers, topic names), so its text is taken as it is. Text cells next to each other are joined
 * and written at once; byte cells are copied in between. `allocate` gives the buffer to write into, of at
 * least the bytes asked for (a caller may hand out one it reuses).
 */
export function encodeRows(
  rows: readonly (readonly Cell[])[],
  plain: readonly boolean[] = [],
  allocate: (bytes: number) => Buffer = Buffer.allocUnsafe,
): Buffer {
  const parts: (string | Buffer)[] = []
  let text = ''
  let bound = 0
  for (const row of rows) {
    const last = row.length - 1
    for (let i = 0; i <= last; i++) {
      const cell = row[i] as Cell
      const separator = i === last ? '\n' : '\t'
      if (cell === null) text += NULL_CELL + separator
      else if (typeof cell === 'string') text += (plain[i] === true ? cell : tsvValue(cell)) + separator
      else {
        if (text.length > 0) {
          parts.push(text)
          // a UTF-16 code unit is at most 3 bytes of UTF-8
          bound += text.length * 3
        }
        parts.push(cell)
        bound += cell.length
        text = separator
      }
    }
  }
  if (text.length > 0) {
    parts.push(text)
    bound += text.length * 3
  }
  const buffer = allocate(bound)
  let at = 0
  for (const part of parts) {
    if (typeof part === 'string') at += buffer.write(part, at)
    else {
      buffer.set(part, at)
      at += part.length
    }
  }
  return buffer.subarray(0, at)
}
