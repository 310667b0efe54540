import assert from 'node:assert/strict'
import { test } from 'node:test'
import { judgeAll, judgePartition, type PartitionLag } from '../../../src/doctor/checks/consumer-lag.ts'

const base: PartitionLag = {
  group: 'g',
  protocol: 'consumer',
  topic: 't',
  partition: 0,
  committedBefore: 100n,
  committed: 100n,
  endBefore: 100n,
  end: 100n,
  logStart: 0n,
  lagSeconds: 0,
  owner: 'm1',
  retentionMs: null,
}

test('a caught-up partition is OK even when nothing moves (an idle topic is not stopped)', () => {
  assert.equal(judgePartition({ ...base, owner: null }, 60), 'OK')
})

test('young lag is OK; old lag without an owner is STOP; with an owner and no movement, STALL', () => {
  assert.equal(judgePartition({ ...base, end: 150n, lagSeconds: 5 }, 60), 'OK')
  assert.equal(judgePartition({ ...base, end: 150n, lagSeconds: 600, owner: null }, 60), 'STOP')
  assert.equal(judgePartition({ ...base, end: 150n, lagSeconds: 600 }, 60), 'STALL')
})

test('moving while the lag grows is WARN; moving and catching up is OK', () => {
  const moving = { ...base, committedBefore: 50n, committed: 80n, endBefore: 100n, lagSeconds: 600 }
  assert.equal(judgePartition({ ...moving, end: 200n }, 60), 'WARN')
  assert.equal(judgePartition({ ...moving, end: 110n }, 60), 'OK')
})

test('a committed offset that went back is REWIND, whatever the lag', () => {
  assert.equal(judgePartition({ ...base, committedBefore: 100n, committed: 40n }, 60), 'REWIND')
})

test('a stalled partition whose member keeps another partition OK is STARVED', () => {
  const judged = judgeAll(
    [
      { ...base, partition: 0, committedBefore: 10n, committed: 10n, end: 500n, lagSeconds: 900 },
      {
        ...base,
        partition: 1,
        committedBefore: 90n,
        committed: 120n,
        endBefore: 100n,
        end: 120n,
        lagSeconds: 0,
      },
      {
        ...base,
        group: 'other',
        partition: 0,
        committedBefore: 10n,
        committed: 10n,
        end: 500n,
        lagSeconds: 900,
      },
    ],
    60,
  )
  assert.deepEqual(
    judged.map((p) => p.status),
    ['STARVED', 'OK', 'STALL'],
  )
})
