/**
 * One cluster object per process per cluster key, and so one Kafka producer per cluster, however often
 * spillway producers, consumers or doctors are created. Leases are reference-counted; when the last one
 * is released the cluster lingers (`lingerMs`) so that create/close loops reuse it instead of minting a
 * new producer id each time, then closes. `closeAllTransports()` closes everything at once for process
 * shutdown.
 *
 * The table lives on globalThis under a registered symbol, so two copies of this module in one process
 * still share it. The symbol names the table's layout version: copies of spillway whose tables differ in
 * shape keep a table each (and so a Kafka producer each) rather than reading one another's.
 */
import { createHash } from 'node:crypto'
import { createRequire } from 'node:module'
import { availableParallelism } from 'node:os'
import { channel } from '../channels.ts'
import type { Cluster } from './cluster.ts'
import type { PlatformaticCluster } from './platformatic.ts'
import { AUTO_WORKER_CORES, type KafkaConnectionOptions, type TransportThread } from './transport.ts'
import { WorkerCluster } from './worker.ts'

interface Entry {
  readonly key: string
  readonly cluster: Cluster
  refs: number
  idleTimer: NodeJS.Timeout | undefined
}

interface Table {
  entries: Map<string, Entry>
  created: number
  leases: number[]
  factory: (options: KafkaConnectionOptions) => Cluster
}

/** Bump when Table or Entry change shape. */
export const REGISTRY_LAYOUT = 2
const slot = Symbol.for(`spillway.transport-registry.v${REGISTRY_LAYOUT}`)
const globals = globalThis as unknown as Record<symbol, Table | undefined>
const table: Table = globals[slot] ?? {
  entries: new Map(),
  created: 0,
  leases: [],
  factory: (o) => (resolveThread(o.thread) === 'worker' ? new WorkerCluster(o) : inThread(o)),
}
globals[slot] = table

/** 'auto' made concrete for this machine. */
export function resolveThread(
  thread: TransportThread = 'auto',
  cores: number = availableParallelism(),
): 'worker' | 'main' {
  if (thread !== 'auto') return thread
  return cores >= AUTO_WORKER_CORES ? 'worker' : 'main'
}

/**
 * The Kafka client is loaded only where it runs: importing it costs ~60 MB (its compression codecs are
 * WebAssembly), so with the worker transport the main thread never loads it.
 */
function inThread(options: KafkaConnectionOptions): Cluster {
  const require = createRequire(import.meta.url)
  const module = import.meta.url.endsWith('.ts') ? './platformatic.ts' : './platformatic.js'
  const { PlatformaticCluster: InThread } = require(module) as {
    PlatformaticCluster: typeof PlatformaticCluster
  }
  return new InThread(options)
}

const churnChannel = channel('spillway:producer:churn')

/** A share of a cluster: its facets, until released. */
export interface ClusterLease {
  readonly cluster: Cluster
  readonly key: string
  /** Gives the lease back. Closes the cluster after `lingerMs` once no lease holds it. */
  release(): Promise<void>
}

export interface AcquireOptions {
  readonly lingerMs?: number
  /**
   * Warn when more than this many producer leases are taken per minute. Default 60. Admin-only leases
   * (`purpose: 'admin'`) mint no producer id and are not counted.
   */
  readonly churnPerMinute?: number
  /** What the lease is for. Default 'producer'. */
  readonly purpose?: 'producer' | 'admin' | 'consumer'
}

/** A stable identity for "the same cluster": brokers, client id, TLS and SASL identity (secret hashed). */
export function clusterKey(o: KafkaConnectionOptions): string {
  const identity = {
    brokers: [...o.brokers].sort(),
    clientId: o.clientId,
    tls: o.tls ? createHash('sha256').update(JSON.stringify(o.tls)).digest('hex') : null,
    sasl: o.sasl
      ? {
          m: o.sasl.mechanism,
          u: o.sasl.username,
          p: createHash('sha256').update(o.sasl.password).digest('hex'),
        }
      : null,
    timeouts: [o.requestTimeoutMs ?? null, o.clientRetries ?? null, o.metadataMaxAgeMs ?? null],
    thread: resolveThread(o.thread),
  }
  return JSON.stringify(identity)
}

export function acquireCluster(options: KafkaConnectionOptions, acquire: AcquireOptions = {}): ClusterLease {
  const key = clusterKey(options)
  const now = performance.now()
  if ((acquire.purpose ?? 'producer') === 'producer') table.leases.push(now)
  while (table.leases.length > 0 && (table.leases[0] as number) < now - 60_000) table.leases.shift()
  const limit = acquire.churnPerMinute ?? 60
  if (table.leases.length > limit && (acquire.purpose ?? 'producer') === 'producer') {
    const message = `${table.leases.length} spillway producers were created in the last minute (limit ${limit}); create one and share it`
    if (churnChannel.hasSubscribers) churnChannel.publish({ perMinute: table.leases.length, limit })
    if (table.leases.length === limit + 1) process.emitWarning(message, { code: 'SPILLWAY_PRODUCER_CHURN' })
  }
  let entry = table.entries.get(key)
  if (!entry) {
    entry = { key, cluster: table.factory(options), refs: 0, idleTimer: undefined }
    table.entries.set(key, entry)
    table.created++
  }
  clearTimeout(entry.idleTimer)
  entry.idleTimer = undefined
  entry.refs++
  const held = entry
  let released = false
  return {
    cluster: held.cluster,
    key,
    async release() {
      if (released) return
      released = true
      held.refs--
      if (held.refs > 0) return
      const linger = acquire.lingerMs ?? 30_000
      if (linger <= 0) {
        table.entries.delete(key)
        await held.cluster.close()
        return
      }
      held.idleTimer = setTimeout(() => {
        if (held.refs === 0 && table.entries.get(key) === held) {
          table.entries.delete(key)
          void held.cluster.close()
        }
      }, linger)
      held.idleTimer.unref()
    },
  }
}

/** Closes every cluster now, leased or lingering. For process shutdown. */
export async function closeAllTransports(): Promise<void> {
  const entries = [...table.entries.values()]
  table.entries.clear()
  for (const e of entries) clearTimeout(e.idleTimer)
  await Promise.allSettled(entries.map((e) => e.cluster.close()))
}

export function transportStats(): { transports: number; created: number; createdLastMinute: number } {
  return { transports: table.entries.size, created: table.created, createdLastMinute: table.leases.length }
}
