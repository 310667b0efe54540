/**
 * Starts the Toxiproxy server that scripts/toxiproxy/install builds, and talks to its HTTP API.
 * Tests put a proxy in front of each broker's PROXIED listener and inject faults through it.
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { cacheRoot } from '../kafka/cluster.ts'
import { freePort, waitForPort } from '../ports.ts'

const here = dirname(fileURLToPath(import.meta.url))

export function toxiproxyBinary(): string {
  const install = readFileSync(join(here, 'install'), 'utf8')
  const version = /version="([^"]+)"/.exec(install)?.[1]
  if (!version) throw new Error('scripts/toxiproxy/install has no version')
  return join(cacheRoot(), 'bin', `toxiproxy-server-${version}`)
}

export function ensureToxiproxyInstalled(): void {
  execFileSync('bash', [join(here, 'install')], { stdio: ['ignore', 'inherit', 'inherit'] })
}

export type ToxicType =
  | 'latency'
  | 'timeout'
  | 'reset_peer'
  | 'bandwidth'
  | 'slow_close'
  | 'limit_data'
  | 'slicer'

export interface Toxic {
  readonly name: string
  readonly type: ToxicType
  readonly stream?: 'upstream' | 'downstream'
  readonly toxicity?: number
  readonly attributes: Readonly<Record<string, number>>
}

/** Client for a running Toxiproxy server's HTTP API. */
export class ToxiproxyClient {
  readonly url: string

  constructor(url: string) {
    this.url = url
  }

  async #call(method: string, path: string, body?: unknown): Promise<unknown> {
    const init: RequestInit = { method, headers: { 'content-type': 'application/json' } }
    if (body !== undefined) init.body = JSON.stringify(body)
    const response = await fetch(`${this.url}${path}`, init)
    const text = await response.text()
    if (!response.ok) throw new Error(`toxiproxy ${method} ${path} → ${response.status}: ${text}`)
    return text.length > 0 ? JSON.parse(text) : undefined
  }

  async createProxy(name: string, listenPort: number, upstreamPort: number): Promise<void> {
    await this.#call('POST', '/proxies', {
      name,
      listen: `127.0.0.1:${listenPort}`,
      upstream: `127.0.0.1:${upstreamPort}`,
      enabled: true,
    })
  }

  async deleteProxy(name: string): Promise<void> {
    await this.#call('DELETE', `/proxies/${name}`)
  }

  /** A full cut: the proxy stops listening and drops every open connection. */
  async cut(name: string): Promise<void> {
    await this.#call('POST', `/proxies/${name}`, { enabled: false })
  }

  async heal(name: string): Promise<void> {
    await this.#call('POST', `/proxies/${name}`, { enabled: true })
  }

  async addToxic(proxy: string, toxic: Toxic): Promise<void> {
    await this.#call('POST', `/proxies/${proxy}/toxics`, {
      name: toxic.name,
      type: toxic.type,
      stream: toxic.stream ?? 'downstream',
      toxicity: toxic.toxicity ?? 1,
      attributes: toxic.attributes,
    })
  }

  async removeToxic(proxy: string, name: string): Promise<void> {
    await this.#call('DELETE', `/proxies/${proxy}/toxics/${name}`)
  }

  /** Enables every proxy and removes every toxic. */
  async reset(): Promise<void> {
    await this.#call('POST', '/reset')
  }

  async proxies(): Promise<Record<string, { enabled: boolean; toxics: unknown[] }>> {
    return (await this.#call('GET', '/proxies')) as Record<string, { enabled: boolean; toxics: unknown[] }>
  }
}

export interface ToxiproxyServer {
  readonly client: ToxiproxyClient
  readonly port: number
  stop(): Promise<void>
}

export async function startToxiproxy(): Promise<ToxiproxyServer> {
  const binary = toxiproxyBinary()
  if (!existsSync(binary))
    throw new Error(`Toxiproxy is not installed at ${binary}; run: bash scripts/toxiproxy/install`)
  const port = await freePort()
  const child: ChildProcess = spawn(binary, ['-host', '127.0.0.1', '-port', String(port)], {
    stdio: ['ignore', 'ignore', 'pipe'],
  })
  let stderr = ''
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    stderr = (stderr + d).slice(-4000)
  })
  const kill = (): void => {
    child.kill('SIGKILL')
  }
  process.once('exit', kill)
  try {
    await waitForPort(port, 10_000)
  } catch (error) {
    kill()
    throw new Error(`Toxiproxy did not start on port ${port}: ${(error as Error).message}\n${stderr}`)
  }
  return {
    client: new ToxiproxyClient(`http://127.0.0.1:${port}`),
    port,
    async stop() {
      process.removeListener('exit', kill)
      if (child.exitCode !== null) return
      const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
      child.kill('SIGTERM')
      await exited
    },
  }
}
