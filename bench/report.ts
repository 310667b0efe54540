/** Shared output helpers for benchmarks: percentiles and a plain table. */
export function percentile(values: readonly number[], p: number): number {
  if (values.length === 0) return Number.NaN
  const sorted = [...values].sort((a, b) => a - b)
  const index = Math.min(sorted.length - 1, Math.max(0, Math.ceil((p / 100) * sorted.length) - 1))
  return sorted[index] as number
}

export function printTable(title: string, rows: readonly (readonly string[])[]): void {
  const widths: number[] = []
  for (const row of rows) {
    row.forEach((cell, i) => {
      widths[i] = Math.max(widths[i] ?? 0, cell.length)
    })
  }
  process.stdout.write(`\n${title}\n`)
  for (const row of rows)
    process.stdout.write(`  ${row.map((c, i) => c.padEnd(widths[i] ?? 0)).join('  ')}\n`)
}
