/** A broker that cannot start says why, what to do, and shows the tail of its log; nothing is left running. */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { createServer } from 'node:net'
import { test } from 'node:test'
import { KafkaCluster } from '../../scripts/kafka/cluster.ts'

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
