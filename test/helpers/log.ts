/** Reads a log from its delivered cursor to the durable end; payloads are copied so they outlive the reader. */
import type { DurableLog, LogRecord } from '../../src/log/log.ts'

export async function readAll(log: DurableLog): Promise<LogRecord[]> {
  const reader = log.reader()
  const out: LogRecord[] = []
  for (;;) {
    const batch = await reader.read({ maxRecords: 1000 })
    if (batch.length === 0) break
    for (const r of batch) out.push({ ...r, payload: Buffer.from(r.payload) })
  }
  await reader.close()
  return out
}
