/**
 * The PostgreSQL writer. One batch is one transaction. It first tries the fast way, a COPY straight into
 * the target, which the unique index refuses as a whole if any id is already there; then (or for the next
 * 20 batches after such a refusal) the way that tolerates copies:
 *
 *   BEGIN
 *   CREATE TEMP TABLE IF NOT EXISTS spillway_batch … ON COMMIT DELETE ROWS
 *                                          (per connection: the target's mapped columns, no constraints)
 *   COPY spillway_batch FROM STDIN                         (text format, the batch in one buffer)
 *   INSERT INTO target SELECT … ON CONFLICT (id) DO NOTHING
 *   INSERT INTO spillway_offsets … ON CONFLICT DO UPDATE SET next_offset = GREATEST(old, new)
 *   COMMIT
 *
 * A copy of an id already in the table is not inserted again, and the partition's offset only moves
 * forward, in the same transaction as the rows: a batch retried after a crash, a lost COMMIT answer or a
 * rebalance writes nothing twice. When the bulk step fails on a row (a data exception or a constraint,
 * SQLSTATE classes 22 and 23), it is undone to a savepoint and the rows go one by one, each under its own
 * savepoint: the ones the database refuses are dead-lettered (before COMMIT, so an offset never passes a
 * record that is neither written nor dead-lettered) and the rest are written.
 */
import { pipeline } from 'node:stream/promises'
import pg from 'pg'
import { from as copyFrom } from 'pg-copy-streams'
import { SpillwayError } from '../../errors.ts'
import { encodeRows } from '../tsv.ts'
import type { Batch, PartitionRef, Refusal, Row, SinkWriter, WriteResult } from '../types.ts'
import { quoteName } from './names.ts'
import type { PostgresTableOptions } from './options.ts'

/** Rows per CopyData chunk: about 250 KiB of 1 KiB events, few messages and no giant buffer. */
const COPY_ROWS = 256

/** Batches staged after a direct COPY met an id already in the table, before trying direct again. */
const DIRECT_PAUSE = 20

interface DatabaseError extends Error {
  readonly code?: string
  readonly detail?: string
}

/** Data exceptions (22…) and integrity constraint violations (23…): the row is wrong, not the database. */
export function isRowError(error: unknown): boolean {
  const code = (error as DatabaseError | undefined)?.code
  return typeof code === 'string' && (code.startsWith('22') || code.startsWith('23'))
}

function describe(error: unknown): string {
  const e = error as DatabaseError
  const message = e instanceof Error ? e.message : String(error)
  // only the server's errors carry a SQLSTATE; a socket's code (ECONNREFUSED) is already in its message
  const sqlstate = error instanceof pg.DatabaseError && e.code ? ` (SQLSTATE ${e.code})` : ''
  return `${message}${sqlstate}${e.detail ? `: ${e.detail}` : ''}`
}

function unavailable(error: unknown, what: string): SpillwayError {
  if (error instanceof SpillwayError) return error
  return new SpillwayError('SPW_ERR_SINK_UNAVAILABLE', `PostgreSQL ${what}: ${describe(error)}`, {
    cause: error,
  })
}

export class PostgresWriter implements SinkWriter {
  readonly kind = 'postgres'
  readonly timestamps = 'iso'
  readonly target: string
  readonly #options: PostgresTableOptions
  readonly #pool: pg.Pool
  readonly #table: string
  readonly #offsets: string
  readonly #columns: string
  readonly #id: string
  /** Batches left to stage before trying a direct COPY again, after one met an id already there. */
  #skipDirect = 0
  /** Clients with an 'error' listener of ours. */
  readonly #heard = new WeakSet<pg.PoolClient>()

