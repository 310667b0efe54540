/** The harness can start a 3-node KRaft cluster for replication faults, and stops it leaving no process. */
import assert from 'node:assert/strict'
import { execFileSync } from 'node:child_process'
import { test } from 'node:test'
import { Admin, ProduceAcks, Producer } from '@platformatic/kafka'
import { KafkaCluster } from '../../scripts/kafka/cluster.ts'
import { randomName } from '../helpers/kafka.ts'

function javaPidsFor(dir: string): string[] {
  try {
    return execFileSync('pgrep', ['-f', dir], { encoding: 'utf8' }).trim().split('\n').filter(Boolean)
  } catch {
    return []
  }
}

test('a 3-node cluster replicates, survives the loss of one node, and stops cleanly', async (t) => {
  const cluster = await KafkaCluster.start({ nodes: 3, heapMb: 384 })
  t.after(() => cluster.stop())
  const admin = new Admin({ clientId: 'spillway-cluster-test', bootstrapBrokers: cluster.bootstrap })
  t.after(() => admin.close())

  const topic = randomName('replicated')
  await admin.createTopics({
    topics: [topic],
    partitions: 1,
    replicas: 3,
    configs: [{ name: 'min.insync.replicas', value: '2' }],
  })
  const metadata = await admin.metadata({ topics: [topic] })
  assert.equal(metadata.brokers.size, 3, 'three brokers answer metadata')
  const partition = metadata.topics.get(topic)?.partitions[0]
  assert.ok(partition)
  assert.equal(partition.replicas.length, 3)

  const producer = new Producer({
    clientId: 'spillway-cluster-test',
    bootstrapBrokers: cluster.bootstrap,
    idempotent: true,
    acks: ProduceAcks.ALL,
    retries: 10,
    retryDelay: 500,
  })
  t.after(() => producer.close(true))
  await producer.send({ messages: [{ topic, value: Buffer.from('one') }] })

  // lose one node that is not the leader: acks=all still succeeds with 2 in-sync replicas
  const victim = partition.replicas.find((id) => id !== partition.leader) ?? 1
  await cluster.stopNode(victim, 'SIGKILL')
  await producer.send({ messages: [{ topic, value: Buffer.from('two') }] })

  const dir = cluster.baseDir
  await cluster.stop()
  assert.deepEqual(javaPidsFor(dir), [], 'no broker process is left behind')
})
