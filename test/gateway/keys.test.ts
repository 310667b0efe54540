/**
 * Keys that mean what they say, bytes and not just events, browser origins and the operations views:
 * what a hostile client tried against the gateway, each refused the way it is documented.
 */
import assert from 'node:assert/strict'
import { test } from 'node:test'
import { basic, post, startGateway } from '../helpers/gateway.ts'

const track = (extra: Record<string, unknown> = {}) => JSON.stringify({ event: 'E', userId: 'u', ...extra })
const json = { 'content-type': 'application/json' }
const restBody = JSON.stringify({ value: { type: 'JSON', data: { a: 1 } } })
const restUrl = (url: string) => `${url}/v3/clusters/spillway/topics/orders/records`

test('a key with a secret must present it on every route; a public key may use the Segment routes only', async (t) => {
  const { url, gateway } = await startGateway(t, {
    keys: [
      { key: 'server-key-0001', secret: 'server-secret', name: 'server', topics: ['*'] },
      { key: 'browser-key-001', name: 'browser', topics: ['*'] },
    ],
  })
  // the secret key: on Segment too
  assert.equal(
    (await post(`${url}/v1/track`, track(), { ...json, authorization: basic('server-key-0001') })).status,
    401,
  )
  assert.equal(
    (
      await post(
        `${url}/v1/track`,
        JSON.stringify({ event: 'E', userId: 'u', writeKey: 'server-key-0001' }),
        json,
      )
    ).status,
    401,
    'a body writeKey carries no secret',
  )
  const wrong = await post(`${url}/v1/track`, track(), {
    ...json,
    authorization: basic('server-key-0001', 'nope'),
  })
  assert.equal(wrong.status, 401)
  assert.equal(
    (
      await post(`${url}/v1/track`, track(), {
        ...json,
        authorization: basic('server-key-0001', 'server-secret'),
      })
    ).status,
    200,
  )
  assert.equal(
    (
      await post(restUrl(url), restBody, {
        ...json,
        authorization: basic('server-key-0001', 'server-secret'),
      })
    ).status,
    200,
  )
  // the public key: Segment yes, REST Proxy never, whatever password it tries
  assert.equal(
    (await post(`${url}/v1/track`, track(), { ...json, authorization: basic('browser-key-001') })).status,
    200,
  )
  for (const password of ['', 'anything']) {
    const rest = await post(restUrl(url), restBody, {
      ...json,
      authorization: basic('browser-key-001', password),
    })
    assert.equal(rest.status, 401, rest.text)
    assert.match(String(rest.json.message), /public write key/)
  }
  assert.equal(gateway.producer.stats().accepted, 3)
})

test("dedupeScope 'key' namespaces event ids; a messageId twice in one batch is refused with its path", async (t) => {
  const { url, gateway } = await startGateway(t, {
    keys: [{ key: 'tenant-a-key-01', name: 'tenant-a', topics: ['*'], dedupeScope: 'key' }],
  })
  const events: string[] = []
  gateway.producer.on('status', () => undefined)
  const send = gateway.producer.sendTo.bind(gateway.producer)
  gateway.producer.sendTo = async (items, options) => {
    for (const i of items) events.push(String(i.event.id))
    return await send(items, options)
  }
  const auth = { ...json, authorization: basic('tenant-a-key-01') }
  assert.equal((await post(`${url}/v1/track`, track({ messageId: 'm-1' }), auth)).status, 200)
  assert.deepEqual(events, ['tenant-a:m-1'])
  const dup = await post(
    `${url}/v1/batch`,
    JSON.stringify({
      batch: [
        { type: 'track', event: 'E', userId: 'u', messageId: 'x' },
        { type: 'track', event: 'E', userId: 'u', messageId: 'y' },
        { type: 'track', event: 'E', userId: 'u', messageId: 'x' },
      ],
    }),
    auth,
  )
  assert.equal(dup.status, 400, dup.text)
  assert.equal(dup.json.path, '$.batch[2].messageId')
  assert.match(String(dup.json.message), /\$\.batch\[0\]/)
  assert.equal(gateway.producer.stats().accepted, 1, 'nothing of the refused batch was stored')
})

