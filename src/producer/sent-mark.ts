/**
 * The durable log's "sent up to" mark: the highest seq handed to Kafka, so that records sent again after
 * a crash are counted as replays. The producer opens and closes it; the dispatcher reads and writes it.
 */
import { readFileSync } from 'node:fs'
import { type FileHandle, open } from 'node:fs/promises'
import type { DispatcherDeps } from './dispatcher.ts'

export type SentMark = NonNullable<DispatcherDeps['sentMark']> & { close(): Promise<void> }

export function sentMarkFile(path: string): SentMark {
  const buffer = Buffer.alloc(8)
  let handle: Promise<FileHandle> | undefined
  return {
    read() {
      try {
        const bytes = readFileSync(path)
        return bytes.length === 8 ? bytes.readBigUInt64BE(0) : -1n
      } catch {
        return -1n
      }
    },
    async write(seq) {
      // An 8-byte positional write into the page cache, never synchronous: it survives kill -9, and after a
      // power loss an undercount of replays is the only effect. Truncating writes could stall on the journal.
      buffer.writeBigUInt64BE(seq)
      try {
        handle ??= open(path, 'a').then(async (h) => {
          await h.close()
          return await open(path, 'r+')
        })
        await (await handle).write(buffer, 0, 8, 0)
      } catch {
        // counting replays is best effort; delivery does not depend on it
      }
    },
    async close() {
      const opened = handle
      handle = undefined
      await opened?.then((h) => h.close()).catch(() => undefined)
    },
  }
}
