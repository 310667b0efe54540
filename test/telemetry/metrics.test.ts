import assert from 'node:assert/strict'
import { test } from 'node:test'
import { isSpillwayError } from '../../src/errors.ts'
import { Registry, registerSourcedMetrics } from '../../src/telemetry/metrics.ts'

const specs = [
  { name: 'x_accepted_total', help: 'accepted', type: 'counter', key: 'accepted' },
  { name: 'x_queued', help: 'queued', type: 'gauge', key: 'queued' },
] as const

test('two sources on one registry each report their own samples, and a closed one stops reporting', async () => {
  const registry = new Registry()
  const off = registerSourcedMetrics(registry, specs, () => ({ accepted: 5, queued: 1 }), {
    component: 'producer',
  })
  registerSourcedMetrics(registry, specs, () => ({ accepted: 7, queued: 2n }), { component: 'consumer' })
  const text = await registry.metrics()
  assert.match(text, /x_accepted_total\{component="producer"\} 5/)
  assert.match(text, /x_accepted_total\{component="consumer"\} 7/)
  assert.match(text, /x_queued\{component="consumer"\} 2/)
  off()
  const after = await registry.metrics()
  assert.doesNotMatch(after, /component="producer"/)
  assert.match(after, /x_queued\{component="consumer"\} 2/)
})

test('a source is read once per scrape, however many metrics it feeds', async () => {
  const registry = new Registry()
  let reads = 0
  registerSourcedMetrics(registry, specs, () => {
    reads++
    return { accepted: reads, queued: reads }
  })
  await registry.metrics()
  assert.equal(reads, 1)
  await new Promise((resolve) => setImmediate(resolve))
  const text = await registry.metrics()
  assert.equal(reads, 2)
  assert.match(text, /x_accepted_total 2/)
})

test('a second source that would overwrite the first is refused with a readable error', () => {
  const registry = new Registry()
  registerSourcedMetrics(registry, specs, () => ({}))
  for (const labels of [{}, { component: 'other' }]) {
    assert.throws(
      () => registerSourcedMetrics(registry, specs, () => ({}), labels),
      (error: unknown) =>
        isSpillwayError(error, 'SPW_ERR_INVALID_OPTION') && /x_accepted_total/.test(error.message),
    )
  }
})
