/**
 * A scripted cluster for unit tests of the dispatcher and the producer's admission: no broker. Each
 * send asks `script` for the outcome of every record (by its spillway-id, topic and partition and the
 * attempt number of that id), records what was sent, and can hold its answer until released, so tests
 * can make outcomes arrive late or out of order. Partition counts come from `partitions`.
 */

import { SpillwayError } from '../../src/errors.ts'
import type { AdminFacet, Cluster, ProducerFacet } from '../../src/transport/cluster.ts'
import { readRecordBody } from '../../src/transport/record-batch.ts'
import type { OutboundRecord, RecordOutcome } from '../../src/transport/transport.ts'

export interface SentRecord {
  readonly id: string
  readonly topic: string
  readonly partition: number
  readonly key: string | undefined
  readonly value: string
  /** 1 for the first time this id is sent, 2 for the second… */
  readonly attempt: number
  /** Which send() call carried it (0-based). */
  readonly call: number
}

/** The outcome of one record, knowing every record of the same call (Kafka answers per partition batch). */
export type Script = (record: SentRecord, call: readonly SentRecord[]) => RecordOutcome

export const OK: RecordOutcome = { kind: 'ok' }

export function retriable(reason = 'NOT_ENOUGH_REPLICAS', ambiguous = false): RecordOutcome {
  return { kind: 'error', errorClass: 'retriable', reason, ambiguous }
}

export function poison(reason = 'MESSAGE_TOO_LARGE'): RecordOutcome {
  return { kind: 'error', errorClass: 'poison', reason, ambiguous: false }
}

export class FakeCluster implements Pick<Cluster, 'producer' | 'admin'> {
  script: Script
  readonly partitionCounts: Map<string, number>
  /** Every record of every send, in the order the calls were made. */
  readonly sent: SentRecord[] = []
  /** Records per call. */
  readonly calls: SentRecord[][] = []
  rebuilds = 0
  /** When set, each send waits for this before answering. */
  gate: Promise<void> | undefined
  readonly #attempts = new Map<string, number>()

  constructor(script: Script = () => OK, partitions: Record<string, number> = {}) {
    this.script = script
    this.partitionCounts = new Map(Object.entries(partitions))
  }

  readonly producer: ProducerFacet = {
    initializations: 1,
    producerId: 1n,
    send: async (records: readonly OutboundRecord[]): Promise<RecordOutcome[]> => {
      const call = this.calls.length
      const sent = records.map((r) => {
        const body = readRecordBody(r.body)
        const id = body.headers.find(([name]) => name === 'spillway-id')?.[1].toString() ?? '?'
        const attempt = (this.#attempts.get(id) ?? 0) + 1
        this.#attempts.set(id, attempt)
        return {
          id,
          topic: r.topic,
          partition: r.partition,
          key: body.key?.toString(),
          value: body.value.toString(),
          attempt,
          call,
        }
      })
      this.calls.push(sent)
      this.sent.push(...sent)
      const outcomes = sent.map((s) => this.script(s, sent))
      if (this.gate) await this.gate
      return outcomes
    },
    rebuild: async () => {
      this.rebuilds++
    },
  }

  readonly admin: AdminFacet = {
    partitions: async (topic: string) => {
      const count = this.partitionCounts.get(topic)
      if (count === undefined)
        throw new SpillwayError('SPW_ERR_TOPIC_MISSING', `topic ${topic} does not exist`, {
          details: { topic },
        })
      return count
    },
    metadata: unsupported,
    describeProducers: unsupported,
    listOffsets: unsupported,
    describeConfigs: unsupported,
    describeLogDirs: unsupported,
    listGroups: unsupported,
    describeGroups: unsupported,
    committedOffsets: unsupported,
    createTopics: unsupported,
    describeTransactions: unsupported,
  }
}

async function unsupported(): Promise<never> {
  throw new Error('not scripted in FakeCluster')
}
