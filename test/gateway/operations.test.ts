/** /healthz, /readyz with hysteresis, /metrics, CORS, and graceful close leaving the rest in the log. */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { DurableLog } from '../../src/log/log.ts'
import { post, startGateway } from '../helpers/gateway.ts'

test('readiness turns off before the disk budget refuses requests; metrics show how close it is; close keeps the rest in the log', async (t) => {
  const { url, gateway, dir } = await startGateway(t, {
    log: { maxBytes: 256 * 1024, segmentBytes: 16 * 1024 },
    readiness: { high: 0.5, low: 0.2 },
  })
  assert.equal((await fetch(`${url}/readyz`)).status, 200)
  const batch = JSON.stringify({
    batch: Array.from({ length: 20 }, () => ({
      type: 'track',
      userId: 'u',
      event: 'E',
      properties: { p: 'x'.repeat(400) },
    })),
  })
  let refused = 0
  while ((await fetch(`${url}/readyz`)).status === 200) {
    const r = await post(`${url}/v1/batch`, batch)
    if (r.status === 503) refused++
    assert.ok(refused < 5, 'readiness goes off before the budget refuses requests')
  }
  const full = await post(`${url}/v1/batch`, batch)
  assert.ok(full.status === 200 || full.status === 503)
  if (full.status === 503) {
    assert.equal(full.json.code, 'SPW_ERR_BACKPRESSURE')
    assert.ok(Number(full.headers.get('retry-after')) >= 1)
  }
  const metrics = await (await fetch(`${url}/metrics`)).text()
  assert.match(metrics, /spillway_ready 0/)
  assert.match(metrics, /spillway_log_bytes \d+/)
  assert.match(metrics, /spillway_log_max_bytes 262144/)
  assert.match(metrics, /spillway_log_fsync_seconds_count [1-9]\d*/)
  assert.match(metrics, /spillway_http_body_limit_bytes 512000/)
  assert.match(metrics, /spillway_http_requests_total\{route="segment",status="200"\} \d+/)
  assert.equal((await fetch(`${url}/healthz`)).status, 200, 'alive while unready')
  const accepted = gateway.producer.stats().accepted
  await gateway.close(500)
  // everything accepted is still in the log for the next start
  const log = await DurableLog.open({ dir })
  t.after(() => log.close())
  assert.equal(Number(log.stats().pendingRecords), accepted)
})

test('CORS preflight and headers for configured browser origins only', async (t) => {
  const { url } = await startGateway(t, { cors: { origins: ['https://app.example'] } })
  const preflight = await fetch(`${url}/v1/batch`, {
    method: 'OPTIONS',
    headers: { origin: 'https://app.example', 'access-control-request-method': 'POST' },
  })
  assert.equal(preflight.status, 204)
  assert.equal(preflight.headers.get('access-control-allow-origin'), 'https://app.example')
  const other = await fetch(`${url}/healthz`, { headers: { origin: 'https://evil.example' } })
  assert.equal(other.headers.get('access-control-allow-origin'), null)
  // analytics.js posts text/plain to avoid a preflight; that is accepted as JSON
  const plain = await post(`${url}/v1/track`, JSON.stringify({ userId: 'u', event: 'E' }), {
    'content-type': 'text/plain',
  })
  assert.equal(plain.status, 200)
})
