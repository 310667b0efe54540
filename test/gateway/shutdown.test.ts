/**
 * Shutdown: one hard deadline whatever the clients do, and a gateway that closes only what is its own.
 */
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { join } from 'node:path'
import { test } from 'node:test'
import { resolveGatewayConfig } from '../../src/gateway/config.ts'
import { createGateway } from '../../src/gateway/server.ts'
import { DurableLog } from '../../src/log/log.ts'
import { tempDir } from '../helpers/fs.ts'
import { post } from '../helpers/gateway.ts'
import { createTopic, readTopic, testKafka } from '../helpers/kafka.ts'

test('a stalled client cannot hold shutdown past its deadline; what was acknowledged stays in the log', async (t) => {
  const dir = join(await tempDir(t), 'log')
  const gateway = await createGateway(resolveGatewayConfig({ port: 0, logLevel: 'silent', log: { dir } }))
  const url = new URL(await gateway.listen())
  assert.equal(
    (await post(`${url.origin}/v1/track`, JSON.stringify({ event: 'E', userId: 'u' }))).status,
    200,
  )
  // a client that announces 1000 bytes, sends one and goes quiet (requestTimeoutMs is 15 s)
  const socket = connect(Number(url.port), url.hostname)
  t.after(() => socket.destroy())
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
  socket.write(
    'POST /v1/track HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 1000\r\n\r\n{',
  )
  await new Promise((r) => setTimeout(r, 100))
  const started = performance.now()
  await gateway.close(500)
  const took = performance.now() - started
  t.diagnostic(`close(500) took ${Math.round(took)} ms with a stalled client`)
  assert.ok(took < 3000, `shutdown kept its deadline (${Math.round(took)} ms)`)
  const log = await DurableLog.open({ dir })
  t.after(() => log.close())
  assert.equal(log.stats().pendingRecords, 1n, 'the acknowledged event is in the log')
})

test("closing one gateway leaves another's Kafka connection alone (it releases only its own lease)", async (t) => {
  const kafka = testKafka()
  const topic = await createTopic(t, 'two-gateways')
  const start = async () => {
    const config = resolveGatewayConfig({
      port: 0,
      logLevel: 'silent',
      log: { dir: join(await tempDir(t), 'log') },
      kafka: { brokers: kafka.bootstrap, clientId: 'spillway-shared' },
      segment: { defaultTopic: topic },
    })
    const gateway = await createGateway(config)
    const url = await gateway.listen()
    t.after(() => gateway.close(1000))
    return { gateway, url }
  }
  const a = await start()
  const b = await start()
  const send = (url: string, id: string) =>
    post(`${url}/v1/track`, JSON.stringify({ event: 'E', userId: 'u', messageId: id }))
  assert.equal((await send(a.url, 'from-a')).status, 200)
  assert.equal((await send(b.url, 'from-b-1')).status, 200)
  assert.ok(await a.gateway.producer.flush(20_000))
  await a.gateway.close(2000)
  assert.equal((await send(b.url, 'from-b-2')).status, 200)
  assert.ok(await b.gateway.producer.flush(20_000), 'the other gateway still delivers')
  assert.equal(b.gateway.producer.stats().failedBatches, 0, 'its Kafka connection was never cut')
  const ids = (await readTopic(topic, { expected: 3, idleMs: 1000 })).map((m) =>
    m.headerEntries.find(([k]) => k.toString() === 'spillway-id')?.[1].toString(),
  )
  assert.deepEqual(ids.sort(), ['from-a', 'from-b-1', 'from-b-2'])
})
