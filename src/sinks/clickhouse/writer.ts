/**
 * The ClickHouse writer, over ClickHouse's HTTP interface, using only what both the old server Debian
 * ships (18.16) and current ClickHouse have: `INSERT … FORMAT JSONEachRow`, `SELECT … FORMAT JSONEachRow`,
 * MergeTree and ReplacingMergeTree tables, basic authentication.
 *
 * ClickHouse has no transactions, so a batch is two inserts: its rows, then the partition's next offset.
 * A crash between them writes the batch again on restart. The target table is a ReplacingMergeTree
 * ordered by the event id, so copies of an id are merged away in the background, and a query that must
 * not see them reads with `FINAL`. A batch is the same records each time it is written (one partition's
 * consecutive offsets), so a retried batch adds nothing `FINAL` does not fold. The offsets table keeps
 * every offset written and is read with max(): it only moves forward.
 *
 * Where the server has `insert_deduplication_token` (current ClickHouse), each insert carries a token made
 * of the sink, the partition and the offsets it holds, and a table the sink creates keeps a deduplication
 * window, so a batch sent again after a lost answer is dropped by the server. 18.16 has neither; there
 * `FINAL` alone folds the copy.
 *
 * A batch ClickHouse refuses for its data (a value it cannot parse into the column's type) is written
 * again one row at a time; the rows it refuses are dead-lettered before the offset passes them.
 */
import { SpillwayError } from '../../errors.ts'
import type { Batch, PartitionRef, Refusal, Row, SinkWriter, WriteResult } from '../types.ts'
import type { ClickHouseTableOptions } from './options.ts'

/** ClickHouse error codes that mean "this data", not "this server": a row to refuse, not a batch to retry. */
const DATA_ERRORS = new Set([
  6, // CANNOT_PARSE_TEXT
  26, // CANNOT_PARSE_QUOTED_STRING
  27, // CANNOT_PARSE_INPUT_ASSERTION_FAILED
  38, // CANNOT_PARSE_DATE
  41, // CANNOT_PARSE_DATETIME
  53, // TYPE_MISMATCH
  69, // ARGUMENT_OUT_OF_BOUND
  70, // CANNOT_CONVERT_TYPE
  72, // CANNOT_PARSE_NUMBER
  117, // INCORRECT_DATA
  349, // CANNOT_INSERT_NULL_IN_ORDINARY_COLUMN
])

class ClickHouseError extends Error {
  readonly code: number | undefined
  readonly status: number
  constructor(status: number, body: string) {
    const code = /Code: (\d+)/.exec(body)?.[1]
    super(body.trim().split('\n')[0]?.slice(0, 500) || `HTTP ${status}`)
    this.code = code === undefined ? undefined : Number(code)
    this.status = status
  }
}

const isDataError = (error: unknown): boolean =>
  error instanceof ClickHouseError && error.code !== undefined && DATA_ERRORS.has(error.code)

export class ClickHouseWriter implements SinkWriter {
  readonly kind = 'clickhouse'
  readonly target: string
  readonly #options: ClickHouseTableOptions
  readonly #authorization: string
  /** The server has `insert_deduplication_token` (current ClickHouse; 18.16 does not): each insert names its rows. */
  #tokens = false

  constructor(options: ClickHouseTableOptions) {
    this.#options = options
    this.target = options.table
    const c = options.connection
    this.#authorization = `Basic ${Buffer.from(`${c.user}:${c.password ?? ''}`).toString('base64')}`
  }

  async #query(sql: string, body?: string, settings: Readonly<Record<string, string>> = {}): Promise<string> {
    const c = this.#options.connection
    const url = new URL(`${c.tls ? 'https' : 'http'}://${c.host}:${c.port}/`)
    url.searchParams.set('database', c.database)
    url.searchParams.set('query', sql)
    for (const [name, value] of Object.entries(settings)) url.searchParams.set(name, value)
    let response: Response
    try {
      response = await fetch(url, {
        method: 'POST',
        headers: { authorization: this.#authorization, 'content-type': 'text/plain; charset=utf-8' },
        ...(body !== undefined ? { body } : {}),
        signal: AbortSignal.timeout(c.requestTimeoutMs),
      })
    } catch (error) {
      throw new SpillwayError(
        'SPW_ERR_SINK_UNAVAILABLE',
        `ClickHouse cannot be reached at ${c.host}:${c.port}: ${(error as Error).cause ?? (error as Error).message}`,
        { cause: error },
      )
    }
    const text = await response.text()
    if (!response.ok) throw new ClickHouseError(response.status, text)
    return text
  }

