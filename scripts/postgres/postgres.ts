/**
 * A PostgreSQL 15 server of the test runner's own: Debian's binaries, a data directory made by initdb in
 * a temp directory, a free port on 127.0.0.1, password (SCRAM) authentication over TCP. Stopped and
 * started again on the same port for the "database goes away" tests. As root the server runs as the
 * `postgres` user (PostgreSQL refuses to run as root).
 *
 *   node scripts/postgres/postgres.ts     # starts one and prints its settings until Ctrl-C
 */
import { execFileSync, spawnSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { chmodSync, chownSync, existsSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort, waitForPort } from '../ports.ts'

export const PG_BIN = '/usr/lib/postgresql/15/bin'

export function ensurePostgresInstalled(): void {
  execFileSync('bash', [fileURLToPath(new URL('./install', import.meta.url))], {
    stdio: ['ignore', 'inherit', 'inherit'],
  })
}

export interface PostgresSettings {
  readonly host: string
  readonly port: number
  readonly user: string
  readonly password: string
  readonly database: string
}

function asRoot(): boolean {
  return typeof process.getuid === 'function' && process.getuid() === 0
}

/** Runs a PostgreSQL binary, as `postgres` when this process is root. */
function pg(binary: string, args: readonly string[], owner: { uid: number; gid: number } | null): string {
  const command = join(PG_BIN, binary)
  const result = owner
    ? spawnSync('runuser', ['-u', 'postgres', '--', command, ...args], { encoding: 'utf8' })
    : spawnSync(command, args, { encoding: 'utf8' })
  if (result.status !== 0)
    throw new Error(`${binary} failed (${result.status}): ${result.stderr || result.stdout || result.error}`)
  return result.stdout
}

function postgresOwner(): { uid: number; gid: number } | null {
  if (!asRoot()) return null
  const uid = Number(execFileSync('id', ['-u', 'postgres'], { encoding: 'utf8' }).trim())
  const gid = Number(execFileSync('id', ['-g', 'postgres'], { encoding: 'utf8' }).trim())
  return { uid, gid }
}

export class PostgresServer {
  readonly dir: string
  readonly settings: PostgresSettings
  readonly logFile: string
  readonly #owner: { uid: number; gid: number } | null
  #running = false

  private constructor(dir: string, settings: PostgresSettings, owner: { uid: number; gid: number } | null) {
    this.dir = dir
    this.settings = settings
    this.logFile = join(dir, 'postgres.log')
    this.#owner = owner
  }

  static async start(): Promise<PostgresServer> {
    if (!existsSync(join(PG_BIN, 'initdb')))
      throw new Error(`PostgreSQL 15 is not installed (${PG_BIN}); run scripts/postgres/install`)
    const owner = postgresOwner()
    const dir = mkdtempSync(join(tmpdir(), 'spillway-postgres-'))
    if (owner) {
      chownSync(dir, owner.uid, owner.gid)
      chmodSync(dir, 0o700)
    }
    const password = randomBytes(12).toString('hex')
    const pwfile = join(dir, 'pwfile')
    writeFileSync(pwfile, `${password}\n`)
    if (owner) chownSync(pwfile, owner.uid, owner.gid)
    pg(
      'initdb',
      [
        '-D',
        join(dir, 'data'),
        '-U',
        'spillway',
        `--pwfile=${pwfile}`,
        '--auth-host=scram-sha-256',
        '--auth-local=trust',
        '-E',
        'UTF8',
        '--locale=C',
        '--no-sync',
      ],
      owner,
    )
    rmSync(pwfile)
    const port = await freePort()
    const server = new PostgresServer(
      dir,
      { host: '127.0.0.1', port, user: 'spillway', password, database: 'postgres' },
      owner,
    )
    await server.resume()
    return server
  }

  get running(): boolean {
    return this.#running
  }

  /** Starts the server (again) on its port. */
  async resume(): Promise<void> {
    const options = [
      `-p ${this.settings.port}`,
      `-k ${this.dir}`,
      "-c listen_addresses='127.0.0.1'",
      '-c fsync=off',
      '-c max_connections=200',
      '-c shared_buffers=64MB',
    ].join(' ')
    pg(
      'pg_ctl',
      ['-D', join(this.dir, 'data'), '-o', options, '-l', this.logFile, '-w', '-t', '60', 'start'],
      this.#owner,
    )
    await waitForPort(this.settings.port, 30_000)
    this.#running = true
  }

  /** Stops the server (fast shutdown: clients are disconnected), keeping its data. */
  async pause(): Promise<void> {
    if (!this.#running) return
    pg('pg_ctl', ['-D', join(this.dir, 'data'), '-m', 'fast', '-w', '-t', '60', 'stop'], this.#owner)
    this.#running = false
  }

  async stop(): Promise<void> {
    try {
      await this.pause()
    } finally {
      rmSync(this.dir, { recursive: true, force: true })
    }
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  ensurePostgresInstalled()
  const server = await PostgresServer.start()
  const s = server.settings
  process.stdout.write(
    `PostgreSQL on ${s.host}:${s.port}, user ${s.user}, password ${s.password}, database ${s.database}\n`,
  )
  const stop = async (): Promise<void> => {
    await server.stop()
    process.exit(0)
  }
  process.once('SIGINT', () => void stop())
  process.once('SIGTERM', () => void stop())
  setInterval(() => {}, 1 << 30)
}
