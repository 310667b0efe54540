/**
 * Validation as documented: strict ISO-8601 dates, user ids, charsets, fields named by their JSON path
 * in the request's own terms, and the errors of the HTTP layer itself in the same JSON shape.
 */
import assert from 'node:assert/strict'
import { connect } from 'node:net'
import { test } from 'node:test'
import { isIsoDate } from '../../src/gateway/segment.ts'
import { post, startGateway } from '../helpers/gateway.ts'

const json = { 'content-type': 'application/json' }

test('ISO-8601 dates: real calendar dates with an optional time and zone, nothing Date.parse merely tolerates', () => {
  for (const ok of [
    '2024-02-29',
    '2024-02-29T10:00:00Z',
    '2024-02-29T10:00:00.123+02:00',
    '2023-12-31T23:59:59',
  ])
    assert.equal(isIsoDate(ok), true, ok)
  for (const bad of [
    '1',
    'Tue March 5',
    '2024-02-30',
    '2023-02-29',
    '2024-13-01',
    '2024-01-01T24:00:00Z',
    '',
  ])
    assert.equal(isIsoDate(bad), false, bad)
})

test('Segment fields: dates, ids, charsets, each refusal naming its path', async (t) => {
  const { url, gateway } = await startGateway(t)
  const keys: unknown[] = []
  const send = gateway.producer.sendTo.bind(gateway.producer)
  gateway.producer.sendTo = async (items, options) => {
    for (const i of items) keys.push(i.event.key)
    return await send(items, options)
  }
  const track = (m: Record<string, unknown>) =>
    post(`${url}/v1/track`, JSON.stringify({ event: 'E', ...m }), json)
  for (const timestamp of ['1', 'Tue March 5', '2024-02-30']) {
    const r = await track({ userId: 'u', timestamp })
    assert.equal(r.status, 400, `${timestamp}: ${r.text}`)
    assert.equal(r.json.path, '$.timestamp')
  }
  assert.equal((await track({ userId: 'u', timestamp: '2024-02-29T10:00:00Z' })).status, 200)
  assert.equal((await track({ userId: '', anonymousId: 'anon-1' })).status, 200)
  assert.equal(keys.at(-1), 'anon-1', 'an empty userId keys by the anonymousId')
  assert.equal((await track({ userId: 42 })).status, 200)
  assert.equal(keys.at(-1), '42', 'a number is taken as its text')
  for (const userId of ['', true, {}]) {
    const r = await track({ userId })
    assert.equal(r.status, 400, `${JSON.stringify(userId)}: ${r.text}`)
    assert.equal(r.json.path, '$.userId')
  }
  const batch = await post(
    `${url}/v1/batch`,
    JSON.stringify({
      batch: [
        { type: 'track', event: 'E', userId: 'u' },
        { type: 'track', event: 'E', userId: 'u', messageId: 'é'.repeat(150) },
      ],
    }),
    json,
  )
  assert.equal(batch.status, 400, batch.text)
  assert.equal(
    batch.json.path,
    '$.batch[1].messageId',
    'the one invalid event of the batch, in request terms',
  )
  const latin1 = await post(`${url}/v1/track`, JSON.stringify({ event: 'E', userId: 'u' }), {
    'content-type': 'application/json; charset=iso-8859-1',
  })
  assert.equal(latin1.status, 415)
  assert.equal(latin1.json.code, 'SPW_ERR_UNSUPPORTED_MEDIA_TYPE')
  assert.equal(
    (
      await post(`${url}/v1/track`, JSON.stringify({ event: 'E', userId: 'u' }), {
        'content-type': 'application/json; charset=UTF-8',
      })
    ).status,
    200,
  )
})

/** Sends raw bytes and returns the status line and the body of the answer. */
async function raw(
  url: string,
  bytes: string,
  waitMs = 5000,
): Promise<{ status: number; body: Record<string, unknown> }> {
  const { hostname, port } = new URL(url)
  const socket = connect(Number(port), hostname)
  socket.on('error', () => undefined)
  let text = ''
  socket.setEncoding('utf8').on('data', (d: string) => {
    text += d
  })
  await new Promise<void>((resolve) => socket.once('connect', () => resolve()))
  socket.write(bytes)
  await new Promise<void>((resolve) => {
    const timer = setTimeout(resolve, waitMs)
    socket.once('close', () => {
      clearTimeout(timer)
      resolve()
    })
  })
  socket.destroy()
  const status = Number(/^HTTP\/1\.1 (\d{3})/.exec(text)?.[1] ?? 0)
  const body = text.slice(text.indexOf('\r\n\r\n') + 4)
  return { status, body: body ? (JSON.parse(body) as Record<string, unknown>) : {} }
}

test('errors of the HTTP layer come in the same JSON shape with a code: 400 bad URL, 408, 414, 431', async (t) => {
  const { url } = await startGateway(t, { limits: { requestTimeoutMs: 500, headersTimeoutMs: 400 } })
  const badUrl = await fetch(`${url}/v1/%E0%A4%A`, { method: 'POST', body: '{}', headers: json })
  assert.equal(badUrl.status, 400)
  assert.equal(((await badUrl.json()) as { code: string }).code, 'SPW_ERR_BAD_REQUEST')

  const topic = (n: number) => `${url}/v3/clusters/spillway/topics/${'t'.repeat(n)}/records`
  const longest = await post(topic(249), JSON.stringify({ value: { type: 'JSON', data: 1 } }), json)
  assert.equal(longest.status, 200, 'a 249-character topic name is accepted')
  const tooLong = await post(topic(300), JSON.stringify({ value: { type: 'JSON', data: 1 } }), json)
  assert.equal(tooLong.status, 414, tooLong.text)
  assert.equal(tooLong.json.code, 'SPW_ERR_URI_TOO_LONG')

  const headers = await raw(url, `POST /v1/track HTTP/1.1\r\nHost: x\r\nX-Big: ${'a'.repeat(20_000)}\r\n\r\n`)
  assert.equal(headers.status, 431)
  assert.equal(headers.body.code, 'SPW_ERR_HEADERS_TOO_LARGE')

  const slow = await raw(
    url,
    'POST /v1/track HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\nContent-Length: 100\r\n\r\n{',
    5000,
  )
  assert.equal(slow.status, 408)
  assert.equal(slow.body.code, 'SPW_ERR_REQUEST_TIMEOUT')
})
