/** Starts an in-process gateway on an ephemeral port for one test, and stops it afterwards. */
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import type { TestContext } from 'node:test'
import { resolveGatewayConfig } from '../../src/gateway/config.ts'
import { createGateway, type Gateway } from '../../src/gateway/server.ts'

export async function startGateway(
  t: TestContext,
  overrides: Record<string, unknown> = {},
): Promise<{ url: string; gateway: Gateway; dir: string }> {
  const dir = await mkdtemp(join(tmpdir(), 'spillway-gateway-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const log = { dir, ...((overrides.log as Record<string, unknown> | undefined) ?? {}) }
  const config = resolveGatewayConfig({ port: 0, logLevel: 'silent', ...overrides, log })
  const gateway = await createGateway(config)
  const url = await gateway.listen()
  t.after(() => gateway.close(2000))
  return { url, gateway, dir }
}

export async function post(
  url: string,
  body: string | Buffer,
  headers: Record<string, string> = { 'content-type': 'application/json' },
): Promise<{ status: number; json: Record<string, unknown>; text: string; headers: Headers }> {
  const response = await fetch(url, { method: 'POST', body, headers })
  const text = await response.text()
  let json: Record<string, unknown> = {}
  try {
    json = JSON.parse(text) as Record<string, unknown>
  } catch {
    // streaming answers are several JSON lines
  }
  return { status: response.status, json, text, headers: response.headers }
}

export function basic(user: string, password = ''): string {
  return `Basic ${Buffer.from(`${user}:${password}`).toString('base64')}`
}
