/**
 * One owner per log directory. The LOCK file is created with O_EXCL and holds the owner's pid; a lock
 * whose pid is no longer alive (kill -9, power loss) is stale and taken over. Two live processes can
 * never both hold it.
 */
import { open, readFile, rm } from 'node:fs/promises'
import { hostname } from 'node:os'
import { join } from 'node:path'
import { SpillwayError } from '../errors.ts'

const LOCK_FILE = 'LOCK'

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
  for (let attempt = 0; attempt < 3; attempt++) {
    try {
      const handle = await open(path, 'wx')
      await handle.writeFile(
        JSON.stringify({ pid: process.pid, host: hostname(), since: new Date().toISOString() }),
      )
      await handle.sync()
      await handle.close()
      return {
        async release() {
          await rm(path, { force: true })
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
