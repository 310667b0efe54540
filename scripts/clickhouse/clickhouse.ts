/**
 * A ClickHouse server of the test runner's own: Debian's clickhouse-server (18.16), a config and users file
 * written into a temp directory, free ports on 127.0.0.1, a password for the `default` user. Started lazily
 * by the tests that need it and stopped when they end.
 *
 *   node scripts/clickhouse/clickhouse.ts     # starts one and prints its settings until Ctrl-C
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { existsSync, mkdirSync, mkdtempSync, rmSync, writeFileSync } from 'node:fs'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort } from '../ports.ts'

export function ensureClickHouseInstalled(): void {
  execFileSync('bash', [fileURLToPath(new URL('./install', import.meta.url))], {
    stdio: ['ignore', 'inherit', 'inherit'],
  })
}

function serverCommand(): [string, string[]] {
  for (const dir of ['/usr/bin', '/usr/sbin', '/usr/local/bin']) {
    if (existsSync(join(dir, 'clickhouse-server'))) return [join(dir, 'clickhouse-server'), []]
    if (existsSync(join(dir, 'clickhouse'))) return [join(dir, 'clickhouse'), ['server']]
  }
  throw new Error('clickhouse-server is not installed; run scripts/clickhouse/install')
}

export interface ClickHouseSettings {
  readonly host: string
  readonly port: number
  readonly user: string
  readonly password: string
  readonly database: string
}

export class ClickHouseServer {
  readonly dir: string
  readonly settings: ClickHouseSettings
  #child: ChildProcess
  #stderr = ''

  private constructor(dir: string, settings: ClickHouseSettings) {
    this.dir = dir
    this.settings = settings
    this.#child = this.#spawn()
  }

  #spawn(): ChildProcess {
    const [command, args] = serverCommand()
    const child = spawn(command, [...args, `--config-file=${join(this.dir, 'config.xml')}`], {
      stdio: ['ignore', 'ignore', 'pipe'],
      cwd: this.dir,
    })
    this.#stderr = ''
    child.stderr?.setEncoding('utf8').on('data', (d: string) => {
      this.#stderr += d
    })
    return child
  }

  /** Waits until the server answers /ping (or fails with its stderr after 60 s). */
  async #ready(): Promise<void> {
    const deadline = performance.now() + 60_000
    for (;;) {
      if (this.#ended)
        throw new Error(`clickhouse-server exited (${this.#child.exitCode}): ${this.#stderr.slice(-2000)}`)
      try {
        const r = await fetch(`http://127.0.0.1:${this.settings.port}/ping`)
        if (r.ok) return
      } catch {
        // not listening yet
      }
      if (performance.now() > deadline)
        throw new Error(`clickhouse-server did not answer within 60 s: ${this.#stderr.slice(-2000)}`)
      await new Promise((r) => setTimeout(r, 200))
    }
  }

  /** The server process has ended (on its own or by a signal). */
  get #ended(): boolean {
    return this.#child.exitCode !== null || this.#child.signalCode !== null
  }

  /** Kills the server (SIGKILL), keeping its data: a database that goes away. */
  async kill(): Promise<void> {
    if (this.#ended) return
    const exited = new Promise((resolve) => this.#child.once('exit', resolve))
    this.#child.kill('SIGKILL')
    await exited
  }

  /** Starts a killed server again on the same port and data. */
  async restart(): Promise<void> {
    if (!this.#ended) return
    this.#child = this.#spawn()
    await this.#ready()
  }

  static async start(): Promise<ClickHouseServer> {
    const dir = mkdtempSync(join(tmpdir(), 'spillway-clickhouse-'))
    for (const sub of ['data', 'tmp', 'user_files', 'format_schemas']) mkdirSync(join(dir, sub))
    const [http, tcp, interserver] = [await freePort(), await freePort(), await freePort()]
    const password = randomBytes(12).toString('hex')
    writeFileSync(
      join(dir, 'config.xml'),
      `<?xml version="1.0"?>
<yandex>
  <logger><level>warning</level><log>${dir}/server.log</log><errorlog>${dir}/server.err.log</errorlog><console>0</console></logger>
  <http_port>${http}</http_port>
  <tcp_port>${tcp}</tcp_port>
  <interserver_http_port>${interserver}</interserver_http_port>
  <listen_host>127.0.0.1</listen_host>
  <path>${dir}/data/</path>
  <tmp_path>${dir}/tmp/</tmp_path>
  <user_files_path>${dir}/user_files/</user_files_path>
  <format_schema_path>${dir}/format_schemas/</format_schema_path>
  <users_config>${dir}/users.xml</users_config>
  <default_profile>default</default_profile>
  <default_database>default</default_database>
  <mark_cache_size>268435456</mark_cache_size>
  <max_concurrent_queries>50</max_concurrent_queries>
</yandex>
`,
    )
    writeFileSync(
      join(dir, 'users.xml'),
      `<?xml version="1.0"?>
<yandex>
  <profiles><default><max_memory_usage>2000000000</max_memory_usage></default></profiles>
  <users>
    <default>
      <password>${password}</password>
      <networks><ip>::1</ip><ip>127.0.0.1</ip></networks>
      <profile>default</profile>
      <quota>default</quota>
    </default>
  </users>
  <quotas><default><interval><duration>3600</duration><queries>0</queries><errors>0</errors><result_rows>0</result_rows><read_rows>0</read_rows><execution_time>0</execution_time></interval></default></quotas>
</yandex>
`,
    )
    const settings = { host: '127.0.0.1', port: http, user: 'default', password, database: 'default' }
    const server = new ClickHouseServer(dir, settings)
    try {
      await server.#ready()
    } catch (error) {
      await server.stop()
      throw error
    }
    return server
  }

  /** Runs a query over HTTP and returns the body (for tests). */
  async query(sql: string): Promise<string> {
    const s = this.settings
    const url = new URL(`http://${s.host}:${s.port}/`)
    url.searchParams.set('query', sql)
    const r = await fetch(url, {
      method: 'POST',
      headers: { authorization: `Basic ${Buffer.from(`${s.user}:${s.password}`).toString('base64')}` },
    })
    const text = await r.text()
    if (!r.ok) throw new Error(`ClickHouse: ${text}`)
    return text
  }

  async stop(): Promise<void> {
    if (!this.#ended) {
      const exited = new Promise((resolve) => this.#child.once('exit', resolve))
      this.#child.kill('SIGTERM')
      const timer = setTimeout(() => this.#child.kill('SIGKILL'), 10_000)
      await exited
      clearTimeout(timer)
    }
    rmSync(this.dir, { recursive: true, force: true })
  }
}

if (process.argv[1] && fileURLToPath(import.meta.url) === process.argv[1]) {
  ensureClickHouseInstalled()
  const server = await ClickHouseServer.start()
  const s = server.settings
  process.stdout.write(`ClickHouse HTTP on ${s.host}:${s.port}, user ${s.user}, password ${s.password}\n`)
  const stop = async (): Promise<void> => {
    await server.stop()
    process.exit(0)
  }
  process.once('SIGINT', () => void stop())
  process.once('SIGTERM', () => void stop())
  setInterval(() => {}, 1 << 30)
}
