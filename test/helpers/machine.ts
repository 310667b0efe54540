/**
 * What the machine did during a measurement: CPU time stolen by the hypervisor, and which other processes
 * ran. Latency tests report it beside their figures, so a slow run can be told apart from slow code.
 * Linux only (/proc); elsewhere it reports nothing.
 */
import { readdirSync, readFileSync } from 'node:fs'

export interface MachineSample {
  readonly at: number
  /** /proc/stat's first line: user nice system idle iowait irq softirq steal, in clock ticks */
  readonly cpu: readonly number[]
  /** utime + stime in clock ticks, by pid, with the command's name */
  readonly processes: ReadonlyMap<number, { comm: string; ticks: number }>
}

export interface MachineReport {
  readonly seconds: number
  /** share of all CPUs' time the hypervisor gave to someone else */
  readonly stealPercent: number
  /** CPU used by other processes, in cores (1 = one core busy the whole time) */
  readonly othersCores: number
  /** the busiest other processes, by command name, in cores */
  readonly top: readonly { comm: string; cores: number }[]
}

const TICKS_PER_SECOND = 100

function readCpu(): number[] {
  const line = readFileSync('/proc/stat', 'utf8').split('\n')[0] ?? ''
  return line.trim().split(/\s+/).slice(1, 9).map(Number)
}

function readProcesses(): Map<number, { comm: string; ticks: number }> {
  const out = new Map<number, { comm: string; ticks: number }>()
  for (const entry of readdirSync('/proc')) {
    const pid = Number(entry)
    if (!Number.isInteger(pid)) continue
    try {
      const stat = readFileSync(`/proc/${pid}/stat`, 'utf8')
      // the command sits in parentheses and may hold spaces; the fields after it are space-separated
      const close = stat.lastIndexOf(')')
      const comm = stat.slice(stat.indexOf('(') + 1, close)
      const fields = stat.slice(close + 2).split(' ')
      out.set(pid, { comm, ticks: Number(fields[11]) + Number(fields[12]) })
    } catch {
      // the process ended between the listing and the read
    }
  }
  return out
}

export function sampleMachine(): MachineSample | undefined {
  if (process.platform !== 'linux') return undefined
  return { at: performance.now(), cpu: readCpu(), processes: readProcesses() }
}

/** The machine between two samples, leaving out this process. */
export function describeMachine(
  before: MachineSample | undefined,
  after: MachineSample | undefined,
): MachineReport | undefined {
  if (!before || !after) return undefined
  const seconds = (after.at - before.at) / 1000
  const delta = after.cpu.map((v, i) => v - (before.cpu[i] ?? 0))
  const total = delta.reduce((a, b) => a + b, 0)
  const byComm = new Map<string, number>()
  let others = 0
  for (const [pid, now] of after.processes) {
    if (pid === process.pid) continue
    const ticks = now.ticks - (before.processes.get(pid)?.ticks ?? 0)
    if (ticks <= 0) continue
    others += ticks
    byComm.set(now.comm, (byComm.get(now.comm) ?? 0) + ticks)
  }
  const cores = (ticks: number): number => ticks / TICKS_PER_SECOND / seconds
  return {
    seconds,
    stealPercent: total > 0 ? ((delta[7] ?? 0) / total) * 100 : 0,
    othersCores: cores(others),
    top: [...byComm.entries()]
      .sort((a, b) => b[1] - a[1])
      .slice(0, 3)
      .map(([comm, ticks]) => ({ comm, cores: cores(ticks) })),
  }
}

export function formatMachine(report: MachineReport | undefined): string {
  if (!report) return 'machine: not measured on this platform'
  const top = report.top.map((p) => `${p.comm} ${p.cores.toFixed(2)}`).join(', ')
  return (
    `machine over ${report.seconds.toFixed(1)} s: steal ${report.stealPercent.toFixed(1)}%, ` +
    `other processes ${report.othersCores.toFixed(2)} cores (${top || 'none'})`
  )
}
