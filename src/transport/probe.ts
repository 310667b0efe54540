/**
 * The doctor's probe writer: a plain producer (not idempotent, so the probe adds no producer id to the
 * brokers' state), acks=all, made for the probe and closed after it. It lives beside the other adapters
 * because only transport/ imports the Kafka client.
 */
import { ProduceAcks, Producer } from '@platformatic/kafka'
import { withDeadline } from './deadline.ts'
import { baseOptions } from './platformatic.ts'
import type { KafkaConnectionOptions } from './transport.ts'

export interface ProbeWrite {
  readonly offset: bigint
  /** Send to acknowledgement, ms. */
  readonly ackMs: number
}

/** Writes `values` one at a time to partition 0 of `topic` and times each acknowledgement. */
export async function probeWrite(
  options: KafkaConnectionOptions,
  topic: string,
  values: readonly { key: Buffer; value: Buffer; headers: Map<Buffer, Buffer> }[],
  deadlineMs: number,
): Promise<ProbeWrite[]> {
  const producer = new Producer<Buffer, Buffer, Buffer, Buffer>({
    ...baseOptions(options),
    idempotent: false,
    acks: ProduceAcks.ALL,
    autocreateTopics: false,
  } as ConstructorParameters<typeof Producer<Buffer, Buffer, Buffer, Buffer>>[0])
  const out: ProbeWrite[] = []
  try {
    for (const v of values) {
      const started = performance.now()
      const result = await withDeadline(
        producer.send({
          messages: [{ topic, partition: 0, key: v.key, value: v.value, headers: v.headers }],
        }),
        deadlineMs,
        `probe write to ${topic}`,
      )
      const offset = result.offsets?.[0]?.offset
      out.push({ offset: offset === undefined ? -1n : BigInt(offset), ackMs: performance.now() - started })
    }
  } finally {
    await producer.close(true).catch(() => undefined)
  }
  return out
}
