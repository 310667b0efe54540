/** Runs fixtures/steady-producer.ts as a child process and collects what it reports. */
import { type ChildProcess, spawn } from 'node:child_process'
import { fileURLToPath } from 'node:url'

export interface SteadyRun {
  readonly child: ChildProcess
  readonly accepted: Map<string, { key: string; n: number }>
  readonly refused: Map<string, number>
  readonly rss: { at: number; bytes: number }[]
  stats: Record<string, unknown> | undefined
  readonly exited: Promise<number | null>
  stderr: string
}

const fixture = fileURLToPath(new URL('./fixtures/steady-producer.ts', import.meta.url))

export async function startSteadyProducer(args: {
  dir: string
  topic: string
  brokers: string[]
  rate: number
  firstN: number
  maxBytes?: number
  deliveryTimeoutMs?: number
}): Promise<SteadyRun> {
  const child = spawn(
    process.execPath,
    [
      fixture,
      args.dir,
      args.topic,
      args.brokers.join(','),
      String(args.rate),
      String(args.firstN),
      String(args.maxBytes ?? 1024 ** 3),
      String(args.deliveryTimeoutMs ?? 3000),
    ],
    { stdio: ['ignore', 'pipe', 'pipe'] },
  )
  const run: SteadyRun = {
    child,
    accepted: new Map(),
    refused: new Map(),
    rss: [],
    stats: undefined,
    exited: new Promise((resolve) => child.once('exit', (code) => resolve(code))),
    stderr: '',
  }
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    run.stderr = (run.stderr + d).slice(-5000)
  })
  let buffer = ''
  const ready = new Promise<void>((resolve, reject) => {
    child.once('exit', (code) => reject(new Error(`steady producer exited early (${code}): ${run.stderr}`)))
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      buffer += d
      const lines = buffer.split('\n')
      buffer = lines.pop() ?? ''
      for (const line of lines) {
        if (line === 'READY') resolve()
        const [kind, a, b, c] = line.split(' ')
        if (kind === 'A' && a && b && c) run.accepted.set(a, { key: b, n: Number(c) })
        else if (kind === 'X' && a) run.refused.set(a, (run.refused.get(a) ?? 0) + 1)
        else if (kind === 'M' && a) run.rss.push({ at: Date.now(), bytes: Number(a) })
        else if (kind === 'S') run.stats = JSON.parse(line.slice(2)) as Record<string, unknown>
      }
    })
  })
  await ready
  return run
}

/** SIGTERM: the child stops sending, drains, closes and reports its stats. */
export async function stopSteadyProducer(run: SteadyRun): Promise<void> {
  run.child.kill('SIGTERM')
  const code = await run.exited
  if (code !== 0) throw new Error(`steady producer exited with ${code}: ${run.stderr}`)
}

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms))
