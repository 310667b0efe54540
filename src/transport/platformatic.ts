/**
 * The @platformatic/kafka adapter. One idempotent producer (acks=all) per transport. Its retries are
 * capped here: idempotence would otherwise turn them into "retry forever", and spillway's own breaker
 * and log already own retrying.
 */
import { Admin, Connection, describeProducersV0, ProduceAcks, Producer } from '@platformatic/kafka'
import { classify } from './classify.ts'
import { withDeadline } from './deadline.ts'
import {
  type KafkaConnectionOptions,
  type OutboundRecord,
  type ProducerDescription,
  type RecordOutcome,
  type Transport,
  TransportError,
} from './transport.ts'

function baseOptions(o: KafkaConnectionOptions): Record<string, unknown> {
  const base: Record<string, unknown> = {
    clientId: o.clientId,
    bootstrapBrokers: [...o.brokers],
    timeout: o.requestTimeoutMs ?? 5000,
    connectTimeout: Math.min(o.requestTimeoutMs ?? 5000, 5000),
    retries: o.clientRetries ?? 2,
    retryDelay: 100,
    metadataMaxAge: 30_000,
  }
  if (o.tls) base.tls = o.tls
  if (o.sasl) base.sasl = { ...o.sasl }
  return base
}

/** Header names repeat on every record: encode each once (bounded, in case names are unbounded). */
const headerKeys = new Map<string, Buffer>()
function headerKeyBytes(name?: string): Buffer | undefined {
  if (name === undefined) return undefined
  let bytes = headerKeys.get(name)
  if (bytes === undefined) {
    bytes = Buffer.from(name)
    if (headerKeys.size >= 1024) headerKeys.clear()
    headerKeys.set(name, bytes)
  }
  return bytes
}

export class PlatformaticTransport implements Transport {
  readonly #options: KafkaConnectionOptions
  #producer: Producer<Buffer, Buffer, string, Buffer>
  #admin: Admin | undefined
  #initializations = 1
  #closed = false

  constructor(options: KafkaConnectionOptions) {
    this.#options = options
    this.#producer = this.#createProducer()
  }

