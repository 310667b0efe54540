import assert from 'node:assert/strict'
import { test } from 'node:test'
import { isTopicName } from '../src/topic-name.ts'

test("topic names follow Kafka's rule: legal characters, 1–249 of them, never '.' or '..'", () => {
  for (const name of ['orders', 'a', 'segment-events', 'x.y_z-1', '...', '.hidden', 'a'.repeat(249)])
    assert.equal(isTopicName(name), true, name)
  for (const name of ['', '.', '..', 'a'.repeat(250), 'with space', 'slash/topic', 'ünï', 42, undefined])
    assert.equal(isTopicName(name), false, String(name))
})
