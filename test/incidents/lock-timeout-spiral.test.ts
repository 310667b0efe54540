/**
 * Incident 1, the lock-timeout spiral: the brokers reject every produce request. A 3-node cluster holds a
 * topic with replication 3 and min.insync.replicas=3; one follower is killed, so acks=all fails with
 * NOT_ENOUGH_REPLICAS. (Kafka 4 caps min.insync.replicas at the replication factor, so a single broker
 * cannot reproduce this.) Under a steady send rate
 * the request path must not wait on the Kafka client: durable sends stay fast, kafka-mode sends fail fast,
 * and once the fault clears every accepted event is delivered exactly once. The 5 ms p99 is judged in a
 * window where the hypervisor left the machine its CPU (test/helpers/machine.ts measures the steal).
 */
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { mkdtemp, rm } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { monitorEventLoopDelay } from 'node:perf_hooks'
import { test } from 'node:test'
import { Admin, Producer } from '@platformatic/kafka'
import { KafkaCluster } from '../../scripts/kafka/cluster.ts'
import { createProducer, type SendResult } from '../../src/producer/producer.ts'
import { copiesById, percentile, randomName, readTopic, setTopicConfig } from '../helpers/kafka.ts'
import { describeMachine, formatMachine, type MachineReport, sampleMachine } from '../helpers/machine.ts'

const seconds = process.env.SPILLWAY_SOAK === '1' ? 60 : 8
/** Above this share of CPU time taken by the hypervisor, latency says more about the host than the code. */
const MAX_STEAL_PERCENT = 15
/** Windows the /dev/shm producer may measure while waiting for one with little steal. */
const MEMORY_WINDOWS = process.env.SPILLWAY_SOAK === '1' ? 1 : 3

