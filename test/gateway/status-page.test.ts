/**
 * The status page in a real browser (Debian's chromium, driven by playwright-core): it renders the live
 * figures, updates itself, and logs no console errors. The screenshot is kept in test-artifacts/.
 */
import assert from 'node:assert/strict'
import { existsSync } from 'node:fs'
import { mkdir } from 'node:fs/promises'
import { test } from 'node:test'
import { chromium } from 'playwright-core'
import { post, startGateway } from '../helpers/gateway.ts'

const executablePath = '/usr/bin/chromium'

test('the status page shows breaker, log depth, rates and refusals, live, with no console errors', {
  skip: !existsSync(executablePath) && 'chromium is not installed (bash scripts/chromium/install)',
}, async (t) => {
  const { url } = await startGateway(t, { limits: { maxEventBytes: 1024 } })
  const browser = await chromium.launch({
    executablePath,
    args: [
      '--headless',
      '--no-sandbox',
      '--disable-gpu',
      '--disable-quic',
      '--no-first-run',
      '--disable-background-networking',
      '--disable-component-update',
      '--disable-sync',
    ],
  })
  t.after(() => browser.close())
  const page = await browser.newPage({ viewport: { width: 1100, height: 700 } })
  const problems: string[] = []
  page.on('console', (m) => {
    if (m.type() === 'error') problems.push(m.text())
  })
  page.on('pageerror', (e) => problems.push(e.message))
  await page.goto(url)
  await page.waitForFunction("document.getElementById('breaker')?.textContent === 'closed'")
  assert.match((await page.textContent('#sub')) ?? '', /embedded default: no Kafka configured/)
  assert.match((await page.textContent('#banner')) ?? '', /No Kafka is configured/)

  // traffic: accepted events raise the depth and the ingest rate; an oversize event shows as a refusal
  for (let i = 0; i < 20; i++) {
    const batch = Array.from({ length: 25 }, (_, j) => ({ type: 'track', userId: `u${j}`, event: 'Viewed' }))
    assert.equal((await post(`${url}/v1/batch`, JSON.stringify({ batch }))).status, 200)
  }
  const big = await post(
    `${url}/v1/track`,
    JSON.stringify({ userId: 'u', event: 'Big', properties: { p: 'x'.repeat(2000) } }),
  )
  assert.equal(big.status, 413)
  await page.waitForFunction("document.getElementById('depth')?.textContent === '500 records'", undefined, {
    timeout: 10_000,
  })
  await page.waitForFunction(
    "Number.parseFloat(document.getElementById('ingest')?.textContent ?? '0') > 0",
    undefined,
    { timeout: 10_000 },
  )
  await page.waitForFunction(
    "(document.getElementById('refusals')?.textContent ?? '').includes('SPW_ERR_PAYLOAD_TOO_LARGE')",
    undefined,
    { timeout: 10_000 },
  )
  await mkdir('test-artifacts', { recursive: true })
  await page.screenshot({ path: 'test-artifacts/status-page.png', fullPage: true })
  const detail = (await page.textContent('#depthDetail')) ?? ''
  assert.match(detail, /KiB of 1\.00 GiB; oldest pending \d+\.\d s/)
  assert.deepEqual(problems, [], 'no console errors')
})
