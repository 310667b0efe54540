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

  constructor(options: ClickHouseTableOptions) {
    this.#options = options
    this.target = options.table
    const c = options.connection
    this.#authorization = `Basic ${Buffer.from(`${c.user}:${c.password ?? ''}`).toString('base64')}`
  }

  async #query(sql: string, body?: string): Promise<string> {
    const c = this.#options.connection
    const url = new URL(`${c.tls ? 'https' : 'http'}://${c.host}:${c.port}/`)
    url.searchParams.set('database', c.database)
    url.searchParams.set('query', sql)
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

  async open(): Promise<void> {
    try {
      await this.#query(
        `CREATE TABLE IF NOT EXISTS ${this.#options.offsetsTable} (owner String, topic String, partition UInt32, next_offset UInt64) ENGINE = ReplacingMergeTree(next_offset) ORDER BY (owner, topic, partition)`,
      )
      if (this.#options.createTable)
        await this.#query(
          `CREATE TABLE IF NOT EXISTS ${this.#options.table} (id String, topic String, partition UInt32, offset UInt64, timestamp DateTime, key Nullable(String), headers String, value String) ENGINE = ReplacingMergeTree() ORDER BY id`,
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

  async #insert(rows: readonly Row[]): Promise<void> {
    const columns = this.#options.mapping.columns.map((c) => c.name).join(', ')
    await this.#query(`INSERT INTO ${this.#options.table} (${columns}) FORMAT JSONEachRow`, this.#lines(rows))
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
          await this.#insert(batch.rows)
        } catch (error) {
          if (!isDataError(error)) throw error
          written = 0
          for (const row of batch.rows) {
            try {
              await this.#insert([row])
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
