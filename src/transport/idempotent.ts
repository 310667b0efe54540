/**
 * Idempotent produce requests built by spillway: record batches from record-batch.ts, sent with the
 * client library's connections and protocol parser. Leaders come from the cluster's one metadata cache;
 * the client obtains the producer id (InitProducerId); this class owns the sequence numbers.
 *
 * Rules:
 * - Sequences are reserved per partition and the request is handed to its connection in the same
 *   synchronous step, so requests for one partition leave in sequence order.
 * - A batch that fails with a retriable error is sent again *as the same bytes* (same producer id, epoch
 *   and sequence) up to `retries` times, to the partition's current leader. If the first copy was
 *   written after all, the broker recognises the sequence and does not write it twice.
 * - Once a batch has finally failed, its sequence is a gap the broker would refuse to skip. When Kafka
 *   definitely did not write it and nothing was numbered after it, its partition's sequence is simply
 *   taken back. Otherwise (an ambiguous failure, or later batches already numbered) the producer id is
 *   dropped, and the next send obtains a new one and starts every partition at sequence 0.
 * - Outcomes are per partition: a failure on one partition decides only its own records.
 */

import {
  type Connection,
  ConnectionPool,
  createAPI,
  type Producer,
  produceV9,
  protocolErrorsCodesById,
  Writer,
} from '@platformatic/kafka'
import { channel } from '../channels.ts'
import { classify } from './classify.ts'
import type { BrokerAddress, MetadataCache } from './metadata-cache.ts'
import { encodeRecordBatch, type ProducerIdentity } from './record-batch.ts'
import type { OutboundRecord, RecordOutcome } from './transport.ts'

/** Kafka sequence numbers are int32 and wrap to 0. */
const SEQUENCE_MODULO = 2 ** 31
const ACKS_ALL = -1
/** The broker already has this batch (its sequence is in the producer's recent history): a success. */
const DUPLICATE_SEQUENCE_NUMBER = 46
/**
 * Kafka did not write the batch because one numbered before it is missing: with several spillway
 * producers sharing this sender, another one's batch failed just before. Not a broken producer: the batch
 * is numbered again under a new producer id and sent again.
 */
const OUT_OF_ORDER = 'OUT_OF_ORDER_SEQUENCE_NUMBER'
/** Answers that mean the metadata cache is out of date for the topic. */
const STALE_METADATA = new Set([
  'NOT_LEADER_OR_FOLLOWER',
  'UNKNOWN_TOPIC_OR_PARTITION',
  'FENCED_LEADER_EPOCH',
])
/** Answers after which the batch may be in the log although the request failed. */
const WRITTEN_MAYBE = new Set(['REQUEST_TIMED_OUT', 'NOT_ENOUGH_REPLICAS_AFTER_APPEND'])

interface PartitionBatch {
  readonly topic: string
  readonly partition: number
  readonly indexes: readonly number[]
  /** Encoded once, with the sequence reserved for it; every retry sends these same bytes. */
  bytes?: Buffer | undefined
  /** The sequence number of its first record. */
  sequence?: number | undefined
  /** An earlier attempt may have been written, so a later definite refusal does not settle it. */
  maybeWritten?: boolean
  /** Refused as out of order: numbered again (new producer id) before its next attempt. */
  renumber?: boolean
}

interface ProduceTopic {
  readonly name: string
  readonly partitions: PartitionBatch[]
}

/** Produce v9: the first flexible version; brokers from Kafka 2.8 to 4.x accept it. */
function createProduceRequest(acks: number, timeoutMs: number, topics: ProduceTopic[]): Writer {
  return Writer.create()
    .appendString(null) // transactional_id
    .appendInt16(acks)
    .appendInt32(timeoutMs)
    .appendArray(topics, (w: Writer, topic: ProduceTopic) => {
      w.appendString(topic.name).appendArray(topic.partitions, (w: Writer, p: PartitionBatch) => {
        const bytes = p.bytes as Buffer
        w.appendInt32(p.partition)
          .appendUnsignedVarInt(bytes.length + 1)
          .append(bytes)
      })
    })
    .appendTaggedFields()
}

interface ProduceResponse {
  readonly responses: readonly {
    readonly name: string
    readonly partitionResponses: readonly { readonly index: number; readonly errorCode: number }[]
  }[]
}

