/**
 * Where events Kafka will never take go. A poison record becomes a dead letter: the event itself plus
 * `spillway-dead-letter-reason` and `spillway-original-topic` headers, appended to the dead-letter log, or
 * to the outbox of a dead-letter topic when `deadLetterTopics` routes its topic there (a second
 * dispatcher delivers the outbox). A dead letter its topic refuses too is kept in the dead-letter log.
 * Every dead letter is reported on the producer's status stream.
 */
import type { DurableLog } from '../log/log.ts'
import type { PoisonedRecord } from './dispatcher.ts'
import { type Envelope, encodeEnvelope } from './envelope.ts'
import type { ProducerStatus } from './types.ts'

/** A poison record as a dead letter: its event with `headers` (and `topic`, if given). */
export function deadLetterOf(
  record: PoisonedRecord,
  headers: readonly (readonly [string, Buffer])[],
  topic?: string,
): Envelope {
  const e = record.envelope
  if (e) return { ...e, topic: topic || e.topic, headers }
  // an envelope that cannot be decoded is kept whole, as the value
  return {
    id: `undecodable-${record.seq}`,
    topic: '',
    key: undefined,
    value: record.payload,
    headers,
    timestamp: Date.now(),
  }
}

export interface DeadLetterLogs {
  /** Absent in `kafka` and `memory` modes without a log: dead letters are then counted and reported only. */
  readonly deadLetterLog: DurableLog | undefined
  /** Present when `deadLetterTopics` routes anything. */
  readonly outboxLog: DurableLog | undefined
}

/** Dead letters by original topic and reason, as counted since the producer started. */
export interface DeadLetterCount {
  readonly topic: string
  readonly reason: string
  readonly count: number
}

export class DeadLetters {
  readonly #logs: DeadLetterLogs
  readonly #counts = new Map<string, { topic: string; reason: string; count: number }>()
  readonly #routes: Readonly<Record<string, string>>
  readonly #report: (status: ProducerStatus) => void

  constructor(
    logs: DeadLetterLogs,
    routes: Readonly<Record<string, string>>,
    report: (status: ProducerStatus) => void,
  ) {
    this.#logs = logs
    this.#routes = routes
    this.#report = report
  }

  /** Events dead-lettered (store()), whatever the path they came by. */
  total = 0

  #count(topic: string, reason: string): void {
    this.total++
    const key = `${topic}\u0000${reason}`
    const entry = this.#counts.get(key)
    if (entry) entry.count++
    else if (this.#counts.size < 1000) this.#counts.set(key, { topic, reason, count: 1 })
  }

  /** Dead letters so far, by topic and reason, most first. */
  counts(): DeadLetterCount[] {
    return [...this.#counts.values()].map((c) => ({ ...c })).sort((a, b) => b.count - a.count)
  }

  /** Stores a poison record from the main backlog; a rejection makes the dispatcher retry it later. */
  async store(record: PoisonedRecord): Promise<void> {
    const e = record.envelope
    this.#count(e?.topic ?? '', record.reason)
    const outbox = this.#logs.outboxLog
    const route = e && outbox ? (this.#routes[e.topic] ?? this.#routes['*']) : undefined
    this.#report({
      type: 'dead-letter',
      id: e?.id,
      topic: e?.topic,
      reason: record.reason,
      ...(route ? { deadLetterTopic: route } : {}),
    })
    const log = this.#logs.deadLetterLog
    if (!log) return // memory/kafka modes: counted, reported on the status stream and to kafka-mode callers
    const headers: (readonly [string, Buffer])[] = [
      ...(e?.headers ?? []),
      ['spillway-dead-letter-reason', Buffer.from(record.reason)],
      ['spillway-original-topic', Buffer.from(e?.topic ?? '')],
    ]
    const letter = deadLetterOf(record, headers)
    if (route && outbox) {
      // the dead-letter topic chooses its own partition from the key
      await outbox.append([encodeEnvelope({ ...letter, topic: route, partition: undefined })])
      return
    }
    await log.append([encodeEnvelope(letter)])
  }

  /** A dead letter its dead-letter topic refused as well: kept in the dead-letter log, under its own topic. */
  async keep(record: PoisonedRecord): Promise<void> {
    const e = record.envelope
    this.#report({ type: 'dead-letter', id: e?.id, topic: e?.topic, reason: record.reason })
    const original = e?.headers.find(([name]) => name === 'spillway-original-topic')?.[1].toString()
    const headers: (readonly [string, Buffer])[] = [
      ...(e?.headers ?? []),
      ['spillway-dead-letter-topic-error', Buffer.from(`${e?.topic ?? '?'}: ${record.reason}`)],
    ]
    const letter = deadLetterOf(record, headers, original)
    await (this.#logs.deadLetterLog as DurableLog).append([encodeEnvelope(letter)])
  }
}
