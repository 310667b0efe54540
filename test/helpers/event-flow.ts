/** A steady stream of events into a topic while a test breaks something, with the ids Kafka accepted. */
import assert from 'node:assert/strict'
import type { TestContext } from 'node:test'
import { createProducer } from '../../src/index.ts'

export interface EventFlow {
  /** Ids of every event Kafka has accepted so far. */
  readonly sent: string[]
  /** Stops after the send in progress; resolves once it is done. */
  stop(): Promise<void>
}

/** Sends `perSend` events (keys over `keys` values) every 100 ms until stopped. */
export async function startEventFlow(
  t: TestContext,
  brokers: string[],
  topic: string,
  options: { perSend?: number; keys?: number } = {},
): Promise<EventFlow> {
  const perSend = options.perSend ?? 50
  const keys = options.keys ?? 13
  const producer = await createProducer({ brokers, ack: 'kafka', transportLingerMs: 0 })
  t.after(() => producer.close())
  const sent: string[] = []
  let flowing = true
  const running = (async () => {
    for (let i = 0; flowing; i += perSend) {
      const results = await producer.send(
        topic,
        Array.from({ length: perSend }, (_, j) => ({ key: `k${(i + j) % keys}`, value: { n: i + j } })),
      )
      for (const r of results) {
        assert.equal(r.status, 'accepted')
        sent.push(r.id)
      }
      await new Promise((r) => setTimeout(r, 100))
    }
  })()
  return {
    sent,
    stop: async () => {
      flowing = false
      await running
    },
  }
}
