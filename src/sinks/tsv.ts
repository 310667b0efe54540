/**
 * Tab-separated text, the one row format both databases read fast: PostgreSQL's COPY text format and
 * ClickHouse's TabSeparated. One line per row, columns separated by tabs, `\N` for null, and backslash,
 * tab, newline and carriage return escaped inside values.
 *
 * A cell is text, or the bytes of UTF-8 text (a record's value as it came from Kafka): those are copied
 * into the batch as they are when they hold nothing to escape, so a 1 KiB JSON value is neither decoded
 * nor encoded again.
 */

/** Text, UTF-8 bytes of text, or null. */
export type Cell = string | Buffer | null

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

/** True when the bytes hold a character the format reads specially. */
function needsEscape(bytes: Buffer): boolean {
  return (
    bytes.indexOf(BACKSLASH) >= 0 ||
    bytes.indexOf(TAB) >= 0 ||
    bytes.indexOf(NEWLINE) >= 0 ||
    bytes.indexOf(RETURN) >= 0
  )
}

/**
 * The rows as one buffer of tab-separated lines. `plain[i]` says column i never holds a character to
 * escape (numbers, topic names), so its text is taken as it is. Text cells next to each other are joined
 * and written at once; byte cells are copied in between.
 */
export function encodeRows(rows: readonly (readonly Cell[])[], plain: readonly boolean[] = []): Buffer {
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
      else if (needsEscape(cell)) text += tsvValue(cell.toString('utf8')) + separator
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
  const buffer = Buffer.allocUnsafe(bound)
  let at = 0
  for (const part of parts) at += typeof part === 'string' ? buffer.write(part, at) : part.copy(buffer, at)
  return buffer.subarray(0, at)
}
