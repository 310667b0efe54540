/** `spillway log inspect <dir>` and `spillway log dump <dir>`: read-only operator views of a local log. */
import { dumpLog, inspectLog } from '../log/inspect.ts'
import { decodeEnvelope, type Envelope } from '../producer/envelope.ts'
import { parseArgs } from './args.ts'

export const logHelp = `Usage:
  spillway log inspect <dir> [--json]
      Segments, sizes, pending (undelivered) records, oldest pending age and any corruption.
  spillway log dump <dir> [--all] [--limit N]
      Prints records as JSON lines: seq, timestamp, segment, offset and the payload. A producer's
      event (the main log, dead-letter, dead-letter-outbox) shows as "event": id, topic, key, headers
      (a dead letter's reason among them) and value; any other payload as UTF-8 text ("payload") or
      "payloadBase64". Bytes that are not UTF-8 show as base64. Only undelivered records unless --all.

Both read without taking the log's lock and change nothing; they are safe beside a running gateway.
`

const utf8 = new TextDecoder('utf-8', { fatal: true })

function text(bytes: Buffer): string | undefined {
  try {
    return utf8.decode(bytes)
  } catch {
    return undefined
  }
}

/** `{ name: text }`, or `{ nameBase64: … }` for bytes that are not UTF-8. */
function bytesField(name: string, bytes: Buffer): Record<string, string> {
  const t = text(bytes)
  return t === undefined ? { [`${name}Base64`]: bytes.toString('base64') } : { [name]: t }
}

function renderEvent(e: Envelope): Record<string, unknown> {
  return {
    id: e.id,
    topic: e.topic,
    ...(e.partition === undefined ? {} : { partition: e.partition }),
    timestamp: new Date(e.timestamp).toISOString(),
    ...(e.key === undefined ? {} : bytesField('key', e.key)),
    headers: Object.fromEntries(
      e.headers.map(([name, value]) => [name, text(value) ?? { base64: value.toString('base64') }]),
    ),
    ...bytesField('value', e.value),
  }
}

function renderPayload(payload: Buffer): Record<string, unknown> {
  let event: Envelope | undefined
  try {
    event = decodeEnvelope(payload)
  } catch {
    // not a producer's event: shown as it is
  }
  if (event) return { event: renderEvent(event) }
  return bytesField('payload', payload)
}

function age(timestamp: number | undefined): string {
  if (timestamp === undefined) return 'none pending'
  const seconds = Math.max(0, (Date.now() - timestamp) / 1000)
  return seconds < 120
    ? `${seconds.toFixed(1)} s`
    : seconds < 7200
      ? `${(seconds / 60).toFixed(1)} min`
      : `${(seconds / 3600).toFixed(1)} h`
}

export async function runLogCommand(
  argv: readonly string[],
  out: NodeJS.WritableStream,
  err: NodeJS.WritableStream,
): Promise<number> {
  const [sub, ...rest] = argv
  if (sub === undefined || sub === '--help' || sub === '-h') {
    out.write(logHelp)
    return sub === undefined ? 2 : 0
  }
  const args = parseArgs(rest, { flags: ['json', 'all', 'help'], values: ['limit'] })
  if (args.flags.has('help')) {
    out.write(logHelp)
    return 0
  }
  const dir = args.positionals[0]
  if (!dir) {
    err.write(`spillway log ${sub}: missing <dir>\n\n${logHelp}`)
    return 2
  }
  if (sub === 'inspect') {
    const report = await inspectLog(dir, {
      onSegment: (file, index, total) => {
        if (total > 3) err.write(`\rscanning ${index + 1}/${total} ${file}`)
      },
    })
    if (report.segments.length > 3) err.write('\n')
    if (args.flags.has('json')) {
      out.write(
        `${JSON.stringify(report, (_, v: unknown) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`,
      )
      return 0
    }
    const checkpoint =
      report.checkpoint.kind === 'ok'
        ? `delivered before seq ${report.checkpoint.position.seq}`
        : report.checkpoint.kind === 'missing'
          ? 'none (nothing delivered yet)'
          : `DAMAGED (${report.checkpoint.reason}); a reopen replays from the oldest segment`
    out.write(`log ${report.dir}\n`)
    out.write(`  owner        ${report.lockedBy === undefined ? 'none' : `pid ${report.lockedBy}`}\n`)
    out.write(`  checkpoint   ${checkpoint}\n`)
    out.write(`  segments     ${report.segments.length} (${report.totalBytes} bytes)\n`)
    out.write(`  records      ${report.totalRecords} on disk, ${report.pendingRecords} pending\n`)
    out.write(`  oldest       ${age(report.oldestPendingTimestamp)}\n`)
    out.write(
      `  corruption   ${report.corruptRegions === 0 ? 'none' : `${report.corruptRegions} region(s), ${report.corruptBytes} bytes`}\n`,
    )
    for (const s of report.segments) {
      const range = s.firstSeq === undefined ? 'empty' : `seq ${s.firstSeq}…${s.lastSeq}`
      out.write(
        `  ${s.file}  ${String(s.bytes).padStart(10)} B  ${String(s.records).padStart(8)} records  ${range}${s.headerOk ? '' : '  HEADER DAMAGED'}\n`,
      )
      for (const c of s.corruption) {
        out.write(
          `    ! ${c.tail ? 'torn tail' : 'damage'} at offset ${c.offset}: ${c.bytes} bytes skipped (${c.reason})\n`,
        )
      }
    }
    return report.corruptRegions === 0 ? 0 : 1
  }
  if (sub === 'dump') {
    const limitFlag = args.flags.get('limit')
    const limit = typeof limitFlag === 'string' ? Number(limitFlag) : Number.POSITIVE_INFINITY
    if (!(limit > 0)) {
      err.write(`spillway log dump: --limit must be a positive number, got ${String(limitFlag)}\n`)
      return 2
    }
    let n = 0
    for await (const record of dumpLog(dir, { includeDelivered: args.flags.has('all') })) {
      const line = {
        seq: record.seq.toString(),
        timestamp: new Date(record.timestamp).toISOString(),
        segment: record.segment,
        offset: record.offset,
        delivered: record.delivered,
        ...renderPayload(record.payload),
      }
      if (!out.write(`${JSON.stringify(line)}\n`)) await new Promise((r) => out.once('drain', r))
      if (++n >= limit) break
    }
    return 0
  }
  err.write(`spillway log: unknown subcommand ${JSON.stringify(sub)}\n\n${logHelp}`)
  return 2
}
