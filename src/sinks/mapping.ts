/**
 * A table mapping: which column takes what from a record. A source is a record field (`$id`, `$topic`,
 * `$partition`, `$offset`, `$timestamp`, `$key`, `$headers`, `$value` for the whole value as JSON (checked
 * to parse), `$raw`
 * for the value as text) or a dotted path into the value's JSON (`user.id`). Values come out as text (or
 * null), the form both PostgreSQL's COPY and ClickHouse's TabSeparated take; the database turns text into
 * the column's type and refuses what does not fit. `$value` comes out as the record's own bytes when they
 * are UTF-8, so a writer copies them without decoding and encoding them again.
 */
import { isUtf8 } from 'node:buffer'

import type { ConsumedRecord } from '../consumer/types.ts'
import { SpillwayError } from '../errors.ts'
import { invalid, readObject } from '../options.ts'
import type { Cell } from './tsv.ts'

export const RECORD_FIELDS = [
  '$id',
  '$topic',
  '$partition',
  '$offset',
  '$timestamp',
  '$key',
  '$headers',
  '$value',
  '$raw',
] as const

export type Source = { readonly field: Field } | { readonly path: readonly string[] }

export interface Column {
  readonly name: string
  readonly source: Source
}

export interface Mapping {
  readonly columns: readonly Column[]
  /** The column that holds the event id: the table's unique key. */
  readonly idColumn: string
  /** Whether any column needs the value parsed as JSON. */
  readonly needsJson: boolean
  /** Per column: its text never holds a tab, newline or backslash (numbers, times, topic names). */
  readonly plain: readonly boolean[]
}

/** Fields whose text is digits, an ISO time or a Kafka topic name ([a-zA-Z0-9._-]). */
const PLAIN_FIELDS: ReadonlySet<string> = new Set(['$topic', '$partition', '$offset', '$timestamp'])

/** Every record field, the value as JSON: what `createTable` makes when no columns are given. */
export const DEFAULT_COLUMNS: Readonly<Record<string, string>> = {
  id: '$id',
  topic: '$topic',
  partition: '$partition',
  offset: '$offset',
  timestamp: '$timestamp',
  key: '$key',
  headers: '$headers',
  value: '$value',
}

const COLUMN_NAME = /^[a-z_][a-z0-9_]*$/

export function readMapping(value: unknown, key: string): Mapping {
  const o = value === undefined ? DEFAULT_COLUMNS : readObject(value, key)
  const columns: Column[] = []
  for (const [name, raw] of Object.entries(o)) {
    if (!COLUMN_NAME.test(name))
      throw invalid(`${key}.${name}`, name, 'a column name of lower-case letters, digits and _')
    if (typeof raw !== 'string' || raw.length === 0)
      throw invalid(
        `${key}.${name}`,
        raw,
        `one of ${RECORD_FIELDS.join(', ')}, or a dotted path into the value`,
      )
    if (raw.startsWith('$')) {
      if (!(RECORD_FIELDS as readonly string[]).includes(raw))
        throw invalid(
          `${key}.${name}`,
          raw,
          `one of ${RECORD_FIELDS.join(', ')}, or a dotted path into the value`,
        )
      columns.push({ name, source: { field: raw as Field } })
    } else {
      const path = raw.split('.')
      if (path.some((p) => p.length === 0)) throw invalid(`${key}.${name}`, raw, 'a dotted path like user.id')
      columns.push({ name, source: { path } })
    }
  }
  const ids = columns.filter((c) => 'field' in c.source && c.source.field === '$id')
  if (ids.length !== 1)
    throw invalid(key, Object.keys(o).join(','), 'exactly one column mapped from $id (the unique key)')
  return {
    columns,
    idColumn: (ids[0] as Column).name,
    needsJson: columns.some((c) => 'path' in c.source || c.source.field === '$value'),
    plain: columns.map((c) => 'field' in c.source && PLAIN_FIELDS.has(c.source.field)),
  }
}

function text(value: unknown): string | null {
  if (value === null || value === undefined) return null
  if (typeof value === 'string') return value
  if (typeof value === 'number' || typeof value === 'boolean' || typeof value === 'bigint')
    return String(value)
  return JSON.stringify(value)
}

function headersJson(headers: readonly (readonly [string, Buffer])[]): string {
  // the usual case, one header (the event id): no object to build
  if (headers.length === 1) {
    const [name, value] = headers[0] as readonly [string, Buffer]
    return `{${JSON.stringify(name)}:${JSON.stringify(value.toString('utf8'))}}`
  }
  const out: Record<string, string | string[]> = {}
  for (const [name, value] of headers) {
    const v = value.toString('utf8')
    const prior = out[name]
    out[name] = prior === undefined ? v : Array.isArray(prior) ? [...prior, v] : [prior, v]
  }
  return JSON.stringify(out)
}

type Field = (typeof RECORD_FIELDS)[number]

/**
 * How `$timestamp` is written: ISO-8601 with milliseconds (PostgreSQL's timestamptz reads it), or unix
 * seconds (what a ClickHouse DateTime reads in any server time zone).
 */
export type TimestampText = 'iso' | 'unix-seconds'

type FieldReader = (
  record: ConsumedRecord<Buffer | null>,
  parsed: unknown,
  text: string | null,
  timestamps: TimestampText,
) => Cell

const FIELDS: Record<Field, FieldReader> = {
  $id: (r) => r.id,
  $topic: (r) => r.topic,
  $partition: (r) => String(r.partition),
  $offset: (r) => String(r.offset),
  $timestamp: (r, _p, _t, timestamps) =>
    timestamps === 'iso' ? new Date(r.timestamp).toISOString() : String(Math.floor(r.timestamp / 1000)),
  $key: (r) => (r.key === null ? null : r.key.toString('utf8')),
  $headers: (r) => headersJson(r.headers),
  // the value as it came: it parsed, so it is JSON, and the database normalises it (jsonb) or keeps it;
  // its own bytes when they are UTF-8 (the decoded text replaced any that were not)
  $value: (r, parsed, text) =>
    parsed === undefined || parsed === null ? null : r.value !== null && isUtf8(r.value) ? r.value : text,
  $raw: (r) => (r.value === null ? null : r.value.toString('utf8')),
}

/** A record as the mapping's column values; a value that is not the JSON the mapping needs throws SPW_ERR_SINK_DECODE. */
export function mapRecord(
  mapping: Mapping,
  record: ConsumedRecord<Buffer | null>,
  timestamps: TimestampText = 'iso',
): Cell[] {
  let parsed: unknown
  let json: string | null = null
  if (mapping.needsJson) {
    if (record.value === null) parsed = null
    else {
      try {
        json = record.value.toString('utf8')
        parsed = JSON.parse(json)
      } catch (error) {
        throw new SpillwayError('SPW_ERR_SINK_DECODE', `the value is not JSON: ${(error as Error).message}`)
      }
    }
  }
  const columns = mapping.columns
  const values: Cell[] = new Array(columns.length)
  for (let i = 0; i < columns.length; i++) {
    const source = (columns[i] as Column).source
    values[i] =
      'path' in source
        ? text(at(parsed, source.path))
        : FIELDS[source.field](record, parsed, json, timestamps)
  }
  return values
}

/** The value at a dotted path of parsed JSON, or undefined. */
function at(parsed: unknown, path: readonly string[]): unknown {
  let value = parsed
  for (const step of path) {
    if (value === null || typeof value !== 'object') return undefined
    value = (value as Record<string, unknown>)[step]
  }
  return value
}
