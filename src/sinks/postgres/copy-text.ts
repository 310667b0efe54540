/**
 * PostgreSQL's COPY text format: one line per row, columns separated by tabs, `\N` for null, and
 * backslash, tab, newline and carriage return escaped inside values.
 */
const SPECIAL = /[\\\t\n\r]/g
const ESCAPES: Record<string, string> = { '\\': '\\\\', '\t': '\\t', '\n': '\\n', '\r': '\\r' }

export function copyValue(value: string | null): string {
  if (value === null) return '\\N'
  return value.replace(SPECIAL, (c) => ESCAPES[c] as string)
}

export function copyLine(values: readonly (string | null)[]): string {
  return `${values.map(copyValue).join('\t')}\n`
}

/** A possibly schema-qualified name as a quoted identifier: events → "events", app.events → "app"."events". */
export function quoteName(name: string): string {
  return name
    .split('.')
    .map((part) => `"${part.replace(/"/g, '""')}"`)
    .join('.')
}