const produceApi = createAPI(0, 9, createProduceRequest, produceV9.parseResponse)

function produce(
  connection: Connection,
  timeoutMs: number,
  topics: ProduceTopic[],
): Promise<ProduceResponse> {
  return new Promise((resolve, reject) => {
    produceApi(connection, ACKS_ALL, timeoutMs, topics, (error: unknown, response: unknown) => {
      if (error) reject(error)
      else resolve(response as ProduceResponse)
    })
  })
}

/** The outcome of a partition's answer, or undefined for success. */
function answerOutcome(errorCode: number): RecordOutcome | undefined {
  if (errorCode === 0 || errorCode === DUPLICATE_SEQUENCE_NUMBER) return undefined
  const name = (protocolErrorsCodesById as Record<number, string>)[errorCode] ?? `error code ${errorCode}`
  const c = classify({ apiId: name })
  return { kind: 'error', errorClass: c.errorClass, reason: name, ambiguous: WRITTEN_MAYBE.has(name) }
}

function failure(error: unknown): RecordOutcome & { kind: 'error' } {
  const c = classify(error)
  return { kind: 'error', errorClass: c.errorClass, reason: c.reason, ambiguous: c.ambiguous }
}

/** Published before a failed batch is sent again: `{ attempt, partitions, reasons }`. */
const retryChannel = channel('spillway:transport:retry')

const sleep = (ms: number) => new Promise((resolve) => setTimeout(resolve, ms))

export interface IdempotentSenderOptions {
  readonly clientId: string
  readonly requestTimeoutMs: number
  /** Times a failed batch is sent again as the same bytes. */
  readonly retries: number
  readonly retryDelayMs: number
  readonly connection: Readonly<Record<string, unknown>>
}

export class IdempotentSender {
  readonly #client: Producer<Buffer, Buffer, Buffer, Buffer>
  readonly #options: IdempotentSenderOptions
  readonly #pool: ConnectionPool
  readonly #metadata: MetadataCache
  #identity: Promise<ProducerIdentity> | undefined
  /** Sends under way, so a replaced sender can close once they have settled. */
  readonly #active = new Set<Promise<unknown>>()
  /** Settles when the latest send() has handed its first requests over (see send). */
  #turn: Promise<void> = Promise.resolve()
  readonly #sequences = new Map<string, number>()

