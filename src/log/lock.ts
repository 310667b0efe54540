/**
 * One owner per log directory. The LOCK file is created with O_EXCL and holds the owner's pid and a
 * token of its own; a lock whose pid is no longer alive (kill -9, power loss) is stale and taken over.
 * Two live processes can never both hold it, and neither can two opens in one process: the directories
 * this process holds are kept in a table shared by every copy of this module, so a LOCK naming our own
 * pid is ours only if that table says so (otherwise a restarted process that got its predecessor's pid,
 * common in containers, takes over a stale lock). Release removes the file only while it still holds
 * the owner's token.
 */
import { randomUUID } from 'node:crypto'
import { open, readFile, realpath, rm } from 'node:fs/promises'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { SpillwayError } from '../errors.ts'

const LOCK_FILE = 'LOCK'

/** Directories (real paths) whose lock this process holds. */
const heldSlot = Symbol.for('spillway.log-locks.v1')
const globals = globalThis as unknown as Record<symbol, Set<string> | undefined>
const held: Set<string> = globals[heldSlot] ?? new Set()
globals[heldSlot] = held

function alive(pid: number): boolean {
  if (pid === process.pid) return false
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

export interface DirectoryLock {
  release(): Promise<void>
}

export async function lockDirectory(dir: string): Promise<DirectoryLock> {
  const path = join(dir, LOCK_FILE)
  const real = await realpath(dir)
  if (held.has(real)) {
    throw new SpillwayError(
      'SPW_ERR_LOG_LOCKED',
      `log directory ${dir} is already open in this process; open it once and share the log (or producer)`,
      { details: { dir, pid: process.pid } },
    )
  }
  held.add(real)
  try {
    return await take(dir, path, real)
  } catch (error) {
    held.delete(real)
    throw error
  }
}

async function take(dir: string, path: string, real: string): Promise<DirectoryLock> {
  const token = randomUUID()
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const handle = await open(path, 'wx')
      await handle.writeFile(
        JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString(), token }),
      )
      await handle.sync()
      await handle.close()
      let released = false
      return {
        async release() {
          if (released) return
          released = true
          held.delete(real)
          let current: { token?: string } = {}
          try {
            current = JSON.parse(await readFile(path, 'utf8')) as typeof current
          } catch {
            return // gone, or torn: not a lock anyone holds
          }
          if (current.token === token) await rm(path, { force: true })
        },
      }
    } catch (error) {
      if ((error as NodeJS.ErrnoException).code !== 'EEXIST') throw error
    }
    let owner: { pid?: number; host?: string; since?: string } = {}
    try {
      owner = JSON.parse(await readFile(path, 'utf8')) as typeof owner
    } catch {
      // a torn lock file from a crash during creation: its owner cannot be alive and writing
    }
    const sameHost = owner.host === undefined || owner.host === hostname()
    if (typeof owner.pid === 'number' && sameHost && alive(owner.pid)) {
      throw new SpillwayError(
        'SPW_ERR_LOG_LOCKED',
        `log directory ${dir} is owned by live process ${owner.pid} (since ${owner.since ?? 'unknown'}); ` +
          'give each process its own log.dir',
        { details: { dir, pid: owner.pid } },
      )
    }
    if (!sameHost) {
      throw new SpillwayError(
        'SPW_ERR_LOG_LOCKED',
        `log directory ${dir} is locked by host ${owner.host} (pid ${owner.pid}); remove ${path} only if that host is gone`,
        { details: { dir, host: owner.host } },
      )
    }
    await rm(path, { force: true })
  }
  throw new SpillwayError('SPW_ERR_LOG_LOCKED', `could not take the lock on ${dir}`, { details: { dir } })
}
