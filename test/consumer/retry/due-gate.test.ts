/** The due gate: tier records wait for their time in offset order, and the partition pauses meanwhile. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { PartitionWork } from '../../../src/consumer/partition.ts'
import { DueGate } from '../../../src/consumer/retry/due-gate.ts'
import type { FetchedRecord } from '../../../src/transport/cluster.ts'

const at = (offset: number, due: number): FetchedRecord => ({
  offset: BigInt(offset),
  timestamp: 0,
  key: null,
  value: Buffer.alloc(10),
  headers: [['spillway-retry-due', Buffer.from(String(due))]],
  size: 10,
})

test('records leave when due, in order; a later one never overtakes an earlier one not yet due', async () => {
  const released: bigint[] = []
  const holding: boolean[] = []
  const start = Date.now()
  const gate = new DueGate(
    (_w, records) => released.push(...records.map((r) => r.offset)),
    (_w, h) => holding.push(h),
  )
  const work = new PartitionWork('t.retry-1', 0, 0n, null, 1)
  gate.add(work, [at(0, start - 1), at(1, start + 80), at(2, start + 10), at(3, start + 150)])
  assert.deepEqual(released, [0n])
  assert.equal(holding.at(-1), true)
  assert.equal(gate.size, 3)
  assert.equal(gate.nextDue(work), start + 80)
  await new Promise((r) => setTimeout(r, 100))
  assert.deepEqual(released, [0n, 1n, 2n])
  assert.ok(Date.now() >= start + 80)
  await new Promise((r) => setTimeout(r, 80))
  assert.deepEqual(released, [0n, 1n, 2n, 3n])
  assert.equal(holding.at(-1), false)
  assert.equal(gate.size, 0)
})

test('a revoked partition drops what it held and frees its bytes; nothing is released afterwards', async () => {
  const released: bigint[] = []
  const gate = new DueGate(
    (_w, records) => released.push(...records.map((r) => r.offset)),
    () => undefined,
  )
  const work = new PartitionWork('t.retry-1', 0, 0n, null, 1)
  gate.add(work, [at(0, Date.now() + 30), at(1, Date.now() + 40)])
  assert.equal(gate.drop(work), 20)
  await new Promise((r) => setTimeout(r, 60))
  assert.deepEqual(released, [])
  gate.close()
})
