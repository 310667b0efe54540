/**
 * kill -9 of the gateway in the middle of a load test, then a restart: every event that got a 200 is in
 * Kafka. Also: SIGTERM shuts down gracefully, leaving undelivered events in the log for the next start.
 */
import assert from 'node:assert/strict'
import { type ChildProcess, spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { freePort } from '../../scripts/ports.ts'
import { createTopic, readTopic, testKafka } from '../helpers/kafka.ts'

const cli = fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url))

async function startServe(
  args: string[],
): Promise<{ child: ChildProcess; url: string; exited: Promise<number | null> }> {
  const port = await freePort()
  const child = spawn(process.execPath, [cli, 'serve', '--port', String(port), ...args], {
    stdio: ['ignore', 'ignore', 'pipe'],
    env: { ...process.env, SPILLWAY_KEYS: '' },
  })
  let stderr = ''
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    stderr += d
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const url = `http://127.0.0.1:${port}`
  const deadline = performance.now() + 20_000
  for (;;) {
    try {
      if ((await fetch(`${url}/healthz`)).ok) break
    } catch {
      // not yet listening
    }
    if (child.exitCode !== null || performance.now() > deadline)
      throw new Error(`spillway serve did not start: ${stderr}`)
    await new Promise((r) => setTimeout(r, 100))
  }
  return { child, url, exited }
}

test('kill -9 mid-load, restart: every event that got a 200 reaches Kafka', async (t) => {
  const kafka = testKafka()
  const topic = await createTopic(t, 'gwcrash', { partitions: 3 })
  const dir = await mkdtemp(join(tmpdir(), 'spillway-gwcrash-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  // deliver through the proxy, and cut it: events pile up in the log while the gateway is killed
  const configFile = join(dir, 'gateway.json')
  await writeFile(configFile, JSON.stringify({ segment: { defaultTopic: topic }, logLevel: 'warn' }))
  const args = [
    '--config',
    configFile,
    '--log-dir',
    join(dir, 'log'),
    '--brokers',
    kafka.proxiedBootstrap.join(','),
  ]
  t.after(() => kafka.toxiproxy.reset())

  const first = await startServe([...args])
  t.after(() => first.child.kill('SIGKILL'))
  const okIds: string[] = []
  let stop = false
  let n = 0
  const clients = Array.from({ length: 8 }, async () => {
    while (!stop) {
      const batch = Array.from({ length: 20 }, () => ({
        type: 'track',
        userId: `u${n % 13}`,
        event: 'Load',
        messageId: `m-${n++}`,
      }))
      try {
        const response = await fetch(`${first.url}/v1/batch`, {
          method: 'POST',
          headers: { 'content-type': 'application/json' },
          body: JSON.stringify({ batch }),
        })
        if (response.status === 200) okIds.push(...batch.map((b) => b.messageId))
      } catch {
        // the gateway died under us: these got no 200 and promise nothing
      }
    }
  })
  await new Promise((r) => setTimeout(r, 1000))
  await kafka.toxiproxy.cut(kafka.proxyName)
  await new Promise((r) => setTimeout(r, 1500))
  first.child.kill('SIGKILL')
  stop = true
  await Promise.all(clients)
  await first.exited
  assert.ok(okIds.length > 500, `the load test got answers before the kill (${okIds.length})`)

  await kafka.toxiproxy.heal(kafka.proxyName)
  const second = await startServe([...args])
  t.after(() => second.child.kill('SIGKILL'))
  // graceful stop: SIGTERM delivers what it can within shutdownTimeoutMs (10 s by default)
  await new Promise((r) => setTimeout(r, 3000))
  second.child.kill('SIGTERM')
  assert.equal(await second.exited, 0, 'SIGTERM exits cleanly')

  const messages = await readTopic(topic, { expected: okIds.length, idleMs: 2000 })
  const got = new Set(
    messages.map((m) => (JSON.parse(m.value.toString()) as { messageId: string }).messageId),
  )
  const missing = okIds.filter((id) => !got.has(id))
  assert.deepEqual(
    missing.slice(0, 10),
    [],
    `${missing.length} of ${okIds.length} acknowledged events missing`,
  )
})