  #createProducer(): Producer<Buffer, Buffer, string, Buffer> {
    // The idempotent producer retries a failed request with the *same* sequence numbers, so the broker
    // drops a copy it already has. Capped, because idempotence turns retries <= 1 into "retry forever";
    // spillway's own retries go through the log after waiting for the request's real outcome.
    const retries = Math.max(2, this.#options.clientRetries ?? 2)
    return new Producer<Buffer, Buffer, string, Buffer>({
      ...baseOptions(this.#options),
      retries,
      idempotent: true,
      acks: ProduceAcks.ALL,
      serializers: { headerKey: headerKeyBytes },
    } as ConstructorParameters<typeof Producer<Buffer, Buffer, string, Buffer>>[0])
  }

  get initializations(): number {
    return this.#initializations
  }

  /** The idempotent producer id, once the first send has initialised it. */
  get producerId(): bigint | undefined {
    return this.#producer.producerId
  }

  async partitions(topic: string, deadlineMs: number): Promise<number> {
    try {
      const metadata = await withDeadline(
        this.#producer.metadata({ topics: [topic], retries: 2 }),
        deadlineMs,
        'metadata',
      )
      const info = metadata.topics.get(topic)
      if (!info) throw new TransportError(`topic ${topic} does not exist`, 'poison', false)
      return info.partitionsCount
    } catch (error) {
      if (error instanceof TransportError) throw error
      const c = classify(error)
      if (/UNKNOWN_TOPIC_OR_PARTITION|unknown topic/i.test(`${c.reason} ${(error as Error).message}`)) {
        throw new TransportError(`topic ${topic} does not exist`, 'poison', false, error)
      }
      if (c.reason.includes('INVALID_TOPIC_EXCEPTION')) {
        throw new TransportError(`topic name ${JSON.stringify(topic)} is invalid`, 'poison', false, error)
      }
      throw new TransportError(
        `metadata for ${topic} failed: ${c.reason}`,
        c.errorClass === 'poison' ? 'poison' : 'retriable',
        false,
        error,
      )
    }
  }

  async send(records: readonly OutboundRecord[], deadlineMs: number): Promise<RecordOutcome[]> {
    // One request per topic, so a failure confined to one topic does not decide the others' outcome.
    const byTopic = new Map<string, number[]>()
    records.forEach((r, i) => {
      const list = byTopic.get(r.topic)
      if (list) list.push(i)
      else byTopic.set(r.topic, [i])
    })
    const outcomes: RecordOutcome[] = new Array(records.length)
    await Promise.all(
      [...byTopic.values()].map(async (indexes) => {
        const messages = indexes.map((i) => {
          const r = records[i] as OutboundRecord
          const message: Record<string, unknown> = {
            topic: r.topic,
            partition: r.partition,
            value: r.value,
            headers: new Map(r.headers as [string, Buffer][]),
            timestamp: BigInt(r.timestamp),
          }
          if (r.key !== undefined) message.key = r.key
          return message as never
        })
        // The client's request keeps running past our deadline (it may still succeed); `settled` carries
        // its real outcome so the dispatcher can wait for it instead of sending the records again.
        const settled: Promise<RecordOutcome> = this.#producer.send({ messages }).then(
          (): RecordOutcome => ({ kind: 'ok' }),
          (error: unknown): RecordOutcome => {
            const c = classify(error)
            return { kind: 'error', errorClass: c.errorClass, reason: c.reason, ambiguous: c.ambiguous }
          },
        )
        let outcome: RecordOutcome
        try {
          outcome = await withDeadline(settled, deadlineMs, 'produce')
        } catch {
          outcome = {
            kind: 'error',
            errorClass: 'retriable',
            reason: `no answer within ${deadlineMs} ms`,
            ambiguous: true,
            late: settled,
          }
        }
        for (const i of indexes) outcomes[i] = outcome
      }),
    )
    return outcomes
  }

  async rebuild(_reason: string): Promise<void> {
    const old = this.#producer
    this.#producer = this.#createProducer()
    this.#initializations++
    await old.close(true).catch(() => undefined)
  }

  async describeProducers(topics: readonly string[], deadlineMs: number): Promise<ProducerDescription[]> {
    this.#admin ??= new Admin(baseOptions(this.#options) as unknown as ConstructorParameters<typeof Admin>[0])
    const metadata = await withDeadline(this.#admin.metadata({ topics: [...topics] }), deadlineMs, 'metadata')
    // DescribeProducers must go to each partition's leader.
    const byLeader = new Map<number, { name: string; partitionIndexes: number[] }[]>()
    for (const topic of topics) {
      const info = metadata.topics.get(topic)
      if (!info) continue
      info.partitions.forEach((p, index) => {
        const list = byLeader.get(p.leader) ?? []
        let entry = list.find((e) => e.name === topic)
        if (!entry) {
          entry = { name: topic, partitionIndexes: [] }
          list.push(entry)
        }
        entry.partitionIndexes.push(index)
        byLeader.set(p.leader, list)
      })
    }
    const out: ProducerDescription[] = []
    for (const [leader, request] of byLeader) {
      const broker = metadata.brokers.get(leader)
      if (!broker) continue
      const connection = new Connection(this.#options.clientId)
      try {
        await withDeadline(
          connection.connect(broker.host, broker.port) as Promise<void>,
          deadlineMs,
          'connect',
        )
        const response = await withDeadline(
          describeProducersV0.api.async(connection, request),
          deadlineMs,
          'DescribeProducers',
        )
        for (const t of response.topics) {
          for (const p of t.partitions) {
            out.push({
              topic: t.name,
              partition: p.partitionIndex,
              producerIds: p.activeProducers.map((a) => a.producerId),
            })
          }
        }
      } finally {
        await connection.close().catch(() => undefined)
      }
    }
    return out
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await Promise.allSettled([this.#producer.close(true), this.#admin?.close()])
  }
}
