/**
 * The ClickHouse writer, over ClickHouse's HTTP interface, using only what both the old server Debian
 * ships (18.16) and current ClickHouse have: `INSERT … FORMAT TabSeparated` (the same text as PostgreSQL's
 * COPY, tsv.ts), `SELECT … FORMAT JSONEachRow`, system.columns, MergeTree and ReplacingMergeTree tables,
 * basic authentication.
 *
 * TabSeparated reads a null for a column that is not Nullable as the column's default, where JSONEachRow
 * on 18.16 refused it. So that no version writes a default in place of a missing value, the writer reads
 * the table's columns at open and refuses such a row itself (it is dead-lettered like any refused row).
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
import http from 'node:http'
import https from 'node:https'
import { SpillwayError } from '../../errors.ts'
import { encodeRows } from '../tsv.ts'
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

/** A batch that could not be written, as the error the sink retries. */
function unavailable(error: unknown, batch: Batch): SpillwayError {
  if (error instanceof SpillwayError) return error
  return new SpillwayError(
    'SPW_ERR_SINK_UNAVAILABLE',
    `ClickHouse batch for ${batch.topic}[${batch.partition}] failed: ${(error as Error).message}`,
    { cause: error },
  )
}

/** Rows one insert takes from waiting batches (a batch is never split). */
const GROUP_ROWS = 50_000

/** The largest insert body the writer keeps a buffer for between inserts. */
const SCRATCH_MAX = 64 * 1024 * 1024

/** A batch waiting for the insert under way to finish. */
interface Pending {
  readonly batch: Batch
  readonly alsoRefused: readonly Refusal[]
  readonly refused: (refusals: readonly Refusal[]) => Promise<void>
  readonly resolve: (result: WriteResult) => void
  readonly reject: (error: unknown) => void
}

export class ClickHouseWriter implements SinkWriter {
  readonly kind = 'clickhouse'
  readonly timestamps = 'unix-seconds'
  readonly target: string
  readonly #options: ClickHouseTableOptions
  readonly #authorization: string
  /** The server has `insert_deduplication_token` (current ClickHouse; 18.16 does not): each insert names its rows. */
  #tokens = false
  readonly #agent: http.Agent
  readonly #queue: Pending[] = []
  #flushing = false
  /**
   * The buffer inserts are encoded into, reused: inserts of rows go one at a time, and ClickHouse has read
   * a body whole before it answers. A fresh 30 MB buffer per insert would be fresh pages to fault in and
   * external memory for the garbage collector to count.
   */
  #body: Buffer | undefined
  readonly #scratch = (bytes: number): Buffer => {
    if (bytes > SCRATCH_MAX) return Buffer.allocUnsafe(bytes)
    if (this.#body === undefined || this.#body.length < bytes)
      this.#body = Buffer.allocUnsafeSlow(Math.min(SCRATCH_MAX, Math.ceil(bytes * 1.25)))
    return this.#body
  }
  /** Per mapped column (in the mapping's order): whether the table's column is Nullable. */
  #nullable: readonly boolean[] = []

  constructor(options: ClickHouseTableOptions) {
    this.#options = options
    this.target = options.table
    const c = options.connection
    this.#authorization = `Basic ${Buffer.from(`${c.user}:${c.password ?? ''}`).toString('base64')}`
    this.#agent = new (c.tls ? https.Agent : http.Agent)({ keepAlive: true, maxSockets: 8 })
  }

