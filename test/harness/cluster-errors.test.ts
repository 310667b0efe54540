/** A broker that cannot start says why, what to do, and shows the tail of its log; nothing is left running. */
import assert from 'node:assert/strict'
import { execFileSync, spawn } from 'node:child_process'
import { once } from 'node:events'
import { existsSync } from 'node:fs'
import { createServer } from 'node:net'
import { join } from 'node:path'
import { test } from 'node:test'
import { KafkaCluster, reapOrphanBrokers } from '../../scripts/kafka/cluster.ts'

function javaCount(): number {
  try {
    return (
      execFileSync('pgrep', ['-c', '-f', 'kafka.Kafka'], { encoding: 'utf8' })
        .trim()
        .split('\n')
        .map(Number)[0] ?? 0
    )
  } catch {
    return 0
  }
}

test('an invalid broker setting fails the start with the reason and the log tail', async () => {
  const before = javaCount()
  await assert.rejects(KafkaCluster.start({ config: { 'num.network.threads': 'many' } }), (error: Error) => {
    assert.match(error.message, /Kafka node 1 (could not be formatted|did not start)/)
    assert.ok(error.message.length < 4000, 'a summary, not the whole log')
    assert.match(error.message, /--- last lines ---/)
    assert.match(error.message, /num\.network\.threads/)
    return true
  })
  assert.equal(javaCount(), before, 'no broker process left behind')
})

test('a busy port is named as the reason', async (t) => {
  const blocker = createServer()
  await new Promise<void>((r) => blocker.listen(0, '127.0.0.1', () => r()))
  t.after(() => blocker.close())
  const port = (blocker.address() as { port: number }).port
  await assert.rejects(KafkaCluster.start({ port }), (error: Error) => {
    assert.match(error.message, /did not start: a port it needs is busy/)
    assert.match(error.message, /--- last lines ---/)
    return true
  })
})

test('brokers of a runner killed with SIGKILL are reaped by the next start', async () => {
  const child = spawn(process.execPath, [join(import.meta.dirname, 'fixtures', 'hold-broker.ts')], {
    stdio: ['ignore', 'pipe', 'inherit'],
  })
  const line = await new Promise<string>((resolve, reject) => {
    let out = ''
    child.stdout.on('data', (d: Buffer) => {
      out += d.toString()
      if (out.includes('\n')) resolve(out.split('\n')[0] as string)
    })
    child.once('exit', (code) =>
      reject(new Error(`the fixture exited with ${code} before its broker started`)),
    )
  })
  const { pid, baseDir } = JSON.parse(line) as { pid: number; baseDir: string }
  child.kill('SIGKILL')
  await once(child, 'exit')
  assert.doesNotThrow(() => process.kill(pid, 0), 'the broker outlived its runner')
  assert.ok(reapOrphanBrokers() >= 1, 'the next start finds the orphan')
  const deadline = performance.now() + 10_000
  let gone = false
  while (!gone && performance.now() < deadline) {
    try {
      process.kill(pid, 0)
      await new Promise((r) => setTimeout(r, 100))
    } catch {
      gone = true
    }
  }
  assert.ok(gone, 'the orphaned broker is stopped')
  assert.equal(existsSync(baseDir), false, 'its data directory is removed')
  assert.equal(reapOrphanBrokers(), 0, 'nothing is left to reap')
})
