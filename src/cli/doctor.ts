/**
 * `spillway doctor`: runs the doctor and prints its report (or JSON), with a progress line on stderr.
 * Exit status 0 healthy, 1 warnings, 2 critical, 3 could not judge; a bad option or an unreachable
 * cluster is a one-line message and 3, never a stack trace.
 */
import { runDoctor } from '../doctor/doctor.ts'
import type { DoctorOptions } from '../doctor/options.ts'
import { renderReport } from '../doctor/render.ts'
import { isSpillwayError, SpillwayError } from '../errors.ts'
import { parseArgs } from './args.ts'
import { doctorHelp } from './doctor-help.ts'

const UNITS: Record<string, number> = {
  ms: 1,
  s: 1000,
  m: 60_000,
  h: 3_600_000,
  b: 1,
  k: 1024,
  kb: 1024,
  kib: 1024,
  mb: 1048576,
  mib: 1048576,
  gb: 1073741824,
  gib: 1073741824,
}

/**
 * A positive number from a flag: bare in the flag's own unit (`scale`), or with a unit the flag accepts
 * (`5s`, `2m`, `1h` for times in milliseconds; `512k`, `64MiB` for sizes in bytes).
 */
function number(
  value: string | true | undefined,
  flag: string,
  scale = 1,
  units: readonly string[] = [],
): number | undefined {
  if (value === undefined) return undefined
  const match = typeof value === 'string' ? /^\s*(\d+(?:\.\d+)?)\s*([a-zA-Z]*)\s*$/.exec(value) : null
  const unit = match?.[2]?.toLowerCase() ?? ''
  const n = match ? Number(match[1]) * (unit === '' ? scale : (UNITS[unit] ?? Number.NaN)) : Number.NaN
  if (!match || (unit !== '' && !units.includes(unit)) || !Number.isFinite(n) || n <= 0)
    throw new SpillwayError(
      'SPW_ERR_INVALID_OPTION',
      `--${flag} must be a positive number${units.length > 0 ? ` (or with a unit: ${units.join(', ')})` : ''}, not ${String(value)}`,
      { details: { key: flag } },
    )
  return Math.round(n)
}

const TIME = ['ms', 's', 'm', 'h']
const SIZE = ['b', 'k', 'kb', 'kib', 'mb', 'mib', 'gb', 'gib']

function optionsFrom(argv: readonly string[]): { options: DoctorOptions; json: boolean } {
  const { flags, positionals } = parseArgs(argv, {
    flags: ['json', 'tls'],
    values: [
      'brokers',
      'check',
      'topic',
      'group',
      'budget',
      'max-bytes',
      'window',
      'id-path',
      'consumer-fetch-bytes',
      'max-lag-seconds',
      'baseline',
      'probe',
      'fail-on',
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
      `unexpected argument ${positionals[0]}; see spillway doctor --help`,
    )
  const str = (name: string): string | undefined => {
    const v = flags.get(name)
    return typeof v === 'string' ? v : undefined
  }
  if (!str('brokers'))
    throw new SpillwayError('SPW_ERR_INVALID_OPTION', '--brokers is required (host:port[,host:port…])', {
      details: { key: 'brokers' },
    })
  const list = (name: string): string[] | undefined =>
    str(name)
      ?.split(',')
      .map((s) => s.trim())
  const mechanism = str('sasl-mechanism')
  const failOn = str('fail-on')
  if (failOn !== undefined && failOn !== 'warn' && failOn !== 'crit')
    throw new SpillwayError('SPW_ERR_INVALID_OPTION', `--fail-on must be warn or crit, not ${failOn}`, {
      details: { key: 'fail-on' },
    })
  const options: DoctorOptions = {
    brokers: str('brokers') as string,
    clientId: str('client-id') ?? 'spillway-doctor',
    ...(flags.has('tls') || flags.has('ca') ? { tls: flags.has('ca') ? { caFile: str('ca') } : true } : {}),
    ...(mechanism
      ? { sasl: { mechanism, username: str('sasl-username'), passwordFile: str('sasl-password-file') } }
      : {}),
    ...(list('check') ? { checks: list('check') as string[] } : {}),
    ...(list('topic') ? { topics: list('topic') as string[] } : {}),
    ...(list('group') ? { groups: list('group') as string[] } : {}),
    ...(flags.has('budget') ? { budgetMs: number(flags.get('budget'), 'budget', 1000, TIME) as number } : {}),
    ...(flags.has('max-bytes')
      ? { maxBytes: number(flags.get('max-bytes'), 'max-bytes', 1, SIZE) as number }
      : {}),
    ...(flags.has('window')
      ? { sampleWindowMs: number(flags.get('window'), 'window', 60_000, TIME) as number }
      : {}),
    ...(str('id-path') ? { idPath: str('id-path') as string } : {}),
    ...(flags.has('consumer-fetch-bytes')
      ? {
          consumerFetchBytes: number(
            flags.get('consumer-fetch-bytes'),
            'consumer-fetch-bytes',
            1,
            SIZE,
          ) as number,
        }
      : {}),
    ...(flags.has('max-lag-seconds')
      ? { maxLagSeconds: number(flags.get('max-lag-seconds'), 'max-lag-seconds') as number }
      : {}),
    ...(str('baseline') ? { baseline: str('baseline') as string } : {}),
    ...(str('probe') ? { probeTopic: str('probe') as string } : {}),
    ...(failOn ? { failOn } : {}),
  }
  return { options, json: flags.has('json') }
}

export async function runDoctorCommand(
  argv: readonly string[],
  out: NodeJS.WritableStream & { isTTY?: boolean },
  err: NodeJS.WritableStream & { isTTY?: boolean },
): Promise<number> {
  if (argv.includes('--help') || argv.includes('-h')) {
    out.write(doctorHelp)
    return 0
  }
  let lastLine = ''
  const clearProgress = (): void => {
    if (err.isTTY && lastLine) err.write('\r\x1b[K')
    lastLine = ''
  }
  try {
    const { options, json } = optionsFrom(argv)
    const report = await runDoctor(options, {
      onProgress: (phase, detail) => {
        const line = detail
          ? `doctor: ${phase} ${detail.partitionsDone}/${detail.partitions} partitions, ${detail.records} records, ${(detail.bytes / 1048576).toFixed(1)} MiB`
          : `doctor: ${phase}…`
        if (err.isTTY) {
          err.write(`\r\x1b[K${line}`)
          lastLine = line
        } else if (!detail) err.write(`${line}\n`)
      },
    })
    clearProgress()
    out.write(
      json
        ? `${JSON.stringify(report, (_k, v) => (typeof v === 'bigint' ? v.toString() : v), 2)}\n`
        : renderReport(report, Boolean(out.isTTY) && !process.env.NO_COLOR),
    )
    return report.exitCode
  } catch (error) {
    clearProgress()
    const prefix = isSpillwayError(error) ? `${error.code}: ` : ''
    err.write(`spillway doctor: ${prefix}${error instanceof Error ? error.message : String(error)}\n`)
    return 3
  }
}