test('a request larger than the burst is a non-retriable 413; tokens are charged only for accepted requests', async (t) => {
  const { url } = await startGateway(t, {
    keys: [{ key: 'limited-key-001', name: 'limited', topics: ['*'], ratePerSecond: 1, burst: 3 }],
  })
  const auth = { ...json, authorization: basic('limited-key-001') }
  const batch = (n: number, extra: Record<string, unknown> = {}) =>
    JSON.stringify({
      batch: Array.from({ length: n }, () => ({ type: 'track', event: 'E', userId: 'u', ...extra })),
    })
  const tooBig = await post(`${url}/v1/batch`, batch(4), auth)
  assert.equal(tooBig.status, 413, tooBig.text)
  assert.equal(tooBig.json.retriable, false)
  assert.match(String(tooBig.json.message), /burst of 3/)
  assert.equal(tooBig.headers.get('retry-after'), null)
  // refused requests cost nothing: three invalid ones, then a valid one still has the whole burst
  for (let i = 0; i < 3; i++) {
    assert.equal((await post(`${url}/v1/batch`, batch(3, { type: 'nope' }), auth)).status, 400)
  }
  assert.equal((await post(`${url}/v1/batch`, batch(3), auth)).status, 200)
  const limited = await post(`${url}/v1/track`, track(), auth)
  assert.equal(limited.status, 429)
  assert.ok(Number(limited.headers.get('retry-after')) >= 1)
})

test('batch context merged into every message is capped by maxRequestWriteBytes; bytesPerSecond limits bytes', async (t) => {
  const { url, gateway } = await startGateway(t, {
    limits: { maxBodyBytes: 200_000, maxRequestWriteBytes: 400_000, maxEvents: 2500 },
    keys: [
      { key: 'bytes-key-00001', name: 'bytes', topics: ['*'], bytesPerSecond: 10_000, burstBytes: 20_000 },
      { key: 'open-key-000001', name: 'open', topics: ['*'] },
    ],
  })
  // 20 KB of context, merged into 2,000 tiny messages: 40 MB written from a 120 KB body
  const context = { blob: 'x'.repeat(20_000) }
  const batch = Array.from({ length: 2000 }, () => ({ type: 'track', event: 'E', userId: 'u' }))
  const rssBefore = process.memoryUsage().rss
  const amplified = await post(`${url}/v1/batch`, JSON.stringify({ context, batch }), {
    ...json,
    authorization: basic('open-key-000001'),
  })
  assert.equal(amplified.status, 413, amplified.text)
  assert.equal(amplified.json.code, 'SPW_ERR_PAYLOAD_TOO_LARGE')
  assert.match(String(amplified.json.message), /maxRequestWriteBytes/)
  const grew = (process.memoryUsage().rss - rssBefore) / 1024 / 1024
  assert.ok(grew < 64, `refused before building it all (RSS +${grew.toFixed(0)} MB)`)
  assert.equal(gateway.producer.stats().accepted, 0)
  // bytes per second: a 15 KB event fits the 20 KB burst once, not twice in a row
  const auth = { ...json, authorization: basic('bytes-key-00001') }
  const big = track({ properties: { pad: 'y'.repeat(15_000) } })
  assert.equal((await post(`${url}/v1/track`, big, auth)).status, 200)
  assert.equal((await post(`${url}/v1/track`, big, auth)).status, 429)
})

