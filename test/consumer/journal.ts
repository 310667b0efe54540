/** Reads the journal the consumer-process fixture writes, and spawns that fixture. */
import { type ChildProcess, spawn } from 'node:child_process'
import { existsSync, readFileSync } from 'node:fs'
import { fileURLToPath } from 'node:url'

export interface JournalLine {
  readonly kind: 'start' | 'done'
  readonly id: string
  readonly partition: number
  readonly offset: bigint
  readonly epoch: number
  readonly at: number
  readonly pid: number
}

export function readJournal(file: string): JournalLine[] {
  if (!existsSync(file)) return []
  return readFileSync(file, 'utf8')
    .split('\n')
    .filter((l) => l.length > 0)
    .map((l) => {
      const [kind, id, partition, offset, epoch, at, pid] = l.split(' ')
      return {
        kind: kind as 'start' | 'done',
        id: id as string,
        partition: Number(partition),
        offset: BigInt(offset as string),
        epoch: Number(epoch),
        at: Number(at),
        pid: Number(pid),
      }
    })
}

const fixture = fileURLToPath(new URL('./fixtures/consumer-process.ts', import.meta.url))

export interface ConsumerProcess {
  readonly child: ChildProcess
  readonly exited: Promise<number | null>
  stderr(): string
}

/** Starts the fixture and resolves once its consumer runs. */
export async function startConsumerProcess(config: Record<string, unknown>): Promise<ConsumerProcess> {
  const child = spawn(process.execPath, [fixture, JSON.stringify(config)], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stderr = ''
  child.stderr?.setEncoding('utf8').on('data', (d: string) => {
    stderr += d
  })
  const exited = new Promise<number | null>((resolve) => child.once('exit', (code) => resolve(code)))
  await new Promise<void>((resolve, reject) => {
    child.stdout?.setEncoding('utf8').on('data', (d: string) => {
      if (d.includes('running')) resolve()
    })
    void exited.then((code) => reject(new Error(`consumer process exited (${code}): ${stderr}`)))
  })
  return { child, exited, stderr: () => stderr }
}
