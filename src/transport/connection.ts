/**
 * How to reach a cluster: brokers, client id, TLS and SASL, read from options in one place. The producer,
 * the gateway's `kafka` section and every later Kafka client share this reader, so a secured cluster is
 * configured the same way everywhere and a wrong setting fails with the key that is wrong.
 *
 * PEM material and passwords may be given inline or as files (`caFile`, `certFile`, `keyFile`,
 * `passwordFile`), which are read once here; a file that cannot be read is an option error naming it.
 */
import {
  invalid,
  joinKey as join,
  readBoolean,
  readEnum,
  readFileOption,
  readObject,
  readPassword,
  readString,
  rejectUnknownKeys,
} from '../options.ts'

export const SASL_MECHANISMS = ['PLAIN', 'SCRAM-SHA-256', 'SCRAM-SHA-512'] as const

export interface SaslOptions {
  readonly mechanism: (typeof SASL_MECHANISMS)[number]
  readonly username: string
  readonly password: string
}

/** TLS settings handed to Node's `tls.connect` (only these keys). */
export interface TlsOptions {
  readonly ca?: string
  readonly cert?: string
  readonly key?: string
  readonly servername?: string
  /** Default true: the broker's certificate must chain to `ca` (or the system's CAs). */
  readonly rejectUnauthorized?: boolean
}

/** TLS as a user writes it: PEM inline or in files; `true` for TLS with the system's CAs. */
export type TlsInput =
  | boolean
  | (TlsOptions & { readonly caFile?: string; readonly certFile?: string; readonly keyFile?: string })

/** SASL as a user writes it: the password inline or in a file. */
export interface SaslInput {
  readonly mechanism?: SaslOptions['mechanism']
  readonly username: string
  readonly password?: string
  readonly passwordFile?: string
}

export interface ConnectionOptions {
  readonly brokers: readonly string[]
  readonly clientId: string
  readonly tls: TlsOptions | undefined
  readonly sasl: SaslOptions | undefined
}

const TLS_KEYS = ['ca', 'caFile', 'cert', 'certFile', 'key', 'keyFile', 'servername', 'rejectUnauthorized']
const SASL_KEYS = ['mechanism', 'username', 'password', 'passwordFile']

/** The key names this reader takes, for components that list their own keys. */
export const CONNECTION_KEYS = ['brokers', 'clientId', 'tls', 'sasl'] as const

/** One PEM value given inline (`name`) or as a file (`nameFile`), never both. */
function readPem(o: Record<string, unknown>, name: string, prefix: string): string | undefined {
  const inline = o[name]
  const file = o[`${name}File`]
  if (inline !== undefined && file !== undefined)
    throw invalid(join(prefix, name), '(both given)', `either ${name} or ${name}File, not both`)
  if (file !== undefined) return readFileOption(file, join(prefix, `${name}File`))
  if (inline === undefined) return undefined
  const pem = readString(inline, join(prefix, name))
  if (!pem.includes('-----BEGIN '))
    throw invalid(join(prefix, name), '(not PEM)', `PEM text, or ${name}File with its path`)
  return pem
}

/** Reads a broker list of "host:port" entries (a comma-separated string is accepted too). */
export function readBrokers(value: unknown, key: string): string[] {
  const list = typeof value === 'string' && value.length > 0 ? value.split(',').map((s) => s.trim()) : value
  if (!Array.isArray(list) || list.length === 0) throw invalid(key, value, 'a non-empty list of "host:port"')
  for (const b of list) {
    if (typeof b !== 'string' || !/^[^:\s]+:\d{1,5}$/.test(b)) throw invalid(key, b, '"host:port" entries')
    const port = Number(b.slice(b.lastIndexOf(':') + 1))
    if (port < 1 || port > 65535) throw invalid(key, b, 'a port from 1 to 65535')
  }
  return list as string[]
}

export function readTls(value: unknown, prefix: string): TlsOptions | undefined {
  if (value === undefined || value === false) return undefined
  if (value === true) return {}
  const o = readObject(value, prefix)
  rejectUnknownKeys(o, prefix, TLS_KEYS)
  const ca = readPem(o, 'ca', prefix)
  const cert = readPem(o, 'cert', prefix)
  const key = readPem(o, 'key', prefix)
  if ((cert === undefined) !== (key === undefined))
    throw invalid(join(prefix, cert === undefined ? 'cert' : 'key'), undefined, 'cert and key together')
  return {
    ...(ca !== undefined ? { ca } : {}),
    ...(cert !== undefined ? { cert } : {}),
    ...(key !== undefined ? { key } : {}),
    ...(o.servername !== undefined
      ? { servername: readString(o.servername, join(prefix, 'servername')) }
      : {}),
    rejectUnauthorized: readBoolean(o.rejectUnauthorized, join(prefix, 'rejectUnauthorized'), true),
  }
}

export function readSasl(value: unknown, prefix: string): SaslOptions | undefined {
  if (value === undefined) return undefined
  const o = readObject(value, prefix)
  rejectUnknownKeys(o, prefix, SASL_KEYS)
  const password = readPassword(o, prefix, true) as string
  return {
    mechanism: readEnum(o.mechanism, join(prefix, 'mechanism'), SASL_MECHANISMS, 'PLAIN'),
    username: readString(o.username, join(prefix, 'username')),
    password,
  }
}

/**
 * Reads brokers, clientId, tls and sasl from `o` (the other keys are the caller's to check). Returns
 * undefined when no brokers are given: the component then runs without Kafka.
 */
export function readConnection(
  o: Record<string, unknown>,
  prefix: string,
  defaultClientId: string,
): ConnectionOptions | undefined {
  const tls = readTls(o.tls, join(prefix, 'tls'))
  const sasl = readSasl(o.sasl, join(prefix, 'sasl'))
  const clientId = readString(o.clientId, join(prefix, 'clientId'), defaultClientId)
  if (o.brokers === undefined) {
    if (tls !== undefined || sasl !== undefined)
      throw invalid(join(prefix, 'brokers'), undefined, 'a broker list when tls or sasl is set')
    return undefined
  }
  return { brokers: readBrokers(o.brokers, join(prefix, 'brokers')), clientId, tls, sasl }
}
