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

import { type ConsumedRecord, ID_HEADER } from '../consumer/types.ts'
import { SpillwayError } from '../errors.ts'
import { invalid, readObject } from '../options.ts'
import { JSON_NULL, JSON_PLAIN, JSON_SPECIAL, scanJson } from './json-scan.ts'
import { type Cell, type PlainBytes, plainBytes } from './tsv.ts'

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
  /** Whether any column needs the value checked to be JSON ($value, or a path into it). */
  readonly needsJson: boolean
  /** Whether a column reads a path in the value, so that it must be parsed, not only checked. */
  readonly needsPaths: boolean
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
    needsPaths: columns.some((c) => 'path' in c.source),
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

const ID_HEADER_JSON = JSON.stringify(ID_HEADER)

function headersJson(record: ConsumedRecord<Buffer | null>): string {
  const headers = record.headers
  // the usual case, one header: no object to build; the event id's text is the record's id already
  if (headers.length === 1) {
    const [name, value] = headers[0] as readonly [string, Buffer]
    if (name === ID_HEADER) return `{${ID_HEADER_JSON}:${JSON.stringify(record.id)}}`
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

/** Partition numbers as text, made once each. */
const PARTITION_TEXT: string[] = []
function partitionText(partition: number): string {
  const known = PARTITION_TEXT[partition]
  if (known !== undefined) return known
  const text = String(partition)
  if (partition < 4096) PARTITION_TEXT[partition] = text
  return text
}

/** The last time written, kept: records of a batch mostly share their second (and often their ms). */
let lastSeconds = { seconds: Number.NaN, text: '' }
let lastIso = { ms: Number.NaN, text: '' }

function unixSeconds(ms: number): string {
  const seconds = Math.floor(ms / 1000)
  if (lastSeconds.seconds !== seconds) lastSeconds = { seconds, text: String(seconds) }
  return lastSeconds.text
}

function isoTime(ms: number): string {
  if (lastIso.ms !== ms) lastIso = { ms, text: new Date(ms).toISOString() }
  return lastIso.text
}

type FieldReader = (record: ConsumedRecord<Buffer | null>, value: Cell, timestamps: TimestampText) => Cell

const FIELDS: Record<Field, FieldReader> = {
  $id: (r) => r.id,
  $topic: (r) => r.topic,
  $partition: (r) => partitionText(r.partition),
  $offset: (r) => String(r.offset),
  $timestamp: (r, _v, timestamps) => (timestamps === 'iso' ? isoTime(r.timestamp) : unixSeconds(r.timestamp)),
  $key: (r) => (r.key === null ? null : r.key.toString('utf8')),
  $headers: (r) => headersJson(r),
  $value: (_r, value) => value,
  $raw: (r) => (r.value === null ? null : r.value.toString('utf8')),
}

function notJson(error: unknown): SpillwayError {
  return new SpillwayError('SPW_ERR_SINK_DECODE', `the value is not JSON: ${(error as Error).message}`)
}

/**
 * The value checked to be JSON, as its cell (null for a null value or the JSON literal null), and parsed
 * when `parse` says the mapping reads paths in it. A cell is the record's own bytes when they are UTF-8
 * with nothing to escape; otherwise the decoded text (which had any bytes that were not UTF-8 replaced).
 */
function readValue(bytes: Buffer | null, parse: boolean): { cell: Cell; parsed: unknown } {
  if (bytes === null) return { cell: null, parsed: null }
  if (!parse && isUtf8(bytes)) {
    // the usual case, the whole value to a column: scanned, not parsed
    const scan = scanJson(bytes)
    if (scan === JSON_PLAIN) return { cell: bytes as PlainBytes, parsed: undefined }
    if (scan === JSON_NULL) return { cell: null, parsed: null }
    if (scan === JSON_SPECIAL) return { cell: bytes.toString('utf8'), parsed: undefined }
    // not JSON: the parser below gives the reason
  }
  const text = bytes.toString('utf8')
  let parsed: unknown
  try {
    parsed = JSON.parse(text)
  } catch (error) {
    throw notJson(error)
  }
  if (parsed === null) return { cell: null, parsed }
  return { cell: plainBytes(bytes) ?? text, parsed }
}

/** A record as the mapping's column values; a value that is not the JSON the mapping needs throws SPW_ERR_SINK_DECODE. */
export function mapRecord(
  mapping: Mapping,
  record: ConsumedRecord<Buffer | null>,
  timestamps: TimestampText = 'iso',
): Cell[] {
  let value: Cell = null
  let parsed: unknown
  if (mapping.needsJson) ({ cell: value, parsed } = readValue(record.value, mapping.needsPaths))
  const columns = mapping.columns
  const values: Cell[] = new Array(columns.length)
  for (let i = 0; i < columns.length; i++) {
    const source = (columns[i] as Column).source
    values[i] =
      'path' in source ? text(at(parsed, source.path)) : FIELDS[source.field](record, value, timestamps)
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
