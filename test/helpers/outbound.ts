/** Outbound records for transport tests, built from plain fields the way the dispatcher builds them. */
import { encodeRecordBody } from '../../src/transport/record-batch.ts'
import type { OutboundRecord } from '../../src/transport/transport.ts'

export interface RecordFields {
  readonly topic: string
  readonly partition: number
  readonly key?: Buffer | undefined
  readonly value: Buffer
  readonly headers?: readonly (readonly [string, Buffer])[]
  readonly timestamp?: number
}

export function outbound(fields: RecordFields): OutboundRecord {
  return {
    topic: fields.topic,
    partition: fields.partition,
    timestamp: fields.timestamp ?? Date.now(),
    body: encodeRecordBody(fields.key, fields.value, fields.headers ?? []),
  }
}

/** A record whose value and spillway-id are both `value`, so a consumer can tell records apart. */
export function idRecord(topic: string, value: string, partition = 0): OutboundRecord {
  return outbound({
    topic,
    partition,
    value: Buffer.from(value),
    headers: [['spillway-id', Buffer.from(value)]],
  })
}