test('browser origins not in cors.origins are refused; listed ones get CORS headers', async (t) => {
  const open = await startGateway(t)
  const refused = await post(`${open.url}/v1/track`, track(), { ...json, origin: 'https://evil.example' })
  assert.equal(refused.status, 403, refused.text)
  assert.equal(refused.json.code, 'SPW_ERR_FORBIDDEN_ORIGIN')
  assert.equal(
    open.gateway.producer.stats().accepted,
    0,
    'an open gateway takes no browser events unless told',
  )
  assert.equal((await post(`${open.url}/v1/track`, track(), json)).status, 200, 'servers send no Origin')

  const listed = await startGateway(t, { cors: { origins: ['https://shop.example'] } })
  const ok = await post(`${listed.url}/v1/track`, track(), { ...json, origin: 'https://shop.example' })
  assert.equal(ok.status, 200)
  assert.equal(ok.headers.get('access-control-allow-origin'), 'https://shop.example')
  const other = await post(`${listed.url}/v1/track`, track(), { ...json, origin: 'https://other.example' })
  assert.equal(other.status, 403)
  const preflight = await fetch(`${listed.url}/v1/track`, {
    method: 'OPTIONS',
    headers: { origin: 'https://other.example', 'access-control-request-method': 'POST' },
  })
  assert.equal(preflight.status, 403)
})

test('operations views: behind ops.key, or on ops.port; absolute paths only to trusted callers', async (t) => {
  const anonymous = await startGateway(t)
  const view = (await (await fetch(`${anonymous.url}/status.json`)).json()) as { logDir: unknown }
  assert.equal(view.logDir, null, 'no absolute path for an anonymous client')

  const keyed = await startGateway(t, { ops: { key: 'ops-secret-1' } })
  assert.equal((await fetch(`${keyed.url}/metrics`)).status, 401)
  assert.equal((await fetch(`${keyed.url}/status.json`)).status, 401)
  assert.equal((await fetch(`${keyed.url}/healthz`)).status, 200, 'probes stay open')
  assert.equal((await fetch(`${keyed.url}/readyz`)).status, 200)
  const withKey = await fetch(`${keyed.url}/status.json`, {
    headers: { authorization: 'Bearer ops-secret-1' },
  })
  assert.equal(withKey.status, 200)
  assert.equal(((await withKey.json()) as { logDir: string }).logDir, keyed.dir)
  assert.equal((await fetch(`${keyed.url}/metrics?key=ops-secret-1`)).status, 200)

  const split = await startGateway(t, { ops: { port: 0 } })
  assert.equal((await fetch(`${split.url}/metrics`)).status, 404, 'not on the public port')
  assert.equal((await fetch(`${split.url}/healthz`)).status, 200)
  const opsUrl = split.gateway.opsUrl as string
  assert.equal((await fetch(`${opsUrl}/metrics`)).status, 200)
  const trusted = (await (await fetch(`${opsUrl}/status.json`)).json()) as { logDir: string }
  assert.equal(trusted.logDir, split.dir)
})

test('REST Proxy headers: strict base64, a name may repeat, "__proto__" is kept; they count toward the record size', async (t) => {
  const { url, gateway } = await startGateway(t, { limits: { maxEventBytes: 200 } })
  const kept: unknown[] = []
  const send = gateway.producer.sendTo.bind(gateway.producer)
  gateway.producer.sendTo = async (items, options) => {
    for (const i of items) kept.push(i.event.headers)
    return await send(items, options)
  }
  const record = (headers: unknown[]) => JSON.stringify({ value: { type: 'STRING', data: 'v' }, headers })
  const b64 = (s: string) => Buffer.from(s).toString('base64')
  const ok = await post(
    restUrl(url),
    record([
      { name: 'trace', value: b64('one') },
      { name: 'trace', value: b64('two') },
      { name: '__proto__', value: b64('kept') },
    ]),
    json,
  )
  assert.equal(ok.status, 200, ok.text)
  assert.deepEqual(
    (kept[0] as [string, Buffer][]).map(([n, v]) => [n, v.toString()]),
    [
      ['trace', 'one'],
      ['trace', 'two'],
      ['__proto__', 'kept'],
    ],
  )
  for (const value of ['aGVsbG8', 'aGVs bG8=', 'aGVsbG8=='.slice(0, 6)]) {
    const bad = await post(restUrl(url), record([{ name: 'h', value }]), json)
    assert.equal(bad.status, 400, `${value}: ${bad.text}`)
  }
  const heavy = await post(restUrl(url), record([{ name: 'big', value: b64('z'.repeat(300)) }]), json)
  assert.equal(heavy.status, 413, 'headers count toward maxEventBytes')
})
