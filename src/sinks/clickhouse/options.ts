/**
 * The ClickHouse sink's options: where the server's HTTP interface is (host, port, database, user, a
 * password from the config, a file or SPILLWAY_CLICKHOUSE_PASSWORD, TLS) and what it writes (table, column
 * mapping, offsets table). Errors name the key and never show the password.
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
import { type Mapping, readMapping } from '../mapping.ts'

export interface ClickHouseConnectionOptions {
  readonly host: string
  readonly port: number
  readonly database: string
  readonly user: string
  readonly password: string | undefined
  readonly tls: boolean
  readonly requestTimeoutMs: number
}

export interface ClickHouseTableOptions {
  readonly connection: ClickHouseConnectionOptions
  readonly table: string
  readonly mapping: Mapping
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
  'requestTimeoutMs',
] as const
const NAME = /^[a-zA-Z_][a-zA-Z0-9_]*$/

function readName(value: unknown, key: string, fallback?: string): string {
  const name = readString(value, key, fallback)
  if (!NAME.test(name)) throw invalid(key, name, 'a table name of letters, digits and _')
  return name
}

export function readClickHouseConnection(
  value: unknown,
  prefix: string,
  env: NodeJS.ProcessEnv = process.env,
): ClickHouseConnectionOptions {
  const o = readObject(value, prefix)
  rejectUnknownKeys(o, prefix, CONNECTION_KEYS)
  return {
    host: readString(o.host, `${prefix}.host`, '127.0.0.1'),
    port: readInteger(o.port, `${prefix}.port`, 8123, { min: 1, max: 65_535 }),
    database: readString(o.database, `${prefix}.database`, 'default'),
    user: readString(o.user, `${prefix}.user`, 'default'),
    password: readPassword(o, prefix, false) ?? (env.SPILLWAY_CLICKHOUSE_PASSWORD || undefined),
    tls: readBoolean(o.tls, `${prefix}.tls`, false),
    requestTimeoutMs: readInteger(o.requestTimeoutMs, `${prefix}.requestTimeoutMs`, 30_000, { min: 100 }),
  }
}

/** `clickhouse`, `table`, `columns`, `createTable`, `offsetsTable` of a sink's options. */
export function readClickHouseTable(o: Record<string, unknown>): ClickHouseTableOptions {
  const createTable = readBoolean(o.createTable, 'createTable', false)
  if (createTable && o.columns !== undefined)
    throw invalid(
      'createTable',
      true,
      'false when columns are given (create a table for your columns yourself)',
    )
  return {
    connection: readClickHouseConnection(o.clickhouse, 'clickhouse'),
    table: readName(o.table, 'table'),
    mapping: readMapping(o.columns, 'columns'),
    createTable,
    offsetsTable: readName(o.offsetsTable, 'offsetsTable', 'spillway_offsets'),
  }
}
