/**
 * A secured cluster: the test broker's SASL_SSL listener (SCRAM-SHA-512, its certificate signed by a CA
 * the runner made). The producer, the gateway (through its config file's keys) and the admin facet all
 * deliver or answer through it; wrong credentials give a coded error at once, not a hang.
 */
import assert from 'node:assert/strict'
import { readFileSync } from 'node:fs'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { Writable } from 'node:stream'
import { test } from 'node:test'
import pino from 'pino'
import { resolveGatewayConfig } from '../../src/gateway/config.ts'
import { createGateway } from '../../src/gateway/server.ts'
import { createProducer } from '../../src/producer/producer.ts'
import { acquireCluster, closeAllTransports } from '../../src/transport/registry.ts'
import { post } from '../helpers/gateway.ts'
import { createTopic, readTopic, secureKafka } from '../helpers/kafka.ts'

async function tempDir(t: { after(fn: () => unknown): void }): Promise<string> {
  const dir = await mkdtemp(join(tmpdir(), 'spillway-secure-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  return dir
}

test('the producer delivers through SASL_SSL, and the admin facet describes its one producer id there', async (t) => {
  const secure = secureKafka()
  const topic = await createTopic(t, 'secure-producer', { partitions: 2 })
  t.after(() => closeAllTransports())
  const producer = await createProducer({
    brokers: secure.bootstrap,
    clientId: 'spillway-secure-test',
    tls: { caFile: secure.caFile },
    sasl: { mechanism: 'SCRAM-SHA-512', username: secure.username, password: secure.password },
    log: { dir: await tempDir(t) },
  })
  t.after(() => producer.close(2000))
  await producer.checkConnection(10_000)
  const results = await producer.send(
    topic,
    Array.from({ length: 40 }, (_, i) => ({ key: `k${i}`, value: { i } })),
  )
  assert.ok(results.every((r) => r.status === 'accepted'))
  assert.ok(await producer.flush(20_000), 'everything delivered through the secured listener')
  const messages = await readTopic(topic, { expected: 40, idleMs: 1000 })
  assert.equal(
    new Set(
      messages.map((m) => m.headerEntries.find(([k]) => k.toString() === 'spillway-id')?.[1].toString()),
    ).size,
    40,
  )

  const lease = acquireCluster(
    {
      brokers: secure.bootstrap,
      clientId: 'spillway-secure-inspector',
      tls: { ca: readFileSync(secure.caFile, 'utf8') },
      sasl: { mechanism: 'SCRAM-SHA-512', username: secure.username, password: secure.password },
    },
    { purpose: 'admin', lingerMs: 0 },
  )
  t.after(() => lease.release())
  const described = await lease.cluster.admin.describeProducers([topic], 10_000)
  assert.equal(described.length, 2, 'both partitions described by their leader, over SASL_SSL')
  const ids = new Set(described.flatMap((d) => d.producerIds.map(String)))
  assert.equal(ids.size, 1, 'one producer id wrote the topic')
})

test('the gateway reaches a secured cluster through kafka.tls and kafka.sasl in its config', async (t) => {
  const secure = secureKafka()
  const topic = await createTopic(t, 'secure-gateway')
  const dir = await tempDir(t)
  const passwordFile = join(dir, 'password')
  await writeFile(passwordFile, `${secure.password}\n`)
  const config = resolveGatewayConfig({
    port: 0,
    logLevel: 'silent',
    log: { dir: join(dir, 'log') },
    segment: { defaultTopic: topic },
    kafka: {
      brokers: secure.bootstrap,
      clientId: 'spillway-secure-gateway',
      tls: { caFile: secure.caFile },
      sasl: { mechanism: 'SCRAM-SHA-512', username: secure.username, passwordFile },
    },
  })
  const gateway = await createGateway(config)
  const url = await gateway.listen()
  t.after(() => gateway.close(2000))
  const batch = Array.from({ length: 25 }, (_, i) => ({
    type: 'track',
    event: 'Secured',
    userId: `u${i}`,
    messageId: `secure-${i}`,
  }))
  const answer = await post(`${url}/v1/batch`, JSON.stringify({ batch }))
  assert.equal(answer.status, 200, answer.text)
  const messages = await readTopic(topic, { expected: 25, idleMs: 1000 })
  assert.deepEqual(
    messages.map((m) => m.headerEntries.find(([k]) => k.toString() === 'spillway-id')?.[1].toString()).sort(),
    batch.map((e) => e.messageId).sort(),
  )
})

test('wrong credentials: a coded SPW_ERR_KAFKA_AUTH at once, in the API and in the gateway log', async (t) => {
  const secure = secureKafka()
  t.after(() => closeAllTransports())
  const producer = await createProducer({
    brokers: secure.bootstrap,
    clientId: 'spillway-secure-wrong',
    tls: { caFile: secure.caFile },
    sasl: { mechanism: 'SCRAM-SHA-512', username: secure.username, password: 'not-the-password' },
    log: { dir: await tempDir(t) },
  })
  t.after(() => producer.close(1000))
  // a hang would end as SPW_ERR_TIMEOUT after the 20 s given; a refused login answers with its own code
  await assert.rejects(producer.checkConnection(20_000), (error: { code?: string; message?: string }) => {
    assert.equal(error.code, 'SPW_ERR_KAFKA_AUTH', error.message)
    assert.match(error.message ?? '', /SASL credentials/)
    assert.doesNotMatch(error.message ?? '', /not-the-password/, 'the password is never printed')
    return true
  })

  const lines: Record<string, unknown>[] = []
  const sink = new Writable({
    write(chunk, _encoding, done) {
      lines.push(JSON.parse(chunk.toString()) as Record<string, unknown>)
      done()
    },
  })
  const dir = await tempDir(t)
  const config = resolveGatewayConfig({
    port: 0,
    log: { dir },
    kafka: {
      brokers: secure.bootstrap,
      clientId: 'spillway-secure-wrong-gateway',
      tls: { caFile: secure.caFile },
      sasl: { mechanism: 'SCRAM-SHA-512', username: secure.username, password: 'still-wrong' },
    },
  })
  const gateway = await createGateway(config, { logger: pino({ level: 'info' }, sink) })
  await gateway.listen()
  t.after(() => gateway.close(1000))
  for (let i = 0; i < 200 && !lines.some((l) => l.code === 'SPW_ERR_KAFKA_AUTH'); i++) {
    await new Promise((r) => setTimeout(r, 100))
  }
  const logged = lines.find((l) => l.code === 'SPW_ERR_KAFKA_AUTH')
  assert.ok(logged, `the gateway logs the refused credentials: ${JSON.stringify(lines.slice(-3))}`)
  assert.equal(logged.level, 50, 'at error level')
  assert.doesNotMatch(JSON.stringify(lines), /still-wrong/, 'the password is never logged')
})
