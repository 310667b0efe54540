/**
 * `spillway consume`: prints a topic's records (key, headers including spillway-id, value) like a console
 * consumer, on the same consumer runtime as createConsumer. Without --group it reads every partition on
 * its own and commits nothing; with --group it joins that group and commits what it printed.
 */

import { createConsumer } from '../consumer/consumer.ts'
import type { StartFrom } from '../consumer/options.ts'
import type { ConsumedRecord } from '../consumer/types.ts'
import { SpillwayError } from '../errors.ts'
import { parseArgs } from './args.ts'
import { consumeHelp } from './consume-help.ts'

function readFrom(value: string | true | undefined): StartFrom {
  if (value === undefined) return 'beginning'
  if (value === 'beginning' || value === 'end') return value
  if (typeof value === 'string') {
    const ms = /^\d+$/.test(value) ? Number(value) : Date.parse(value)
    if (Number.isFinite(ms)) return { timestamp: ms }
  }
  throw new SpillwayError(
    'SPW_ERR_INVALID_OPTION',
    `--from must be beginning, end, an ISO-8601 time or ms since the epoch, not ${String(value)}`,
    {
      details: { key: 'from' },
    },
  )
}

function readCount(value: string | true | undefined, flag: string): number | undefined {
  if (value === undefined) return undefined
  const n = Number(value)
  if (typeof value !== 'string' || !Number.isInteger(n) || n < 1)
    throw new SpillwayError(
      'SPW_ERR_INVALID_OPTION',
      `--${flag} must be a positive whole number, not ${String(value)}`,
      { details: { key: flag } },
    )
  return n
}

const isText = (b: Buffer): boolean => {
  const text = b.toString('utf8')
  return Buffer.byteLength(text) === b.length && !text.includes('\uFFFD')
}

/** A record as one JSON object: text as text, anything else as base64. */
export function recordJson(r: ConsumedRecord): Record<string, unknown> {
  const bytes = (b: Buffer | null): { text?: string | null; base64?: string } =>
    b === null ? { text: null } : isText(b) ? { text: b.toString('utf8') } : { base64: b.toString('base64') }
  const key = bytes(r.key)
  const value = bytes(r.value)
  return {
    topic: r.topic,
    partition: r.partition,
    offset: r.offset.toString(),
    timestamp: new Date(r.timestamp).toISOString(),
    id: r.id,
    key: key.base64 ?? key.text,
    ...(key.base64 ? { keyEncoding: 'base64' } : {}),
    headers: r.headers.map(([name, v]) => [name, isText(v) ? v.toString('utf8') : v.toString('base64')]),
    value: value.base64 ?? value.text,
    ...(value.base64 ? { valueEncoding: 'base64' } : {}),
  }
}

function recordText(r: ConsumedRecord): string {
  const show = (b: Buffer | null): string =>
    b === null ? '(null)' : isText(b) ? b.toString('utf8') : `base64:${b.toString('base64')}`
  const headers = r.headers
    .map(([name, v]) => `${name}=${isText(v) ? v.toString('utf8') : `base64:${v.toString('base64')}`}`)
    .join(' ')
  return `${r.topic}[${r.partition}]@${r.offset} ${new Date(r.timestamp).toISOString()} key=${show(r.key)}${headers ? ` ${headers}` : ''}\n  ${show(r.value)}\n`
}

export async function runConsume(
  argv: readonly string[],
  out: NodeJS.WritableStream,
  err: NodeJS.WritableStream,
): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    out.write(consumeHelp)
    return 0
  }
  const { flags, positionals } = parseArgs(argv, {
    flags: ['json', 'tls'],
    values: [
      'brokers',
      'topic',
      'group',
      'from',
      'max',
      'timeout',
      'client-id',
      'ca',
      'sasl-mechanism',
      'sasl-username',
      'sasl-password-file',
    ],
  })
  if (positionals.length > 0)
    throw new SpillwayError(
      'SPW_ERR_INVALID_OPTION',
      `unexpected argument ${positionals[0]}; see spillway consume --help`,
    )
  const brokers = flags.get('brokers')
  const topics = flags.get('topic')
  if (typeof brokers !== 'string')
    throw new SpillwayError('SPW_ERR_INVALID_OPTION', '--brokers is required (host:port[,host:port…])', {
      details: { key: 'brokers' },
    })
  if (typeof topics !== 'string')
    throw new SpillwayError('SPW_ERR_INVALID_OPTION', '--topic is required', { details: { key: 'topic' } })
  const max = readCount(flags.get('max'), 'max')
  const idleMs = readCount(flags.get('timeout'), 'timeout')
  const json = flags.has('json')
  const tls =
    flags.has('tls') || flags.has('ca')
      ? flags.has('ca')
        ? { caFile: flags.get('ca') as string }
        : true
      : undefined
  const mechanism = flags.get('sasl-mechanism')
  const sasl =
    typeof mechanism === 'string'
      ? { mechanism, username: flags.get('sasl-username'), passwordFile: flags.get('sasl-password-file') }
      : undefined

  let printed = 0
  let lastRecord = performance.now()
  let finish: (() => void) | undefined
  const finished = new Promise<void>((resolve) => {
    finish = resolve
  })
  const group = flags.get('group')
  const consumer = createConsumer({
    brokers: brokers.split(',').map((b) => b.trim()),
    clientId: (flags.get('client-id') as string | undefined) ?? 'spillway-consume',
    ...(tls ? { tls: tls as never } : {}),
    ...(sasl ? { sasl: sasl as never } : {}),
    ...(typeof group === 'string' ? { groupId: group } : {}),
    topics: topics.split(',').map((t) => t.trim()),
    from: readFrom(flags.get('from')),
    ordering: 'partition',
    concurrency: 64,
    dedupe: false,
    // past --max a handler waits to be abandoned at close: what was not printed is not committed
    closeTimeoutMs: 500,
    handler: async (record) => {
      if (max !== undefined && printed >= max) return await new Promise<void>(() => undefined)
      const r = record as ConsumedRecord
      out.write(json ? `${JSON.stringify(recordJson(r))}\n` : recordText(r))
      printed++
      lastRecord = performance.now()
      if (max !== undefined && printed >= max) finish?.()
    },
  })
  consumer.on('status', (s) => {
    if (s.type === 'connection')
      err.write(`spillway consume: ${s.ok ? '' : `${s.code}: `}${s.message ?? ''}\n`)
    if (s.type === 'large-records')
      err.write(`spillway consume: records of ${s.topic} average ${s.averageBytes} bytes\n`)
  })
  const stop = (): void => finish?.()
  process.once('SIGINT', stop)
  process.once('SIGTERM', stop)
  const idle = idleMs
    ? setInterval(
        () => {
          if (performance.now() - lastRecord >= idleMs) finish?.()
        },
        Math.min(idleMs, 200),
      )
    : undefined
  try {
    await consumer.run()
    await finished
  } finally {
    clearInterval(idle)
    process.off('SIGINT', stop)
    process.off('SIGTERM', stop)
    await consumer.close()
  }
  err.write(`spillway consume: ${printed} record${printed === 1 ? '' : 's'}\n`)
  return 0
}
