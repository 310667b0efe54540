/** TLS, secrets kept out of the logs, and a second shutdown signal that loses nothing acknowledged. */
import assert from 'node:assert/strict'
import { execFileSync, spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { request } from 'node:https'
import { type AddressInfo, createServer, type Socket } from 'node:net'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import pino from 'pino'
import { freePort } from '../../scripts/ports.ts'
import { resolveGatewayConfig } from '../../src/gateway/config.ts'
import { createGateway } from '../../src/gateway/server.ts'
import { DurableLog } from '../../src/log/log.ts'
import { basic, post, startGateway } from '../helpers/gateway.ts'

test('TLS: the gateway serves HTTPS with the configured certificate', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'spillway-tls-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const key = join(dir, 'key.pem')
  const cert = join(dir, 'cert.pem')
  execFileSync(
    'openssl',
    [
      'req',
      '-x509',
      '-newkey',
      'rsa:2048',
      '-nodes',
      '-keyout',
      key,
      '-out',
      cert,
      '-days',
      '1',
      '-subj',
      '/CN=localhost',
    ],
    { stdio: 'ignore' },
  )
  const { url } = await startGateway(t, { tls: { key, cert } })
  assert.match(url, /^https:/)
  const status = await new Promise<number>((resolve, reject) => {
    const req = request(`${url}/healthz`, { rejectUnauthorized: false }, (res) => {
      res.resume()
      resolve(res.statusCode ?? 0)
    })
    req.on('error', reject)
    req.end()
  })
  assert.equal(status, 200)
})

test('write keys and secrets never appear in the logs', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'spillway-secrets-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  let logged = ''
  const sink = new Writable({
    write(chunk, _encoding, done) {
      logged += chunk.toString()
      done()
    },
  })
  const config = resolveGatewayConfig({
    port: 0,
    log: { dir },
    logLevel: 'debug',
    keys: [{ key: 'super-secret-write-key', secret: 'hunter2-hunter2', name: 'web' }],
  })
  const gateway = await createGateway(config, { logger: pino({ level: 'debug' }, sink) })
  const url = await gateway.listen()
  t.after(() => gateway.close(1000))
  await post(`${url}/v1/track`, JSON.stringify({ userId: 'u', event: 'E' }), {
    'content-type': 'application/json',
    authorization: basic('super-secret-write-key', 'hunter2-hunter2'),
  })
  await post(
    `${url}/v1/track`,
    JSON.stringify({ userId: 'u', event: 'E', writeKey: 'super-secret-write-key' }),
  )
  await post(`${url}/v1/track`, JSON.stringify({ userId: 'u' }), {
    'content-type': 'application/json',
    authorization: basic('wrong-secret-key-x'),
  })
  await post(`${url}/v3/clusters/spillway/topics/t/records`, '{"value":{"type":"JSON","data":1}}', {
    'content-type': 'application/json',
    authorization: basic('super-secret-write-key', 'hunter2-hunter2'),
  })
  await gateway.close(1000)
  assert.ok(logged.includes('spillway gateway listening'), 'the logger was used')
  assert.ok(logged.includes('"web"'), 'key names are logged')
  for (const secret of [
    'super-secret-write-key',
    'hunter2-hunter2',
    'wrong-secret-key-x',
    Buffer.from('super-secret-write-key:').toString('base64'),
  ]) {
    assert.ok(!logged.includes(secret), `${secret} is not in the logs`)
  }
  // the stored event does not carry the body's writeKey either
  const log = await DurableLog.open({ dir })
  t.after(() => log.close())
  const reader = log.reader()
  const records = await reader.read()
  await reader.close()
  assert.ok(records.length >= 2)
  for (const r of records) assert.ok(!r.payload.toString().includes('super-secret-write-key'))
})

test('a second SIGTERM exits at once and everything acknowledged is in the log', async (t) => {
  const dir = await mkdtemp(join(tmpdir(), 'spillway-signal-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const port = await freePort()
  // A "broker" that accepts connections and never answers: delivery's first request waits out its
  // deadline with the breaker still closed, so the first SIGTERM is still draining when the second comes.
  // (A refused connection would open the breaker at once, and the first SIGTERM would finish by itself.)
  const sockets = new Set<Socket>()
  const blackHole = createServer((socket) => {
    sockets.add(socket)
    socket.on('error', () => undefined)
  })
  await new Promise<void>((resolve) => blackHole.listen(0, '127.0.0.1', resolve))
  t.after(() => {
    for (const socket of sockets) socket.destroy()
    blackHole.close()
  })
  const brokerPort = (blackHole.address() as AddressInfo).port
  const config = join(dir, 'config.json')
  await writeFile(
    config,
    JSON.stringify({
      port,
      log: { dir: join(dir, 'log') },
      kafka: { brokers: [`127.0.0.1:${brokerPort}`] },
      shutdownTimeoutMs: 60_000,
      logLevel: 'warn',
    }),
  )
  const child = spawn(
    process.execPath,
    [fileURLToPath(new URL('../../src/cli/main.ts', import.meta.url)), 'serve', '--config', config],
    { stdio: 'ignore' },
  )
  t.after(() => child.kill('SIGKILL'))
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  const url = `http://127.0.0.1:${port}`
  for (let i = 0; i < 100; i++) {
    try {
      if ((await fetch(`${url}/healthz`)).ok) break
    } catch {
      await new Promise((r) => setTimeout(r, 100))
    }
  }
  let acknowledged = 0
  for (let i = 0; i < 20; i++) {
    const r = await post(
      `${url}/v1/batch`,
      JSON.stringify({
        batch: Array.from({ length: 10 }, () => ({ type: 'track', userId: 'u', event: 'E' })),
      }),
    )
    if (r.status === 200) acknowledged += 10
  }
  assert.equal(acknowledged, 200)
  child.kill('SIGTERM')
  await new Promise((r) => setTimeout(r, 500))
  const started = performance.now()
  child.kill('SIGTERM')
  assert.equal(await exited, 130, 'the second signal forces the exit')
  assert.ok(performance.now() - started < 5000)
  const log = await DurableLog.open({ dir: join(dir, 'log') })
  t.after(() => log.close())
  assert.equal(
    Number(log.stats().pendingRecords),
    acknowledged,
    'every acknowledged event is still in the log',
  )
})
