/** Per-lane order under a global concurrency limit (no broker). */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { setFlagsFromString } from 'node:v8'
import { runInNewContext } from 'node:vm'
import { KeyExecutor } from '../../src/consumer/key-executor.ts'

const sleep = (ms: number) => new Promise((r) => setTimeout(r, ms))

test('tasks of one lane run one at a time in order; lanes run in parallel up to the limit', async () => {
  const executor = new KeyExecutor(4)
  const log: string[] = []
  let peak = 0
  let now = 0
  for (let i = 0; i < 40; i++) {
    const lane = `k${i % 8}`
    executor.submit({
      lane,
      run: async () => {
        now++
        peak = Math.max(peak, now)
        log.push(`${lane}:${i}`)
        await sleep(2)
        now--
      },
    })
  }
  await executor.idle()
  assert.equal(log.length, 40)
  assert.equal(peak, 4, 'the limit is reached and never passed')
  for (let k = 0; k < 8; k++) {
    const order = log.filter((l) => l.startsWith(`k${k}:`)).map((l) => Number(l.split(':')[1]))
    assert.deepEqual(
      order,
      [...order].sort((a, b) => a - b),
      `lane k${k} in order`,
    )
  }
})

test('a hot lane does not hold the others back beyond its own tasks', async () => {
  const executor = new KeyExecutor(2)
  const done: string[] = []
  for (let i = 0; i < 20; i++)
    executor.submit({
      lane: 'hot',
      run: async () => {
        await sleep(5)
        done.push('hot')
      },
    })
  executor.submit({
    lane: 'cold',
    run: async () => {
      done.push('cold')
    },
  })
  await sleep(20)
  assert.ok(done.includes('cold'), 'the cold lane ran while the hot one still had work')
  assert.ok(done.filter((d) => d === 'hot').length < 20)
  await executor.idle()
})

test('a failing task does not stall its lane; drop() removes queued tasks only', async () => {
  const executor = new KeyExecutor(1)
  const ran: number[] = []
  executor.submit({
    lane: 'a',
    run: async () => {
      ran.push(1)
      throw new Error('handler failed')
    },
  })
  executor.submit({
    lane: 'a',
    run: async () => {
      ran.push(2)
    },
  })
  executor.submit({
    lane: 'b',
    run: async () => {
      ran.push(3)
    },
  })
  assert.equal(
    executor.drop((t) => t.lane === 'b'),
    1,
  )
  await executor.idle()
  assert.deepEqual(ran, [1, 2])
})

test('a task that has run is not kept: its record can be collected while the queue is still in use', async () => {
  setFlagsFromString('--expose-gc')
  const gc = runInNewContext('gc') as () => void
  const executor = new KeyExecutor(2)
  const refs: WeakRef<Buffer>[] = []
  // a queue that never empties: each finished task submits the next, keyed and unkeyed alike
  let left = 40
  const submit = (lane: string | null): void => {
    const record = Buffer.alloc(1024 * 1024)
    refs.push(new WeakRef(record))
    executor.submit({
      lane,
      run: async () => {
        record.fill(1)
        await sleep(1)
        if (--left > 0) submit(left % 2 === 0 ? 'hot-partition' : null)
      },
    })
  }
  submit('hot-partition')
  submit(null)
  await executor.idle()
  await sleep(10)
  gc()
  await sleep(10)
  gc()
  const kept = refs.filter((r) => r.deref() !== undefined).length
  assert.equal(refs.length, 41)
  assert.ok(kept <= 2, `${kept} of ${refs.length} finished tasks' records are still held`)
})
