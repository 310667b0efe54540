import assert from 'node:assert/strict'
import { spawnSync } from 'node:child_process'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { kafkaClasspath } from '../../scripts/kafka/cluster.ts'
import { partitionForKey, partitionForKeyAt } from '../../src/producer/partitioner.ts'

test("key → partition matches the Java client's BuiltInPartitioner for 5,000 keys", () => {
  const keys = Array.from({ length: 5000 }, (_, i) => (i % 7 === 0 ? `user-${i}-ünïcødé` : `k${i * 7919}`))
  for (const partitions of [1, 3, 12, 20]) {
    const java = spawnSync(
      'java',
      [
        '-cp',
        kafkaClasspath(),
        fileURLToPath(new URL('./fixtures/JavaPartitions.java', import.meta.url)),
        String(partitions),
      ],
      { input: `${keys.join('\n')}\n`, encoding: 'utf8' },
    )
    assert.equal(java.status, 0, java.stderr)
    const expected = java.stdout.trim().split('\n').map(Number)
    assert.equal(expected.length, keys.length)
    const ours = keys.map((k) => partitionForKey(Buffer.from(k), partitions))
    assert.deepEqual(ours, expected, `${partitions} partitions`)
    // the same key read in place, inside other bytes, as delivery reads it from a stored record
    const inPlace = keys.map((k) => {
      const key = Buffer.from(k)
      const bytes = Buffer.concat([Buffer.from([7, 1, 2]), key, Buffer.from([9])])
      return partitionForKeyAt(bytes, 3, 3 + key.length, partitions)
    })
    assert.deepEqual(inPlace, expected, `${partitions} partitions, key in place`)
  }
})
