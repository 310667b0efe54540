/**
 * The gateway tells the truth about its storage and its own failures: a deleted log directory and a
 * write refused with EPERM answer 503 (never 200), turn /readyz and, past health.logFailureMs, /healthz
 * unhealthy, and are logged once per episode; a bug answers 500 SPW_ERR_INTERNAL, logged with its stack.
 */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { readdir, rm } from 'node:fs/promises'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { test } from 'node:test'
import pino from 'pino'
import { resolveGatewayConfig } from '../../src/gateway/config.ts'
import { createGateway } from '../../src/gateway/server.ts'
import { tempDir } from '../helpers/fs.ts'
import { post } from '../helpers/gateway.ts'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))
const track = () => JSON.stringify({ event: 'E', userId: 'u' })

async function gatewayWithLog(t: { after(fn: () => unknown): void }, dir: string) {
  const lines: Record<string, unknown>[] = []
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>)
      done()
    },
  })
  const config = resolveGatewayConfig({ port: 0, log: { dir }, health: { logFailureMs: 300 } })
  const gateway = await createGateway(config, { logger: pino({ level: 'info' }, sink) })
  const url = await gateway.listen()
  t.after(() => gateway.close(1000))
  return { gateway, url, lines }
}

async function waitFor(check: () => Promise<boolean> | boolean, ms = 5000): Promise<boolean> {
  const until = performance.now() + ms
  while (performance.now() < until) {
    if (await check()) return true
    await sleep(50)
  }
  return false
}

test('the log directory deleted while serving: 503 and unready at once, unhealthy after logFailureMs, logged', async (t) => {
  const dir = join(await tempDir(t), 'log')
  const { url, lines } = await gatewayWithLog(t, dir)
  assert.equal((await post(`${url}/v1/track`, track())).status, 200)
  await rm(dir, { recursive: true, force: true })
  const refused = await post(`${url}/v1/track`, track())
  assert.equal(refused.status, 503, refused.text)
  assert.equal(refused.json.code, 'SPW_ERR_LOG_IO')
  assert.equal((await fetch(`${url}/readyz`)).status, 503)
  assert.ok(await waitFor(async () => (await fetch(`${url}/healthz`)).status === 503), '/healthz fails')
  const health = (await (await fetch(`${url}/healthz`)).json()) as { reason: string }
  assert.match(health.reason, /was removed/)
  assert.ok(
    await waitFor(() => lines.some((l) => l.msg === 'the local log cannot write; requests get 503')),
    'the fault is logged',
  )
})

test('EPERM on the log: 503 while it lasts (logged once), 200 again when it is gone', async (t) => {
  const dir = join(await tempDir(t), 'log')
  const { url, lines, gateway } = await gatewayWithLog(t, dir)
  assert.equal((await post(`${url}/v1/track`, track())).status, 200)
  const segment = join(
    dir,
    (await readdir(dir))
      .filter((n) => n.startsWith('seg-'))
      .sort()
      .at(-1) as string,
  )
  execFileSync('chattr', ['+i', segment])
  t.after(() => {
    try {
      execFileSync('chattr', ['-i', segment], { stdio: 'ignore' })
    } catch {
      // already writable
    }
  })
  for (let i = 0; i < 5; i++) {
    const refused = await post(`${url}/v1/track`, track())
    assert.equal(refused.status, 503, refused.text)
    assert.equal(refused.json.code, 'SPW_ERR_LOG_IO')
  }
  assert.ok(
    await waitFor(async () => (await fetch(`${url}/healthz`)).status === 503),
    'unhealthy past 300 ms',
  )
  execFileSync('chattr', ['-i', segment])
  assert.ok(
    await waitFor(async () => (await post(`${url}/v1/track`, track())).status === 200),
    'writes again',
  )
  assert.equal((await fetch(`${url}/healthz`)).status, 200)
  assert.ok(await waitFor(() => lines.some((l) => l.msg === 'the local log writes again')))
  const faults = lines.filter((l) => l.msg === 'the local log cannot write; requests get 503')
  assert.equal(faults.length, 1, 'logged once for the episode')
  assert.match(String(faults[0]?.err), /EPERM/)
  assert.equal(gateway.producer.stats().accepted, 2)
})

test('a bug answers 500 SPW_ERR_INTERNAL (not a retriable 503) and is logged with its stack', async (t) => {
  const { url, lines, gateway } = await gatewayWithLog(t, join(await tempDir(t), 'log'))
  gateway.producer.sendTo = () => {
    throw new TypeError('cannot read properties of undefined (a bug)')
  }
  const answer = await post(`${url}/v1/track`, track())
  assert.equal(answer.status, 500, answer.text)
  assert.equal(answer.json.code, 'SPW_ERR_INTERNAL')
  assert.equal(answer.json.retriable, false)
  assert.equal(answer.headers.get('retry-after'), null)
  const logged = lines.find((l) => l.code === 'SPW_ERR_INTERNAL')
  assert.ok(logged, 'logged')
  assert.match(String((logged.err as { stack?: string }).stack), /TypeError: cannot read properties/)
})