test('a broker that rejects every produce: durable sends never wait on Kafka, kafka mode fails fast, exactly-once after recovery', async (t) => {
  const cluster = await KafkaCluster.start({
    nodes: 3,
    heapMb: 384,
    // three brokers and this process share two cores: the brokers yield to the process under test
    nice: 19,
    config: { 'replica.lag.time.max.ms': '2000' },
  })
  t.after(() => cluster.stop())
  const kafka = { bootstrap: cluster.bootstrap }
  const topic = randomName('spiral')
  const admin = new Admin({ clientId: 'spillway-test', bootstrapBrokers: kafka.bootstrap })
  t.after(() => admin.close())
  await admin.createTopics({
    topics: [topic],
    partitions: 1,
    replicas: 3,
    configs: [{ name: 'min.insync.replicas', value: '3' }],
  })
  // warm up: coordinators loaded, every partition writable
  const warm = new Producer({
    clientId: 'warm',
    bootstrapBrokers: kafka.bootstrap,
    idempotent: true,
    retries: 40,
    retryDelay: 250,
  })
  await warm.send({ messages: [{ topic, value: Buffer.from('warm') }] })
  await warm.close()
  const metadata = await admin.metadata({ topics: [topic] })
  const leaders = new Set(metadata.topics.get(topic)?.partitions.map((p) => p.leader))
  const victim = [1, 2, 3].find((id) => !leaders.has(id)) ?? 3
  await cluster.stopNode(victim, 'SIGKILL')
  // Wait until the ISR has shrunk: from then on every produce is refused before it is appended
  // (NOT_ENOUGH_REPLICAS), so the fault itself writes nothing that a retry could duplicate.
  const isrDeadline = performance.now() + 30_000
  for (;;) {
    const md = await admin.metadata({ topics: [topic], forceUpdate: true })
    if ((md.topics.get(topic)?.partitions[0]?.isr.length ?? 3) < 3) break
    assert.ok(performance.now() < isrDeadline, 'the ISR shrinks after a follower dies')
    await new Promise((r) => setTimeout(r, 200))
  }
  // Two durable producers: one logs to memory-backed /dev/shm, so its latency is the request path
  // alone (what this incident is about); one logs to the real disk shared with the brokers, whose fsync
  // cost is reported and bounded far below any wait on the Kafka client (its request timeout is 1 s).
  const shmDir = await mkdtemp(join(existsSync('/dev/shm') ? '/dev/shm' : tmpdir(), 'spillway-spiral-'))
  const diskDir = await mkdtemp(join(tmpdir(), 'spillway-spiral-'))
  t.after(() => rm(shmDir, { recursive: true, force: true }))
  t.after(() => rm(diskDir, { recursive: true, force: true }))
  const options = {
    brokers: kafka.bootstrap,
    deliveryTimeoutMs: 2000,
    breaker: { cooldownMs: 200, maxCooldownMs: 1000 },
    transportLingerMs: 0,
  }
  const durable = await createProducer({ ...options, log: { dir: shmDir } })
  t.after(() => durable.close(1000))
  const onDisk = await createProducer({ ...options, log: { dir: diskDir } })
  t.after(() => onDisk.close(1000))
  const direct = await createProducer({
    brokers: kafka.bootstrap,
    clientId: 'spillway-kafka-mode',
    ack: 'kafka',
    deliveryTimeoutMs: 2000,
    breaker: { cooldownMs: 5000 },
    transportLingerMs: 0,
  })
  t.after(() => direct.close(500))

  // kafka mode: the first sends meet the fault and open the breaker; from then on every send fails fast
  const first = await direct.send(topic, [{ value: 'probe' }])
  assert.equal(first[0]?.status, 'refused')
  const until = performance.now() + 20_000
  while (direct.breaker.isClosed() && performance.now() < until) await new Promise((r) => setTimeout(r, 50))
  assert.notEqual(direct.breaker.state, 'closed', 'the fault opened the breaker')
  const fastFailures: number[] = []
  for (let i = 0; i < 1000; i++) {
    const started = performance.now()
    const [r] = await direct.send(topic, [{ value: `k${i}` }])
    fastFailures.push(performance.now() - started)
    assert.ok(r?.status === 'refused' && r.error.code === 'SPW_ERR_UNAVAILABLE' && r.error.retriable)
  }
  // measured around an awaited call, so other work on the event loop can land inside a sample: p95 of
  // 1,000 refusals under 1 ms, and none anywhere near a Kafka round trip
  const p95 = percentile(fastFailures, 95)
  t.diagnostic(
    `kafka-mode refusals: p50 ${percentile(fastFailures, 50).toFixed(3)} ms, p95 ${p95.toFixed(3)} ms, p99 ${percentile(fastFailures, 99).toFixed(3)} ms`,
  )
  assert.ok(p95 < 1, `kafka mode refuses within 1 ms (p95 ${p95.toFixed(3)} ms)`)
  assert.ok(Math.max(...fastFailures) < 100, 'no refusal waits on anything')

  // durable mode under a steady rate of 100 sends/s per producer while every produce is rejected
  const accepted: SendResult[] = []
  const runDurable = async (producer: typeof durable): Promise<number[]> => {
    const latencies: number[] = []
    const end = performance.now() + seconds * 1000
    let n = 0
    while (performance.now() < end) {
      const started = performance.now()
      const results = await producer.send(topic, [{ key: `user-${n % 10}`, value: { n } }])
      latencies.push(performance.now() - started)
      accepted.push(...results)
      n++
      await new Promise((r) => setTimeout(r, 10))
    }
    return latencies
  }
  const describe = (l: number[]): string =>
    `${l.length} sends, p50 ${percentile(l, 50).toFixed(2)} ms, p99 ${percentile(l, 99).toFixed(2)} ms, max ${Math.max(...l).toFixed(2)} ms`
  const cpu = process.cpuUsage()
  const wall = performance.now()
  const loop = monitorEventLoopDelay({ resolution: 1 })
  loop.enable()
  // One after the other, so neither measurement carries the other's work. The /dev/shm producer measures
  // up to MEMORY_WINDOWS windows and stops at the first in which the hypervisor left the machine its CPU
  // (chosen by the steal alone, never by the latencies); every window's sends count below.
  const memoryWindows: { latencies: number[]; machine: MachineReport | undefined }[] = []
  for (let w = 0; w < MEMORY_WINDOWS; w++) {
    const before = sampleMachine()
    const latencies = await runDurable(durable)
    const machine = describeMachine(before, sampleMachine())
    memoryWindows.push({ latencies, machine })
    if ((machine?.stealPercent ?? 0) <= MAX_STEAL_PERCENT) break
  }
  const machineBetween = sampleMachine()
  const diskLatencies = await runDurable(onDisk)
  const machineAfter = sampleMachine()
  loop.disable()
  const used = process.cpuUsage(cpu)
  t.diagnostic(
    `this process used ${(((used.user + used.system) / 1000 / (performance.now() - wall)) * 100).toFixed(0)}% of a core`,
  )
  t.diagnostic(
    `event loop delay p99 ${(loop.percentile(99) / 1e6).toFixed(2)} ms, max ${(loop.max / 1e6).toFixed(2)} ms`,
  )
  for (const [w, window] of memoryWindows.entries()) {
    t.diagnostic(`durable, log on /dev/shm, window ${w + 1}: ${describe(window.latencies)}`)
    t.diagnostic(`  ${formatMachine(window.machine)}`)
  }
  t.diagnostic(`durable, log on the brokers' disk: ${describe(diskLatencies)}`)
  t.diagnostic(`  ${formatMachine(describeMachine(machineBetween, machineAfter))}`)
  assert.ok(
    accepted.every((r) => r.status === 'accepted'),
    'every durable send is accepted into the local log',
  )
  // The structural promise: no send waits on the Kafka client (whose request timeout is 1 s, and whose lock
  // waits were ~65 s in the incident).
  for (const { latencies } of memoryWindows) {
    const p99 = percentile(latencies, 99)
    assert.ok(p99 < 50, `durable p99 send latency ${p99.toFixed(2)} ms stays far from any Kafka client wait`)
    assert.ok(Math.max(...latencies) < 250, 'no durable send comes near the Kafka client timeout')
  }
  // The 5 ms target, whenever the machine lets this process run: on a virtual machine whose hypervisor
  // takes a large share of the CPU time (steal), a send waits for a CPU however little it does, and the
  // figure measures the host, not spillway. BENCHMARKS.md records both, run by run.
  const last = memoryWindows.at(-1) as (typeof memoryWindows)[number]
  const p99 = percentile(last.latencies, 99)
  const steal = last.machine?.stealPercent ?? 0
  if (steal <= MAX_STEAL_PERCENT) {
    assert.ok(
      p99 < 5,
      `durable p99 send latency ${p99.toFixed(2)} ms is under 5 ms (steal ${steal.toFixed(1)}%)`,
    )
  } else {
    t.diagnostic(
      `the 5 ms p99 is not judged in this run: in each of ${memoryWindows.length} windows the hypervisor took more than ${MAX_STEAL_PERCENT}% of the CPU time`,
    )
  }
  assert.ok(Math.max(...diskLatencies) < 250, 'on a real disk no send comes near the Kafka client timeout')
  for (const producer of [durable, onDisk]) {
    const stats = producer.stats()
    assert.ok(stats.failedBatches > 0, 'the dispatcher did meet the fault')
    assert.equal(stats.delivered, 0, 'nothing was delivered while the fault lasted')
    assert.notEqual(stats.breaker, 'closed')
  }

  // clear the fault: everything accepted arrives exactly once
  await setTopicConfig(topic, 'min.insync.replicas', '2', kafka.bootstrap)
  assert.ok(await durable.flush(30_000), 'the backlog drains once the broker accepts again')
  assert.ok(await onDisk.flush(30_000))
  const everything = await readTopic(topic, {
    expected: accepted.length + 1,
    idleMs: 1500,
    bootstrap: kafka.bootstrap,
  })
  // leave out the warm-up record and the kafka-mode probe refused with SPW_ERR_TIMEOUT (which may still arrive)
  const messages = everything.filter((m) => m.value.toString() !== 'warm' && m.value.toString() !== 'probe')
  const copies = copiesById(messages)
  const replayed = durable.stats().replayed + onDisk.stats().replayed
  const wrong = accepted.filter((r) => copies.get(r.id as string) !== 1)
  assert.deepEqual(
    wrong.map((r) => `${r.id}×${copies.get(r.id as string) ?? 0}`),
    [],
    `every accepted event delivered exactly once (replays counted: ${replayed})`,
  )
  assert.equal(messages.length, accepted.length)
})
