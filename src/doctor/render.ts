/** The human report: the verdict first, then a section per check, worst first, colour on a TTY. */
import type { CheckReport, DoctorReport, Severity, Table } from './types.ts'

const COLOURS: Record<Severity, string> = { crit: '31', unknown: '35', warn: '33', info: '36', ok: '32' }
const LABELS: Record<Severity, string> = {
  crit: 'CRIT',
  unknown: 'UNKNOWN',
  warn: 'WARN',
  info: 'INFO',
  ok: 'OK',
}

export function renderTable(table: Table, indent = '  '): string[] {
  if (table.rows.length === 0) return []
  const cells = [table.columns, ...table.rows].map((row) => row.map((c) => String(c)))
  const widths = table.columns.map((_, i) => Math.max(...cells.map((r) => (r[i] ?? '').length)))
  return cells.map(
    (row, n) =>
      `${indent}${row.map((c, i) => (i === row.length - 1 ? c : c.padEnd(widths[i] ?? 0))).join('  ')}${n === 0 ? '' : ''}`,
  )
}

function section(
  check: CheckReport,
  paint: (s: Severity, text: string) => string,
  dim: (t: string) => string,
): string[] {
  const lines = [
    `${paint(check.severity, `[${LABELS[check.severity]}]`)} ${check.title} ${dim(`(${check.id})`)}`,
  ]
  for (const f of check.findings) {
    lines.push(`  ${paint(f.severity, LABELS[f.severity].padEnd(7))} ${f.id}  ${f.subject}`)
    lines.push(`          ${f.summary}`)
    lines.push(`          ${dim(`confidence ${f.confidence}. What to do:`)} ${f.remedy}`)
  }
  if (check.findings.length === 0) lines.push(`  ${paint('ok', 'nothing flagged')}`)
  if (check.table && check.table.rows.length > 0) lines.push('', ...renderTable(check.table, '    '))
  for (const n of check.notes) lines.push(dim(`  ${n}`))
  return lines
}

export function renderReport(report: DoctorReport, colour: boolean): string {
  const paint = (s: Severity, text: string): string => (colour ? `\x1b[${COLOURS[s]}m${text}\x1b[0m` : text)
  const dim = (text: string): string => (colour ? `\x1b[2m${text}\x1b[0m` : text)
  const c = report.counts
  const lines = [
    paint(report.severity, report.verdict),
    dim(
      `cluster ${report.cluster.id ?? '?'}: ${c.brokers} broker(s), ${c.topics} topic(s), ${c.partitions} partition(s); read in ${(report.durationMs / 1000).toFixed(1)} s of a ${(report.budgetMs / 1000).toFixed(0)} s budget, window ${(report.windowMs / 1000).toFixed(1)} s`,
    ),
    '',
  ]
  for (const check of report.checks) lines.push(...section(check, paint, dim), '')
  return `${lines.join('\n')}\n`
}
