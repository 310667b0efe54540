/**
 * `spillway dead-letters replay --log DIR --brokers …`: once the cause of dead letters is fixed (the topic
 * created, the ACL granted, the limit raised), sends them back through delivery with their original ids,
 * keys, values and headers, and says how many went. The gateway (or producer) owning DIR must be stopped:
 * the command takes the directory's lock. Dead letters not replayed (other topics with `--topic`) stay.
 * A crash mid-replay can replay some twice, with the same ids: deduplicate downstream on `spillway-id`.
 */
import { join } from 'node:path'
import { SpillwayError } from '../errors.ts'
import { DurableLog, type LogPosition } from '../log/log.ts'
import { decodeEnvelope, type Envelope } from '../producer/envelope.ts'
import { createProducer } from '../producer/producer.ts'
import { parseArgs } from './args.ts'
import { parseSince, replayFromTopic } from './dead-letters-topic.ts'

export const deadLettersHelp = `Usage:
  spillway dead-letters replay --log DIR --brokers H:P[,H:P…] [--topic T…] [--dry-run] [--timeout MS]
      Sends the dead letters of the local log in DIR (DIR/dead-letter) back to their original topics,
      with their original ids, through DIR's own log (so nothing is lost if Kafka fails meanwhile), then
      removes them from the dead-letter log. --topic (repeatable, comma-separated) replays only those
      topics' dead letters; --dry-run only counts them. The gateway using DIR must be stopped first.
  spillway dead-letters replay --from-topic T --brokers H:P[,H:P…] [--to TOPIC] [--since WHEN] [--dry-run]
      Sends a consumer's or a sink's dead-letter topic T back: each dead letter to the topic it came from
      (its spillway-source-topic header) or to --to, with its original id, key, value and headers. Reads T
      to the end it has when the command starts; --since (2026-12-01T00:00:00Z, or 90m, 6h, 2d) takes only
      later ones. The dead letters stay in T (topics are append-only); --dry-run counts them by topic and
      error code.
`

/** The headers a dead letter gained on its way to the dead-letter log; replay sends the event without them. */
const DEAD_LETTER_HEADERS = new Set([
  'spillway-dead-letter-reason',
  'spillway-original-topic',
  'spillway-dead-letter-topic-error',
  'spillway-id',
])

interface Letter {
  readonly payload: Buffer
  readonly envelope: Envelope | undefined
  readonly topic: string
  readonly reason: string
}

function header(e: Envelope, name: string): string | undefined {
  return e.headers.find(([n]) => n === name)?.[1].toString()
}

async function readLetters(dir: string): Promise<{ letters: Letter[]; end: LogPosition | undefined }> {
  const log = await DurableLog.open({ dir })
  const reader = log.reader()
  const letters: Letter[] = []
  let end: LogPosition | undefined
  try {
    for (;;) {
      const records = await reader.read({ maxRecords: 10_000 })
      if (records.length === 0) break
      for (const r of records) {
        let envelope: Envelope | undefined
        try {
          envelope = decodeEnvelope(r.payload)
        } catch {
          envelope = undefined
        }
        const topic = envelope ? (header(envelope, 'spillway-original-topic') ?? envelope.topic) : ''
        const reason = envelope
          ? (header(envelope, 'spillway-dead-letter-reason') ?? 'unknown')
          : 'undecodable'
        letters.push({ payload: Buffer.from(r.payload), envelope, topic, reason })
        end = r.next
      }
    }
  } finally {
    await reader.close()
    await log.close()
  }
  return { letters, end }
}