  async #query(
    sql: string,
    body?: string | Buffer,
    settings: Readonly<Record<string, string>> = {},
  ): Promise<string> {
    const c = this.#options.connection
    const params = new URLSearchParams({ database: c.database, query: sql, ...settings })
    let answer: { status: number; text: string }
    try {
      answer = await this.#post(`/?${params}`, body ?? '')
    } catch (error) {
      throw new SpillwayError(
        'SPW_ERR_SINK_UNAVAILABLE',
        `ClickHouse cannot be reached at ${c.host}:${c.port}: ${(error as Error).message}`,
        { cause: error },
      )
    }
    if (answer.status !== 200) throw new ClickHouseError(answer.status, answer.text)
    return answer.text
  }

  /**
   * One POST over a kept-alive connection (node:http hands the body to the socket as it is; fetch copies
   * it twice), within the connection's request timeout.
   */
  #post(path: string, body: string | Buffer): Promise<{ status: number; text: string }> {
    const c = this.#options.connection
    return new Promise((resolve, reject) => {
      const request = (c.tls ? https : http).request(
        {
          host: c.host,
          port: c.port,
          path,
          method: 'POST',
          agent: this.#agent,
          headers: {
            authorization: this.#authorization,
            'content-type': 'text/plain; charset=utf-8',
            'content-length': Buffer.byteLength(body),
          },
          timeout: c.requestTimeoutMs,
        },
        (response) => {
          const chunks: Buffer[] = []
          response.on('data', (chunk: Buffer) => chunks.push(chunk))
          response.on('end', () => {
            const answer = { status: response.statusCode ?? 0, text: Buffer.concat(chunks).toString('utf8') }
            // the body's buffer is reused: settle once the socket no longer reads from it (an early
            // refusal can come while the body is still being sent)
            if (request.writableFinished) resolve(answer)
            else {
              request.once('finish', () => resolve(answer))
              request.once('close', () => resolve(answer))
            }
          })
          response.on('error', reject)
        },
      )
      request.on('timeout', () =>
        request.destroy(new Error(`no answer within ${c.requestTimeoutMs} ms (requestTimeoutMs)`)),
      )
      request.on('error', reject)
      request.end(body)
    })
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
      const table = this.#options.table.replace(/'/g, "''")
      const types = new Map(
        (
          await this.#query(
            `SELECT name, type FROM system.columns WHERE database = currentDatabase() AND table = '${table}' FORMAT TabSeparated`,
          )
        )
          .split('\n')
          .filter((line) => line !== '')
          .map((line) => line.split('\t') as [string, string]),
      )
      if (types.size === 0)
        throw new SpillwayError(
          'SPW_ERR_INVALID_OPTION',
          `table ${this.#options.table} does not exist (create it as a ReplacingMergeTree ordered by the id column, or set createTable: true without columns)`,
          { details: { key: 'table' } },
        )
      const missing = this.#options.mapping.columns.filter((c) => !types.has(c.name)).map((c) => c.name)
      if (missing.length > 0)
        throw new SpillwayError(
          'SPW_ERR_INVALID_OPTION',
          `table ${this.#options.table} has no column ${missing.join(', ')} (columns: ${[...types.keys()].join(', ')})`,
          { details: { key: 'columns' } },
        )
      this.#nullable = this.#options.mapping.columns.map((c) =>
        (types.get(c.name) ?? '').startsWith('Nullable('),
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

  /**
   * One insert of `rows`, the rows of `batches`. Where the server has deduplication tokens, the token
   * names the rows by owner, partitions and offsets, so an insert retried after a lost answer is dropped by
   * the server.
   */
  async #insert(rows: readonly Row[], batches: readonly Batch[]): Promise<void> {
    const columns = this.#options.mapping.columns.map((c) => c.name).join(', ')
    const token = batches
      .map((b) => {
        const first = b.rows[0]?.record.offset
        return `${b.owner}:${b.topic}:${b.partition}:${first ?? ''}-${b.nextOffset - 1n}`
      })
      .join(',')
    await this.#query(
      `INSERT INTO ${this.#options.table} (${columns}) FORMAT TabSeparated`,
      encodeRows(
        rows.map((row) => row.values),
        this.#options.mapping.plain,
        this.#scratch,
      ),
      this.#tokens ? { insert_deduplication_token: token } : {},
    )
  }

  /**
   * Batches wait here while an insert is under way, and the next insert takes all of them: ClickHouse
   * pays a fixed cost per insert (a part on disk per insert, merged later), so the batches of many
   * partitions go in one insert and one offsets insert rather than two each.
   */
  write(
    batch: Batch,
    alsoRefused: readonly Refusal[],
    refused: (refusals: readonly Refusal[]) => Promise<void>,
  ): Promise<WriteResult> {
    return new Promise((resolve, reject) => {
      this.#queue.push({ batch, alsoRefused, refused, resolve, reject })
      if (!this.#flushing) void this.#flush()
    })
  }

  async #flush(): Promise<void> {
    this.#flushing = true
    try {
      while (this.#queue.length > 0) {
        let rows = 0
        let n = 0
        while (n < this.#queue.length && (n === 0 || rows < GROUP_ROWS)) {
          rows += (this.#queue[n] as Pending).batch.rows.length
          n++
        }
        await this.#writeGroup(this.#queue.splice(0, n))
      }
    } finally {
      this.#flushing = false
    }
  }

  /** Writes waiting batches together; each settles with its own outcome. */
  async #writeGroup(group: readonly Pending[]): Promise<void> {
    const prepared = group.map((p) => {
      const refusals = [...p.alsoRefused]
      return { pending: p, refusals, rows: this.#withValues(p.batch.rows, refusals) }
    })
    let together = prepared.length > 1
    if (together) {
      try {
        const rows = prepared.flatMap((p) => p.rows)
        if (rows.length > 0)
          await this.#insert(
            rows,
            prepared.map((p) => p.pending.batch),
          )
      } catch (error) {
        // a row ClickHouse refuses: each batch goes on its own, and its rows one by one if need be
        if (!isDataError(error)) {
          for (const p of group) p.reject(unavailable(error, p.batch))
          return
        }
        together = false
      }
    }
    const done: { pending: Pending; result: WriteResult }[] = []
    for (const p of prepared) {
      try {
        const written = together
          ? p.rows.length
          : await this.#insertAlone(p.pending.batch, p.rows, p.refusals)
        if (p.refusals.length > 0) await p.pending.refused(p.refusals)
        // ClickHouse cannot say which ids it had already: every row written counts as inserted
        done.push({ pending: p.pending, result: { inserted: written, refused: p.refusals.length } })
      } catch (error) {
        p.pending.reject(unavailable(error, p.pending.batch))
      }
    }
    // the next group's rows go in while these offsets are recorded: a batch settles after both
    if (done.length > 0) void this.#recordOffsets(done)
  }

  /** The partitions' next offsets, written after their rows; each batch settles once they are in. */
  async #recordOffsets(done: readonly { pending: Pending; result: WriteResult }[]): Promise<void> {
    try {
      await this.#query(
        `INSERT INTO ${this.#options.offsetsTable} (owner, topic, partition, next_offset) FORMAT JSONEachRow`,
        done
          .map(({ pending: { batch } }) =>
            JSON.stringify({
              owner: batch.owner,
              topic: batch.topic,
              partition: batch.partition,
              next_offset: batch.nextOffset.toString(),
            }),
          )
          .join('\n'),
      )
    } catch (error) {
      for (const d of done) d.pending.reject(unavailable(error, d.pending.batch))
      return
    }
    for (const d of done) d.pending.resolve(d.result)
  }

  /** One batch's rows in one insert, or one by one when ClickHouse refuses some; returns how many went in. */
  async #insertAlone(batch: Batch, rows: readonly Row[], refusals: Refusal[]): Promise<number> {
    if (rows.length === 0) return 0
    try {
      await this.#insert(rows, [batch])
      return rows.length
    } catch (error) {
      if (!isDataError(error)) throw error
    }
    let written = 0
    for (const row of rows) {
      try {
        await this.#insert([row], [{ ...batch, rows: [row], nextOffset: row.record.offset + 1n }])
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
    return written
  }

  /** The rows with a value for every column that is not Nullable; the others are refused. */
  #withValues(rows: readonly Row[], refusals: Refusal[]): readonly Row[] {
    const nullable = this.#nullable
    let kept: Row[] | undefined
    for (let k = 0; k < rows.length; k++) {
      const row = rows[k] as Row
      const empty = row.values.findIndex((v, i) => v === null && nullable[i] === false)
      if (empty < 0) {
        kept?.push(row)
        continue
      }
      kept ??= rows.slice(0, k)
      const column = this.#options.mapping.columns[empty]?.name
      refusals.push({
        record: row.record,
        error: new SpillwayError(
          'SPW_ERR_SINK_REFUSED',
          `the record has no value for column ${column}, which is not Nullable in ClickHouse`,
          { details: { column } },
        ),
      })
    }
    return kept ?? rows
  }

  async close(): Promise<void> {
    this.#agent.destroy()
  }
}