  /** Whether the server knows a setting (system.settings, or system.merge_tree_settings for a table's). */
  async #knows(table: 'settings' | 'merge_tree_settings', name: string): Promise<boolean> {
    const found = await this.#query(
      `SELECT count() FROM system.${table} WHERE name = '${name}' FORMAT TabSeparated`,
    )
    return found.trim() === '1'
  }

  async open(): Promise<void> {
    try {
      this.#tokens = await this.#knows('settings', 'insert_deduplication_token')
      // a plain MergeTree keeps the tokens it has seen only with a deduplication window
      const window =
        this.#tokens && (await this.#knows('merge_tree_settings', 'non_replicated_deduplication_window'))
          ? ' SETTINGS non_replicated_deduplication_window = 1000'
          : ''
      await this.#query(
        `CREATE TABLE IF NOT EXISTS ${this.#options.offsetsTable} (owner String, topic String, partition UInt32, next_offset UInt64) ENGINE = ReplacingMergeTree(next_offset) ORDER BY (owner, topic, partition)`,
      )
      if (this.#options.createTable)
        await this.#query(
          `CREATE TABLE IF NOT EXISTS ${this.#options.table} (id String, topic String, partition UInt32, offset UInt64, timestamp DateTime, key Nullable(String), headers String, value String) ENGINE = ReplacingMergeTree() ORDER BY id${window}`,
        )
      const engine = (
        await this.#query(
          `SELECT engine FROM system.tables WHERE database = currentDatabase() AND name = '${this.#options.table.replace(/'/g, "''")}' FORMAT TabSeparated`,
        )
      ).trim()
      if (engine === '')
        throw new SpillwayError(
          'SPW_ERR_INVALID_OPTION',
          `table ${this.#options.table} does not exist (create it as a ReplacingMergeTree ordered by the id column, or set createTable: true without columns)`,
          { details: { key: 'table' } },
        )
    } catch (error) {
      if (error instanceof SpillwayError) throw error
      throw new SpillwayError(
        'SPW_ERR_SINK_UNAVAILABLE',
        `ClickHouse setup failed: ${(error as Error).message}`,
        {
          cause: error,
        },
      )
    }
  }

  async loadOffsets(
    owner: string,
    partitions: readonly PartitionRef[],
  ): Promise<{ topic: string; partition: number; offset: bigint }[]> {
    if (partitions.length === 0) return []
    const quote = (s: string): string => `'${s.replace(/\\/g, '\\\\').replace(/'/g, "\\'")}'`
    try {
      const text = await this.#query(
        `SELECT topic, partition, toString(max(next_offset)) AS next FROM ${this.#options.offsetsTable} WHERE owner = ${quote(owner)} GROUP BY topic, partition FORMAT JSONEachRow`,
      )
      const wanted = new Set(partitions.map((p) => `${p.topic}\u0000${p.partition}`))
      return text
        .split('\n')
        .filter((line) => line.trim() !== '')
        .map((line) => JSON.parse(line) as { topic: string; partition: number; next: string })
        .filter((r) => wanted.has(`${r.topic}\u0000${r.partition}`))
        .map((r) => ({ topic: r.topic, partition: Number(r.partition), offset: BigInt(r.next) }))
    } catch (error) {
      throw new SpillwayError(
        'SPW_ERR_SINK_UNAVAILABLE',
        `ClickHouse: could not read the stored offsets: ${(error as Error).message}`,
        { cause: error },
      )
    }
  }

  /** JSONEachRow lines; `$timestamp` goes as unix seconds, which a DateTime reads whatever the server's zone. */
  #lines(rows: readonly Row[]): string {
    const columns = this.#options.mapping.columns
    return rows
      .map((row) =>
        JSON.stringify(
          Object.fromEntries(
            columns.map((c, i) => [
              c.name,
              'field' in c.source && c.source.field === '$timestamp'
                ? String(Math.floor(row.record.timestamp / 1000))
                : (row.values[i] ?? null),
            ]),
          ),
        ),
      )
      .join('\n')
  }

  /**
   * One insert of `rows`. Where the server has deduplication tokens, the token names the rows by owner,
   * partition and offsets, so an insert retried after a lost answer is dropped by the server.
   */
  async #insert(owner: string, rows: readonly Row[]): Promise<void> {
    const columns = this.#options.mapping.columns.map((c) => c.name).join(', ')
    const first = rows[0]?.record
    const last = rows[rows.length - 1]?.record
    const settings: Record<string, string> =
      this.#tokens && first && last
        ? {
            insert_deduplication_token: `${owner}:${first.topic}:${first.partition}:${first.offset}-${last.offset}`,
          }
        : {}
    await this.#query(
      `INSERT INTO ${this.#options.table} (${columns}) FORMAT JSONEachRow`,
      this.#lines(rows),
      settings,
    )
  }

  async write(
    batch: Batch,
    alsoRefused: readonly Refusal[],
    refused: (refusals: readonly Refusal[]) => Promise<void>,
  ): Promise<WriteResult> {
    try {
      const refusals = [...alsoRefused]
      let written = batch.rows.length
      if (batch.rows.length > 0) {
        try {
          await this.#insert(batch.owner, batch.rows)
        } catch (error) {
          if (!isDataError(error)) throw error
          written = 0
          for (const row of batch.rows) {
            try {
              await this.#insert(batch.owner, [row])
              written++
            } catch (rowError) {
              if (!isDataError(rowError)) throw rowError
              refusals.push({
                record: row.record,
                error: new SpillwayError(
                  'SPW_ERR_SINK_REFUSED',
                  `ClickHouse refused the row: ${(rowError as Error).message}`,
                  { cause: rowError },
                ),
              })
            }
          }
        }
      }
      if (refusals.length > 0) await refused(refusals)
      await this.#query(
        `INSERT INTO ${this.#options.offsetsTable} (owner, topic, partition, next_offset) FORMAT JSONEachRow`,
        JSON.stringify({
          owner: batch.owner,
          topic: batch.topic,
          partition: batch.partition,
          next_offset: batch.nextOffset.toString(),
        }),
      )
      // ClickHouse cannot say which ids it had already: every row written counts as inserted
      return { inserted: written, refused: refusals.length }
    } catch (error) {
      if (error instanceof SpillwayError) throw error
      throw new SpillwayError(
        'SPW_ERR_SINK_UNAVAILABLE',
        `ClickHouse batch for ${batch.topic}[${batch.partition}] failed: ${(error as Error).message}`,
        { cause: error },
      )
    }
  }

  async close(): Promise<void> {}
}
