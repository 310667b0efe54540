/**
 * The consumer's dead-letter topics: a record its handler could not take goes to
 * `deadLetterTopic(topic)` with its key, value and headers unchanged, its event id kept, and headers that
 * say where it came from and why. It is written through a spillway producer in `kafka` ack mode on the
 * same cluster (so the process's one Kafka producer), and the record counts as done only once Kafka has
 * acknowledged the copy.
 */
import { type ErrorCode, SpillwayError } from '../errors.ts'
import type { SpillwayProducer } from '../producer/producer.ts'
import { createProducer } from '../producer/producer.ts'
import type { SaslOptions, TlsOptions } from '../transport/transport.ts'
import { deadLetterTopic } from './options.ts'
import { type ConsumedRecord, ID_HEADER } from './types.ts'

export const DEAD_LETTER_HEADERS = {
  error: 'spillway-error',
  code: 'spillway-error-code',
  topic: 'spillway-source-topic',
  partition: 'spillway-source-partition',
  offset: 'spillway-source-offset',
  group: 'spillway-source-group',
} as const

export interface DeadLetterConnection {
  readonly brokers: readonly string[]
  readonly clientId: string
  readonly tls: TlsOptions | undefined
  readonly sasl: SaslOptions | undefined
}

export class ConsumerDeadLetters {
  readonly #connection: DeadLetterConnection
  readonly #routes: Readonly<Record<string, string>>
  readonly #group: string | undefined
  #producer: Promise<SpillwayProducer> | undefined

  constructor(
    connection: DeadLetterConnection,
    routes: Readonly<Record<string, string>>,
    group: string | undefined,
  ) {
    this.#connection = connection
    this.#routes = routes
    this.#group = group
  }

  async write(
    records: readonly ConsumedRecord<Buffer | null>[],
    error: unknown,
    code: ErrorCode,
  ): Promise<void> {
    this.#producer ??= createProducer({
      brokers: this.#connection.brokers,
      clientId: this.#connection.clientId,
      ...(this.#connection.tls ? { tls: this.#connection.tls as never } : {}),
      ...(this.#connection.sasl ? { sasl: this.#connection.sasl as never } : {}),
      ack: 'kafka',
      transportThread: 'main',
      transportLingerMs: 0,
    })
    const producer = await this.#producer
    const reason = error instanceof Error ? error.message : String(error)
    const results = await producer.sendTo(
      records.map((r) => ({
        topic: deadLetterTopic(this.#routes, r.topic),
        event: {
          id: r.id,
          value: r.value,
          ...(r.key ? { key: r.key } : {}),
          timestamp: r.timestamp,
          headers: [
            ...r.headers.filter(([name]) => name !== ID_HEADER),
            [DEAD_LETTER_HEADERS.error, reason.slice(0, 1000)],
            [DEAD_LETTER_HEADERS.code, code],
            [DEAD_LETTER_HEADERS.topic, r.topic],
            [DEAD_LETTER_HEADERS.partition, String(r.partition)],
            [DEAD_LETTER_HEADERS.offset, String(r.offset)],
            ...(this.#group ? [[DEAD_LETTER_HEADERS.group, this.#group] as const] : []),
          ],
        },
      })),
    )
    const refused = results.find((r) => r.status === 'refused')
    if (refused?.status === 'refused') {
      throw new SpillwayError(
        refused.error.code,
        `the dead-letter topic refused the record: ${refused.error.message}`,
        {
          cause: refused.error,
        },
      )
    }
  }

  async close(): Promise<void> {
    const producer = await this.#producer?.catch(() => undefined)
    await producer?.close()
  }
}
