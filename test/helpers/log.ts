/** Reads logs in tests; payloads are copied so they outlive the reader. */
import type { DurableLog, LogReader, LogRecord } from '../../src/log/log.ts'

/** Everything from the reader's position to the durable end, in reads of at most `maxRecords`. */
export async function readRest(reader: LogReader, maxRecords = 1000): Promise<LogRecord[]> {
  const out: LogRecord[] = []
  for (;;) {
    const batch = await reader.read({ maxRecords })
    if (batch.length === 0) break
    for (const r of batch) out.push({ ...r, payload: Buffer.from(r.payload) })
  }
  return out
}

/** A log from its delivered cursor to the durable end. */
export async function readAll(log: DurableLog, maxRecords = 1000): Promise<LogRecord[]> {
  const reader = log.reader()
  try {
    return await readRest(reader, maxRecords)
  } finally {
    await reader.close()
  }
}