export async function runDeadLettersCommand(
  argv: readonly string[],
  out: NodeJS.WritableStream,
): Promise<number> {
  const [sub, ...rest] = argv
  if (sub === undefined || sub === '--help' || sub === 'help') {
    out.write(deadLettersHelp)
    return sub === undefined ? 2 : 0
  }
  if (sub !== 'replay') {
    throw new SpillwayError(
      'SPW_ERR_INVALID_OPTION',
      `unknown dead-letters command ${JSON.stringify(sub)}; try replay`,
    )
  }
  const args = parseArgs(rest, {
    flags: ['dry-run', 'help'],
    values: ['log', 'brokers', 'topic', 'timeout', 'from-topic', 'to', 'since'],
  })
  if (args.flags.has('help')) {
    out.write(deadLettersHelp)
    return 0
  }
  const dir = args.flags.get('log')
  const fromTopic = args.flags.get('from-topic')
  if ((typeof dir === 'string') === (typeof fromTopic === 'string'))
    throw new SpillwayError(
      'SPW_ERR_INVALID_OPTION',
      'give one source: --log DIR (the gateway’s local dead letters) or --from-topic T (a dead-letter topic)',
    )
  if (typeof fromTopic === 'string') {
    const brokers = args.flags.get('brokers')
    if (typeof brokers !== 'string')
      throw new SpillwayError('SPW_ERR_INVALID_OPTION', '--brokers is required to read the dead-letter topic')
    const to = args.flags.get('to')
    const since = args.flags.get('since')
    return await replayFromTopic(
      {
        brokers: brokers.split(','),
        fromTopic,
        to: typeof to === 'string' ? to : undefined,
        since: typeof since === 'string' ? parseSince(since) : undefined,
        dryRun: args.flags.has('dry-run'),
        timeoutMs: Number(args.flags.get('timeout') ?? 60_000),
      },
      out,
    )
  }
  if (typeof dir !== 'string') return 2
  const topicsArg = args.flags.get('topic')
  const only = typeof topicsArg === 'string' ? new Set(topicsArg.split(',').filter(Boolean)) : undefined
  const timeoutMs = Number(args.flags.get('timeout') ?? 60_000)
  const deadLetterDir = join(dir, 'dead-letter')
  const { letters, end } = await readLetters(deadLetterDir)
  const chosen = letters.filter((l) => l.envelope && l.topic !== '' && (!only || only.has(l.topic)))
  const kept = letters.filter((l) => !chosen.includes(l))
  const byTopic = new Map<string, number>()
  for (const l of chosen) byTopic.set(l.topic, (byTopic.get(l.topic) ?? 0) + 1)
  const summary = [...byTopic].map(([t, n]) => `${t}: ${n}`).join(', ') || 'none'
  if (args.flags.has('dry-run')) {
    out.write(`would replay ${chosen.length} dead letters (${summary}); ${kept.length} would stay\n`)
    return 0
  }
  if (chosen.length === 0) {
    out.write(`nothing to replay; ${kept.length} dead letters stay\n`)
    return 0
  }
  const brokers = args.flags.get('brokers')
  if (typeof brokers !== 'string')
    throw new SpillwayError('SPW_ERR_INVALID_OPTION', '--brokers is required to replay (where to deliver)')

  // through DIR's own log: accepted once fsynced there, delivered by its dispatcher like any event
  const producer = await createProducer({ brokers: brokers.split(','), log: { dir }, transportLingerMs: 0 })
  let delivered: boolean
  try {
    const results = await producer.sendTo(
      chosen.map((l) => {
        const e = l.envelope as Envelope
        return {
          topic: l.topic,
          event: {
            id: e.id,
            value: e.value,
            timestamp: e.timestamp,
            headers: e.headers.filter(([name]) => !DEAD_LETTER_HEADERS.has(name)),
            ...(e.key === undefined ? {} : { key: e.key }),
          },
        }
      }),
      { atomic: true },
    )
    const refused = results.find((r) => r.status === 'refused')
    if (refused?.status === 'refused') throw refused.error
    delivered = await producer.flush(timeoutMs)
  } finally {
    await producer.close(timeoutMs)
  }
  // the replayed letters leave the dead-letter log; the others are written again behind the cursor
  const log = await DurableLog.open({ dir: deadLetterDir })
  try {
    if (kept.length > 0) await log.append(kept.map((l) => l.payload))
    if (end) await log.commit(end)
  } finally {
    await log.close()
  }
  out.write(
    `replayed ${chosen.length} dead letters (${summary}) with their original ids; ` +
      `${delivered ? 'all delivered to Kafka' : `not all delivered yet: the rest is in ${dir} and goes with the next start`}; ` +
      `${kept.length} stay in the dead-letter log\n`,
  )
  return 0
}
