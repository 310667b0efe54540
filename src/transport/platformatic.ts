/**
 * The @platformatic/kafka adapter: one cluster object with its facets.
 *
 * - producer: one idempotent producer (acks=all). The client obtains the producer id; spillway builds
 *   the record batches and owns their sequence numbers (idempotent.ts). Its retries of a batch are
 *   capped here: spillway's own breaker and log already own retrying.
 * - admin: admin.ts, on an Admin client made on first use.
 * - group: group.ts; heartbeats and commits on the Admin client's connections, fetches on a client per
 *   consumer (its fetch sessions).
 * - one MetadataCache (metadata-cache.ts) that both read, fed by the Admin client's Metadata requests.
 */
import { Admin, Consumer, FetchIsolationLevels, ProduceAcks, Producer } from '@platformatic/kafka'
import { PlatformaticAdmin, snapshotOf } from './admin.ts'
import { clientErrorFacts } from './classify.ts'
import type { Cluster, ProducerFacet } from './cluster.ts'
import { withDeadline } from './deadline.ts'
import { PlatformaticGroup } from './group.ts'
import { IdempotentSender } from './idempotent.ts'
import { type ClusterSnapshot, MetadataCache } from './metadata-cache.ts'
import type { KafkaConnectionOptions, OutboundRecord, RecordOutcome } from './transport.ts'

const DEFAULT_METADATA_MAX_AGE_MS = 30_000

/** The client options every @platformatic/kafka client of a cluster is made with. */
export function baseOptions(o: KafkaConnectionOptions): Record<string, unknown> {
  const base: Record<string, unknown> = {
    clientId: o.clientId,
    bootstrapBrokers: [...o.brokers],
    timeout: o.requestTimeoutMs ?? 5000,
    connectTimeout: Math.min(o.requestTimeoutMs ?? 5000, 5000),
    retries: o.clientRetries ?? 2,
    retryDelay: 100,
    // spillway's MetadataCache decides when metadata is stale; the client always asks the broker
    metadataMaxAge: 0,
  }
  if (o.tls) base.tls = o.tls
  if (o.sasl) base.sasl = { ...o.sasl }
  return base
}

class IdempotentProducerFacet implements ProducerFacet {
  readonly #options: KafkaConnectionOptions
  readonly #metadata: MetadataCache
  #producer: Producer<Buffer, Buffer, Buffer, Buffer>
  #sender: IdempotentSender
  #initializations = 1

  constructor(options: KafkaConnectionOptions, metadata: MetadataCache) {
    this.#options = options
    this.#metadata = metadata
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
    return new IdempotentSender(
      producer,
      {
        clientId: this.#options.clientId,
        requestTimeoutMs: this.#options.requestTimeoutMs ?? 5000,
        retries: this.#options.clientRetries ?? 2,
        retryDelayMs: 100,
        connection: baseOptions(this.#options),
      },
      this.#metadata,
    )
  }

  get initializations(): number {
    return this.#initializations
  }

  get producerId(): bigint | undefined {
    return this.#producer.producerId
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

  async close(): Promise<void> {
    await Promise.allSettled([this.#producer.close(true), this.#sender.close()])
  }
}

export class PlatformaticCluster implements Cluster {
  readonly #options: KafkaConnectionOptions
  readonly metadata: MetadataCache
  readonly admin: PlatformaticAdmin
  readonly group: PlatformaticGroup
  #adminClient: Admin | undefined
  #producer: IdempotentProducerFacet | undefined
  #closed = false

  constructor(options: KafkaConnectionOptions) {
    this.#options = options
    this.metadata = new MetadataCache(
      (topics) => this.#fetchMetadata(topics),
      options.metadataMaxAgeMs ?? DEFAULT_METADATA_MAX_AGE_MS,
    )
    this.admin = new PlatformaticAdmin(() => this.#admin(), this.metadata)
    this.group = new PlatformaticGroup(
      () => this.#admin(),
      this.metadata,
      (session) =>
        new Consumer<Buffer, Buffer, Buffer, Buffer>({
          ...baseOptions(this.#options),
          clientId: `${this.#options.clientId}-${session}`,
          // never joined: the group facet owns membership; this client only keeps fetch sessions
          groupId: `spillway-fetch-${session}`,
          // only broker addresses come from this client's metadata; spillway's cache owns the rest
          metadataMaxAge: this.#options.metadataMaxAgeMs ?? DEFAULT_METADATA_MAX_AGE_MS,
          isolationLevel: FetchIsolationLevels.READ_COMMITTED,
        } as unknown as ConstructorParameters<typeof Consumer<Buffer, Buffer, Buffer, Buffer>>[0]),
      (session) =>
        new Admin({
          ...baseOptions(this.#options),
          clientId: `${this.#options.clientId}-${session}-group`,
        } as unknown as ConstructorParameters<typeof Admin>[0]),
    )
  }

  /** The producer facet; its Kafka producer is made on first use, so an admin-only lease makes none. */
  get producer(): IdempotentProducerFacet {
    this.#producer ??= new IdempotentProducerFacet(this.#options, this.metadata)
    return this.#producer
  }

  /** The producer facet if something has used it (reading it here does not make one). */
  get producerIfMade(): IdempotentProducerFacet | undefined {
    return this.#producer
  }

  #admin(): Admin {
    if (this.#closed) throw new Error('the cluster connection is closed')
    this.#adminClient ??= new Admin(
      baseOptions(this.#options) as unknown as ConstructorParameters<typeof Admin>[0],
    )
    return this.#adminClient
  }

  async #fetchMetadata(topics: readonly string[]): Promise<ClusterSnapshot> {
    try {
      return snapshotOf(
        // asked the way the Java producer asks: a broker that creates topics on first use creates it now
        await this.#admin().metadata({ topics: [...topics], forceUpdate: true, autocreateTopics: true }),
      )
    } catch (error) {
      // a topic that does not exist is an answer, not a failure
      if (clientErrorFacts(error).names.has('UNKNOWN_TOPIC_OR_PARTITION'))
        return { clusterId: '', controllerId: -1, brokers: [], topics: [] }
      throw error
    }
  }

  async close(): Promise<void> {
    if (this.#closed) return
    this.#closed = true
    await Promise.allSettled([this.#producer?.close(), this.#adminClient?.close(), this.group.close()])
  }
}
