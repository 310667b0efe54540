/**
 * The @platformatic/kafka adapter. One idempotent producer (acks=all) per transport. The client finds
 * leaders and obtains the producer id; spillway builds the record batches and owns their sequence
 * numbers (idempotent.ts). Its retries of a batch are capped here: spillway's own breaker and log
 * already own retrying.
 */
import { Admin, Connection, describeProducersV0, ProduceAcks, Producer } from '@platformatic/kafka'
import { classify } from './classify.ts'
import { withDeadline } from './deadline.ts'
import { IdempotentSender } from './idempotent.ts'
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

export class PlatformaticTransport implements Transport {
  readonly #options: KafkaConnectionOptions
  #producer: Producer<Buffer, Buffer, Buffer, Buffer>
  #sender: IdempotentSender
  #admin: Admin | undefined
  #initializations = 1
  #closed = false

  constructor(options: KafkaConnectionOptions) {
    this.#options = options
    this.#producer = this.#createProducer()
    this.#sender = this.#createSender(this.#producer)
  }

  #createProducer(): Producer<Buffer, Buffer, Buffer, Buffer> {
    return new Producer<Buffer, Buffer, Buffer, Buffer>({
      ...baseOptions(this.#options),
      idempotent: true,
      acks: ProduceAcks.ALL,
    } as ConstructorParameters<typeof Producer<Buffer, Buffer, Buffer, Buffer>>[0])
  }

  #createSender(producer: Producer<Buffer, Buffer, Buffer, Buffer>): IdempotentSender {
    // A failed batch is sent again with the *same* sequence number, so the broker drops a copy it
    // already has; spillway's own retries go through the log after waiting for the real outcome.
    return new IdempotentSender(producer, {
      clientId: this.#options.clientId,
      requestTimeoutMs: this.#options.requestTimeoutMs ?? 5000,
      retries: this.#options.clientRetries ?? 2,
      retryDelayMs: 100,
      connection: baseOptions(this.#options),
    })
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
        // fresh from the broker: the dispatcher keeps the count for metadataMaxAgeMs itself
        this.#producer.metadata({ topics: [topic], retries: 2, forceUpdate: true }),
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
    // The request keeps running past our deadline (it may still succeed); `settled` carries its real
    // outcome so the dispatcher can wait for it instead of sending the records again.
    const settled = this.#sender.send(records)
    try {
      return await withDeadline(settled, deadlineMs, 'produce')
    } catch {
      // One late outcome per partition: that is the unit a request succeeds or fails in.
      const late = new Map<string, Promise<RecordOutcome>>()
      return records.map((r, i) => {
        const key = `${r.topic}\u0000${r.partition}`
        let outcome = late.get(key)
        if (outcome === undefined) {
          outcome = settled.then((all) => all[i] as RecordOutcome)
          late.set(key, outcome)
        }
        return {
          kind: 'error',
          errorClass: 'retriable',
          reason: `no answer within ${deadlineMs} ms`,
          ambiguous: true,
          late: outcome,
        }
      })
    }
  }

  async rebuild(_reason: string): Promise<void> {
    const old = this.#producer
    const oldSender = this.#sender
    this.#producer = this.#createProducer()
    this.#sender = this.#createSender(this.#producer)
    this.#initializations++
    // requests of the old sender still under way keep their connections until they settle: cutting them
    // would turn a batch Kafka may have written into an ambiguous failure sent again under a new id
    void oldSender.closeWhenIdle().then(() => old.close(true).catch(() => undefined))
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
    await Promise.allSettled([this.#producer.close(true), this.#sender.close(), this.#admin?.close()])
  }
}
