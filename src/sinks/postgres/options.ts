/**
 * The PostgreSQL sink's options: where the database is (host, port, database, user, a password from the
 * config, a file or SPILLWAY_PG_PASSWORD, TLS) and what it writes (table, column mapping, offsets table).
 * Errors name the key and never show the password.
 */
import {
  invalid,
  readBoolean,
  readInteger,
  readObject,
  readPassword,
  readString,
  rejectUnknownKeys,
} from '../../options.ts'
import { readTls, type TlsOptions } from '../../transport/connection.ts'
import { type Mapping, readMapping } from '../mapping.ts'

export interface PostgresConnectionOptions {
  readonly host: string
  readonly port: number
  readonly database: string
  readonly user: string
  readonly password: string | undefined
  readonly tls: TlsOptions | undefined
  readonly connectTimeoutMs: number
  readonly statementTimeoutMs: number
}

export interface PostgresTableOptions {
  readonly connection: PostgresConnectionOptions
  /** The target table, optionally schema-qualified. */
  readonly table: string
  readonly mapping: Mapping
  /** Make the table (every record field, the value as jsonb) when it does not exist; only without `columns`. */
  readonly createTable: boolean
  readonly offsetsTable: string
}

const CONNECTION_KEYS = [
  'host',
  'port',
  'database',
  'user',
  'password',
  'passwordFile',
  'tls',
  'connectTimeoutMs',
  'statementTimeoutMs',
] as const
const TABLE_NAME = /^([a-z_][a-z0-9_]*\.)?[a-z_][a-z0-9_]*$/

export function readPostgresConnection(
  value: unknown,
  prefix: string,
  env: NodeJS.ProcessEnv = process.env,
): PostgresConnectionOptions {
  const o = readObject(value, prefix)
  rejectUnknownKeys(o, prefix, CONNECTION_KEYS)
  const password = readPassword(o, prefix, false) ?? (env.SPILLWAY_PG_PASSWORD || undefined)
  return {
    host: readString(o.host, `${prefix}.host`, '127.0.0.1'),
    port: readInteger(o.port, `${prefix}.port`, 5432, { min: 1, max: 65_535 }),
    database: readString(o.database, `${prefix}.database`, 'postgres'),
    user: readString(o.user, `${prefix}.user`, 'postgres'),
    password,
    tls: readTls(o.tls, `${prefix}.tls`),
    connectTimeoutMs: readInteger(o.connectTimeoutMs, `${prefix}.connectTimeoutMs`, 5000, { min: 100 }),
    statementTimeoutMs: readInteger(o.statementTimeoutMs, `${prefix}.statementTimeoutMs`, 30_000, {
      min: 100,
    }),
  }
}

export function readTableName(value: unknown, key: string, fallback?: string): string {
  const name = readString(value, key, fallback)
  if (!TABLE_NAME.test(name))
    throw invalid(key, name, 'a table name of lower-case letters, digits and _, optionally schema.table')
  return name
}

/** `postgres`, `table`, `columns`, `createTable`, `offsetsTable` of a sink's options. */
export function readPostgresTable(o: Record<string, unknown>, prefix: string): PostgresTableOptions {
  const key = (k: string): string => (prefix ? `${prefix}.${k}` : k)
  const createTable = readBoolean(o.createTable, key('createTable'), false)
  if (createTable && o.columns !== undefined)
    throw invalid(
      key('createTable'),
      true,
      'false when columns are given (create a table for your columns yourself)',
    )
  return {
    connection: readPostgresConnection(o.postgres, key('postgres')),
    table: readTableName(o.table, key('table')),
    mapping: readMapping(o.columns, key('columns')),
    createTable,
    offsetsTable: readTableName(o.offsetsTable, key('offsetsTable'), 'spillway_offsets'),
  }
}
