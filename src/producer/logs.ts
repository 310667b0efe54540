/**
 * The logs a producer opens under `log.dir`: the main log (the backlog in `durable` mode only), the
 * dead-letter log, and the dead-letter outbox when `deadLetterTopics` routes anything. The side logs hold
 * an event plus a few headers: the same limits, a smaller budget. In `kafka` and `memory` modes the main
 * directory is neither opened nor locked (their backlog is in memory).
 */
import { join } from 'node:path'
import { DurableLog } from '../log/log.ts'
import type { ResolvedProducerOptions } from './options.ts'

export interface ProducerLogs {
  readonly log: DurableLog | undefined
  readonly deadLetterLog: DurableLog | undefined
  readonly outboxLog: DurableLog | undefined
  close(): Promise<void>
}

export async function openProducerLogs(options: ResolvedProducerOptions): Promise<ProducerLogs> {
  const opened: DurableLog[] = []
  const close = async (): Promise<void> => {
    await Promise.allSettled(opened.map((l) => l.close()))
  }
  const main = options.log
  if (!main) {
    return {
      log: undefined,
      deadLetterLog: undefined,
      outboxLog: undefined,
      close,
    }
  }
  const side = async (name: string): Promise<DurableLog> => {
    const log = await DurableLog.open({
      dir: join(main.dir, name),
      fsync: main.fsync,
      maxBytes: Math.max(4096, Math.floor(main.maxBytes / 4)),
      maxRecordBytes: main.maxRecordBytes + 4096,
      segmentBytes: Math.min(main.segmentBytes, 16 * 1024 * 1024),
    })
    opened.push(log)
    return log
  }
  try {
    let log: DurableLog | undefined
    if (options.ack === 'durable') {
      log = await DurableLog.open(main)
      opened.push(log)
    }
    const deadLetterLog = await side('dead-letter')
    const outboxLog =
      Object.keys(options.deadLetterTopics).length > 0 ? await side('dead-letter-outbox') : undefined
    return { log, deadLetterLog, outboxLog, close }
  } catch (error) {
    await close()
    throw error
  }
}