  constructor(
    client: Producer<Buffer, Buffer, Buffer, Buffer>,
    options: IdempotentSenderOptions,
    metadata: MetadataCache,
  ) {
    this.#client = client
    this.#options = options
    this.#metadata = metadata
    // The broker waits up to requestTimeoutMs for its replicas; the connection gives it a second more to
    // answer before it calls the request lost.
    this.#pool = new ConnectionPool(options.clientId, {
      ...options.connection,
      requestTimeout: options.requestTimeoutMs + 1000,
    })
  }

  /** The producer id in use, once obtained. */
  identity(): Promise<ProducerIdentity> {
    if (this.#identity === undefined) {
      const pending = this.#client.initIdempotentProducer({}).then(
        (info) => ({ producerId: info.producerId as bigint, producerEpoch: info.producerEpoch as number }),
        (error: unknown) => {
          if (this.#identity === pending) this.#identity = undefined
          throw error
        },
      )
      this.#identity = pending
    }
    return this.#identity
  }

  /** Drops the producer id (after a failed batch, or a fatal answer); the next send obtains a new one. */
  reset(): void {
    this.#identity = undefined
    this.#sequences.clear()
  }

  /**
   * Sends the records; one outcome per record, in input order. Concurrent calls hand their first
   * requests to the connections in call order (each waits for the one before it to have done so), so
   * sequence numbers, and with them the order Kafka keeps, follow the order of the calls.
   */
  async send(records: readonly OutboundRecord[]): Promise<RecordOutcome[]> {
    const previous = this.#turn
    let released = false
    let releaseTurn: () => void = () => undefined
    this.#turn = new Promise<void>((resolve) => {
      releaseTurn = resolve
    })
    const release = () => {
      if (released) return
      released = true
      releaseTurn()
    }
    const sending = (async () => {
      try {
        await previous
        return await this.#send(records, release)
      } finally {
        release()
      }
    })()
    this.#active.add(sending)
    try {
      return await sending
    } finally {
      this.#active.delete(sending)
    }
  }

  async #send(records: readonly OutboundRecord[], handedOver: () => void): Promise<RecordOutcome[]> {
    const outcomes = new Array<RecordOutcome>(records.length)
    const settle = (batch: PartitionBatch, outcome: RecordOutcome) => {
      for (const i of batch.indexes) outcomes[i] = outcome
    }
    const batches = groupByPartition(records)
    let pending: Promise<ProducerIdentity>
    let identity: ProducerIdentity
    try {
      pending = this.identity()
      identity = await pending
    } catch (error) {
      // no producer id: nothing was sent
      const outcome = { ...failure(error), ambiguous: false }
      for (const b of batches) settle(b, outcome)
      return outcomes
    }

    let queue = batches
    const failed: PartitionBatch[] = []
    const reasons = new Set<string>()
    for (let attempt = 0; queue.length > 0; attempt++) {
      if (attempt > 0) {
        if (retryChannel.hasSubscribers) {
          retryChannel.publish({ attempt, partitions: queue.length, reasons: [...reasons] })
        }
        reasons.clear()
        await sleep(this.#options.retryDelayMs)
        if (queue.some((b) => b.renumber)) {
          // the old numbering has a gap: a new producer id, and these batches numbered under it
          if (this.#identity === pending) this.reset()
          try {
            pending = this.identity()
            identity = await pending
          } catch (error) {
            const outcome = { ...failure(error), ambiguous: false }
            for (const b of queue) settle(b, b.maybeWritten ? { ...outcome, ambiguous: true } : outcome)
            return outcomes
          }
          for (const b of queue) {
            if (!b.renumber) continue
            b.renumber = false
            b.bytes = undefined
            b.sequence = undefined
          }
        }
      }
      const again: PartitionBatch[] = []
      const last = attempt >= this.#options.retries
      const fail = (batch: PartitionBatch, outcome: RecordOutcome & { kind: 'error' }) => {
        if (outcome.ambiguous) batch.maybeWritten = true
        if (!last && outcome.reason === OUT_OF_ORDER && !batch.maybeWritten) {
          batch.renumber = true
          again.push(batch)
          reasons.add(outcome.reason)
          return
        }
        // Retry only what might go through on its own; poison and fatal answers are final at once.
        if (!last && outcome.errorClass === 'retriable') {
          again.push(batch)
          reasons.add(outcome.reason)
        } else {
          settle(batch, batch.maybeWritten ? { ...outcome, ambiguous: true } : outcome)
          failed.push(batch)
        }
      }
      const byLeader = await this.#route(queue, attempt > 0, fail)
      // The next call may go once every leader has this call's first request (or could not get it).
      let waiting = byLeader.size
      const handed = () => {
        if (--waiting === 0) handedOver()
      }
      if (waiting === 0) handedOver()
      await Promise.all(
        [...byLeader.values()].map(async ({ broker, batches: group }) => {
          let connection: Connection
          try {
            connection = await this.#pool.get(broker)
          } catch (error) {
            handed()
            // no connection: nothing was sent on this attempt
            for (const b of group) fail(b, { ...failure(error), ambiguous: false })
            return
          }
          // From here to the hand-over to the connection nothing awaits: sequence order is send order.
          for (const b of group) {
            if (b.bytes === undefined) {
              const key = `${b.topic}\u0000${b.partition}`
              const sequence = this.#sequences.get(key) ?? 0
              this.#sequences.set(key, (sequence + b.indexes.length) % SEQUENCE_MODULO)
              b.bytes = encodeRecordBatch(records, b.indexes, identity, sequence)
              b.sequence = sequence
            }
          }
          // produce() writes the request to the connection before it returns its promise
          const answered = produce(connection, this.#options.requestTimeoutMs, byTopic(group))
          handed()
          try {
            await answered
            for (const b of group) settle(b, { kind: 'ok' })
          } catch (error) {
            const answer = (error as { response?: ProduceResponse }).response
            if (answer === undefined) {
              for (const b of group) fail(b, failure(error))
              return
            }
            for (const b of group) {
              const code = answer.responses
                .find((t) => t.name === b.topic)
                ?.partitionResponses.find((p) => p.index === b.partition)?.errorCode
              const outcome = code === undefined ? failure(error) : answerOutcome(code)
              if (outcome !== undefined && outcome.kind === 'error' && STALE_METADATA.has(outcome.reason))
                this.#metadata.invalidate(b.topic)
              if (outcome === undefined) settle(b, { kind: 'ok' })
              else fail(b, outcome as RecordOutcome & { kind: 'error' })
            }
          }
        }),
      )
      queue = again
    }
    if (failed.length > 0 && this.#identity === pending) this.#closeGaps(failed)
    return outcomes
  }

  /**
   * Failed batches left gaps in their partitions' sequences. A batch Kafka definitely refused, with
   * nothing numbered after it, gives its numbers back; any other gap means a new producer id.
   */
  #closeGaps(failed: readonly PartitionBatch[]): void {
    for (const b of failed) {
      if (b.sequence === undefined) continue // never numbered: no gap
      const key = `${b.topic}\u0000${b.partition}`
      const next = (b.sequence + b.indexes.length) % SEQUENCE_MODULO
      if (!b.maybeWritten && this.#sequences.get(key) === next) {
        this.#sequences.set(key, b.sequence)
      } else {
        this.reset()
        return
      }
    }
  }

  /** Groups batches by their partition's current leader; a batch whose leader is unknown fails. */
  async #route(
    batches: readonly PartitionBatch[],
    refresh: boolean,
    fail: (batch: PartitionBatch, outcome: RecordOutcome & { kind: 'error' }) => void,
  ): Promise<Map<number, { broker: BrokerAddress; batches: PartitionBatch[] }>> {
    const byLeader = new Map<number, { broker: BrokerAddress; batches: PartitionBatch[] }>()
    const topics = [...new Set(batches.map((b) => b.topic))]
    await Promise.all(
      topics.map(async (topic) => {
        try {
          const info = await this.#metadata.topic(topic, { refresh })
          for (const b of batches) {
            if (b.topic !== topic) continue
            const leader = info?.partitions[b.partition]?.leader
            const broker = leader === undefined ? undefined : this.#metadata.broker(leader)
            if (leader === undefined || broker === undefined) {
              fail(b, {
                kind: 'error',
                errorClass: 'retriable',
                reason: `no leader known for ${topic}/${b.partition}`,
                ambiguous: false,
              })
              continue
            }
            const group = byLeader.get(leader)
            if (group) group.batches.push(b)
            else byLeader.set(leader, { broker, batches: [b] })
          }
        } catch (error) {
          // Nothing was sent for this topic on this attempt.
          const outcome = { ...failure(error), ambiguous: false }
          for (const b of batches) if (b.topic === topic) fail(b, outcome)
        }
      }),
    )
    return byLeader
  }

  async close(): Promise<void> {
    await this.#pool.close().catch(() => undefined)
  }

  /** Closes once the sends under way have settled (a sender replaced by a rebuild). */
  async closeWhenIdle(): Promise<void> {
    await Promise.allSettled([...this.#active])
    await this.close()
  }
}

function groupByPartition(records: readonly OutboundRecord[]): PartitionBatch[] {
  const byTopic = new Map<string, PartitionBatch[]>()
  const batches: PartitionBatch[] = []
  for (let i = 0; i < records.length; i++) {
    const r = records[i] as OutboundRecord
    let partitions = byTopic.get(r.topic)
    if (partitions === undefined) {
      partitions = []
      byTopic.set(r.topic, partitions)
    }
    let batch = partitions[r.partition]
    if (batch === undefined) {
      batch = { topic: r.topic, partition: r.partition, indexes: [] }
      partitions[r.partition] = batch
      batches.push(batch)
    }
    ;(batch.indexes as number[]).push(i)
  }
  return batches
}

function byTopic(batches: readonly PartitionBatch[]): ProduceTopic[] {
  const topics = new Map<string, PartitionBatch[]>()
  for (const b of batches) {
    const list = topics.get(b.topic)
    if (list) list.push(b)
    else topics.set(b.topic, [b])
  }
  return [...topics].map(([name, partitions]) => ({ name, partitions }))
}