  constructor(options: PostgresTableOptions, poolSize: number) {
    this.#options = options
    this.target = options.table
    const c = options.connection
    this.#pool = new pg.Pool({
      host: c.host,
      port: c.port,
      database: c.database,
      user: c.user,
      ...(c.password !== undefined ? { password: c.password } : {}),
      ...(c.tls ? { ssl: c.tls } : {}),
      max: poolSize,
      connectionTimeoutMillis: c.connectTimeoutMs,
      statement_timeout: c.statementTimeoutMs,
      application_name: 'spillway-sink',
    })
    // an idle connection the server closed (a restart): the pool drops it; the next batch connects again
    this.#pool.on('error', () => undefined)
    this.#table = quoteName(options.table)
    this.#offsets = quoteName(options.offsetsTable)
    this.#columns = options.mapping.columns.map((col) => quoteName(col.name)).join(', ')
    this.#id = quoteName(options.mapping.idColumn)
  }

  async #client(): Promise<pg.PoolClient> {
    try {
      const client = await this.#pool.connect()
      // a server that goes away mid-query also emits 'error' on the checked-out client: the query's own
      // rejection reports it, and an unheard 'error' would end the process
      if (!this.#heard.has(client)) {
        client.on('error', () => undefined)
        this.#heard.add(client)
      }
      return client
    } catch (error) {
      throw unavailable(
        error,
        `cannot be reached at ${this.#options.connection.host}:${this.#options.connection.port}`,
      )
    }
  }

  async open(): Promise<void> {
    const client = await this.#client()
    try {
      await client.query(
        `CREATE TABLE IF NOT EXISTS ${this.#offsets} (owner text NOT NULL, topic text NOT NULL, "partition" integer NOT NULL, next_offset bigint NOT NULL, updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (owner, topic, "partition"))`,
      )
      if (this.#options.createTable)
        await client.query(
          `CREATE TABLE IF NOT EXISTS ${this.#table} (id text PRIMARY KEY, topic text NOT NULL, "partition" integer NOT NULL, "offset" bigint NOT NULL, "timestamp" timestamptz NOT NULL, key text, headers jsonb, value jsonb)`,
        )
      // ON CONFLICT (id) needs a unique index on the id column: say so now, not at the first batch
      const unique = await client.query(
        `SELECT 1 FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = i.indkey[0]
          WHERE i.indrelid = to_regclass($1) AND i.indisunique AND i.indnatts = 1 AND a.attname = $2`,
        [this.#options.table, this.#options.mapping.idColumn],
      )
      if (unique.rowCount === 0) {
        const exists = await client.query('SELECT to_regclass($1) IS NOT NULL AS found', [
          this.#options.table,
        ])
        throw new SpillwayError(
          'SPW_ERR_INVALID_OPTION',
          exists.rows[0]?.found
            ? `table ${this.#options.table} needs a unique index on its id column ${this.#options.mapping.idColumn} (a primary key will do)`
            : `table ${this.#options.table} does not exist (create it, or set createTable: true without columns)`,
          { details: { key: 'table' } },
        )
      }
    } catch (error) {
      throw unavailable(error, 'setup failed')
    } finally {
      client.release()
    }
  }

  async loadOffsets(
    owner: string,
    partitions: readonly PartitionRef[],
  ): Promise<{ topic: string; partition: number; offset: bigint }[]> {
    if (partitions.length === 0) return []
    const client = await this.#client()
    try {
      const result = await client.query<{ topic: string; partition: number; next_offset: string }>(
        `SELECT topic, "partition", next_offset FROM ${this.#offsets}
          WHERE owner = $1 AND (topic, "partition") IN (SELECT * FROM unnest($2::text[], $3::int[]))`,
        [owner, partitions.map((p) => p.topic), partitions.map((p) => p.partition)],
      )
      return result.rows.map((r) => ({
        topic: r.topic,
        partition: r.partition,
        offset: BigInt(r.next_offset),
      }))
    } catch (error) {
      throw unavailable(error, 'could not read the stored offsets')
    } finally {
      client.release()
    }
  }

  async write(
    batch: Batch,
    alsoRefused: readonly Refusal[],
    refused: (refusals: readonly Refusal[]) => Promise<void>,
  ): Promise<WriteResult> {
    const client = await this.#client()
    let broken: Error | undefined
    try {
      await client.query('BEGIN')
      const refusals = [...alsoRefused]
      let inserted = 0
      if (batch.rows.length > 0) {
        await client.query('SAVEPOINT spillway_bulk')
        let done = false
        if (this.#skipDirect > 0) this.#skipDirect--
        else {
          try {
            inserted = await this.#direct(client, batch.rows)
            done = true
          } catch (error) {
            if (!isRowError(error)) throw error
            await client.query('ROLLBACK TO SAVEPOINT spillway_bulk')
            // ids already there (a redelivery, copies at the input): stage the next batches for a while
            if ((error as DatabaseError).code === '23505') this.#skipDirect = DIRECT_PAUSE
          }
        }
        if (!done) {
          try {
            inserted = await this.#bulk(client, batch.rows)
          } catch (error) {
            if (!isRowError(error)) throw error
            await client.query('ROLLBACK TO SAVEPOINT spillway_bulk')
            const one = await this.#oneByOne(client, batch.rows)
            inserted = one.inserted
            refusals.push(...one.refused)
          }
        }
        await client.query('RELEASE SAVEPOINT spillway_bulk')
      }
      if (refusals.length > 0) await refused(refusals)
      await client.query(
        `INSERT INTO ${this.#offsets} (owner, topic, "partition", next_offset) VALUES ($1, $2, $3, $4)
         ON CONFLICT (owner, topic, "partition") DO UPDATE
         SET next_offset = GREATEST(${this.#offsets}.next_offset, EXCLUDED.next_offset), updated_at = now()`,
        [batch.owner, batch.topic, batch.partition, batch.nextOffset.toString()],
      )
      await client.query('COMMIT')
      return { inserted, refused: refusals.length }
    } catch (error) {
      await client.query('ROLLBACK').catch((e: Error) => {
        broken = e
      })
      throw unavailable(error, `batch for ${batch.topic}[${batch.partition}] failed`)
    } finally {
      client.release(broken)
    }
  }

  /** COPY straight into the target: all or nothing, refused as a whole by the first id already there. */
  async #direct(client: pg.PoolClient, rows: readonly Row[]): Promise<number> {
    await this.#copy(client, `COPY ${this.#table} (${this.#columns}) FROM STDIN`, rows)
    return rows.length
  }

  /** One COPY of the rows as text, sent in chunks of COPY_ROWS rows. */
  async #copy(client: pg.PoolClient, sql: string, rows: readonly Row[]): Promise<void> {
    const stream = client.query(copyFrom(sql))
    const plain = this.#options.mapping.plain
    await pipeline(
      (function* () {
        for (let i = 0; i < rows.length; i += COPY_ROWS)
          yield encodeRows(
            rows.slice(i, i + COPY_ROWS).map((row) => row.values),
            plain,
          )
      })(),
      stream,
    )
  }

  async #bulk(client: pg.PoolClient, rows: readonly Row[]): Promise<number> {
    // one staging table per connection, emptied at every commit (made again if a rollback undid it)
    await client.query(
      `CREATE TEMP TABLE IF NOT EXISTS spillway_batch ON COMMIT DELETE ROWS AS SELECT ${this.#columns} FROM ${this.#table} WITH NO DATA`,
    )
    await this.#copy(client, `COPY spillway_batch (${this.#columns}) FROM STDIN`, rows)
    const result = await client.query(
      `INSERT INTO ${this.#table} (${this.#columns}) SELECT ${this.#columns} FROM spillway_batch ON CONFLICT (${this.#id}) DO NOTHING`,
    )
    return result.rowCount ?? 0
  }

  async #oneByOne(
    client: pg.PoolClient,
    rows: readonly Row[],
  ): Promise<{ inserted: number; refused: Refusal[] }> {
    const placeholders = rows[0]?.values.map((_v, i) => `$${i + 1}`).join(', ') ?? ''
    const sql = `INSERT INTO ${this.#table} (${this.#columns}) VALUES (${placeholders}) ON CONFLICT (${this.#id}) DO NOTHING`
    let inserted = 0
    const refused: Refusal[] = []
    for (const row of rows) {
      await client.query('SAVEPOINT spillway_row')
      try {
        const result = await client.query(
          sql,
          row.values.map((v) => (Buffer.isBuffer(v) ? v.toString('utf8') : v)),
        )
        inserted += result.rowCount ?? 0
        await client.query('RELEASE SAVEPOINT spillway_row')
      } catch (error) {
        if (!isRowError(error)) throw error
        await client.query('ROLLBACK TO SAVEPOINT spillway_row')
        refused.push({
          record: row.record,
          error: new SpillwayError('SPW_ERR_SINK_REFUSED', `PostgreSQL refused the row: ${describe(error)}`, {
            cause: error,
          }),
        })
      }
    }
    return { inserted, refused }
  }

  async close(): Promise<void> {
    await this.#pool.end().catch(() => undefined)
  }
}
