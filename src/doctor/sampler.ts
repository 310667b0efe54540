/**
 * Reads the tail of each topic within a time window and a byte budget, through the group facet's fetch
 * (no group is joined, nothing is committed), and keeps per topic: record and batch sizes, event ids
 * selected by hash, the heaviest keys by count and by bytes, and the longest run of one key back to back.
 *
 * Ids are selected by a hash of the id (kept when hash mod M is 0), never at random: every copy of a
 * selected id is seen, so copy counts are exact for the ids kept. M starts at 1 (every id) and doubles
 * whenever more than `maxIds` distinct ids are held, dropping the ids the new M leaves out.
 */
import { randomUUID } from 'node:crypto'
import type { FetchedRecord, GroupFacet } from '../transport/cluster.ts'
import type { PartitionInfo } from './facts.ts'
import { hash32, Reservoir, TopK } from './stats.ts'

export const SPILLWAY_ID_HEADER = 'spillway-id'

export interface IdCopies {
  count: number
  partitions: number[]
}

export interface KeyRun {
  readonly key: string
  readonly length: number
  readonly partition: number
  readonly startOffset: bigint
}

export class TopicSample {
  records = 0
  bytes = 0
  batches = 0
  maxRecord = 0
  maxBatch = 0
  recordsWithId = 0
  nullKeys = 0
  readonly recordSizes = new Reservoir(20_000)
  readonly batchSizes = new Reservoir(20_000)
  readonly byCount = new TopK(64)
  readonly byBytes = new TopK(64)
  /** Ids selected by hash, with their copies. */
  readonly ids = new Map<string, IdCopies>()
  /** Ids are kept when hash(id) mod idModulus is 0. */
  idModulus = 1
  longestRun: KeyRun | undefined
  /** Partitions read to the end of the window's tail, and partitions cut short by the budget. */
  readonly complete = new Set<number>()
  readonly partial = new Set<number>()
  readonly errors = new Map<number, string>()
  readonly #runs = new Map<number, { key: string; length: number; startOffset: bigint }>()

  readonly topic: string
  readonly maxIds: number

  constructor(topic: string, maxIds: number) {
    this.topic = topic
    this.maxIds = maxIds
  }

  addBatchSizes(sizes: readonly number[]): void {
    for (const s of sizes) {
      this.batches++
      this.batchSizes.add(s)
      if (s > this.maxBatch) this.maxBatch = s
    }
  }

  add(partition: number, r: FetchedRecord, id: string | undefined): void {
    this.records++
    this.bytes += r.size
    this.recordSizes.add(r.size)
    if (r.size > this.maxRecord) this.maxRecord = r.size
    const key = r.key === null ? null : r.key.toString('latin1')
    if (key === null) this.nullKeys++
    else {
      this.byCount.add(key)
      this.byBytes.add(key, r.size)
    }
    this.#run(partition, key, r.offset)
    if (id !== undefined) {
      this.recordsWithId++
      this.#id(id, partition)
    }
  }

  #run(partition: number, key: string | null, offset: bigint): void {
    const run = this.#runs.get(partition)
    if (key !== null && run && run.key === key) {
      run.length++
    } else {
      this.#runs.set(
        partition,
        key === null ? { key: '', length: 0, startOffset: offset } : { key, length: 1, startOffset: offset },
      )
    }
    const now = this.#runs.get(partition)
    if (now && key !== null && now.length > (this.longestRun?.length ?? 0)) {
      this.longestRun = { key: now.key, length: now.length, partition, startOffset: now.startOffset }
    }
  }

  #id(id: string, partition: number): void {
    if (hash32(id) % this.idModulus !== 0) return
    const copies = this.ids.get(id)
    if (copies) {
      copies.count++
      if (!copies.partitions.includes(partition)) copies.partitions.push(partition)
      return
    }
    this.ids.set(id, { count: 1, partitions: [partition] })
    if (this.ids.size > this.maxIds) {
      this.idModulus *= 2
      for (const kept of this.ids.keys()) if (hash32(kept) % this.idModulus !== 0) this.ids.delete(kept)
    }
  }
}

/** The event id of a record: its spillway-id header, or a field of its JSON value when idPath is set. */
export function eventId(r: FetchedRecord, idPath: readonly string[] | null): string | undefined {
  if (idPath === null) {
    for (const [name, value] of r.headers) if (name === SPILLWAY_ID_HEADER) return value.toString('utf8')
    return undefined
  }
  if (r.value === null || r.value[0] !== 0x7b) return undefined
  try {
    let node: unknown = JSON.parse(r.value.toString('utf8'))
    for (const step of idPath) {
      if (typeof node !== 'object' || node === null) return undefined
      node = (node as Record<string, unknown>)[step]
    }
    return typeof node === 'string' || typeof node === 'number' ? String(node) : undefined
  } catch {
    return undefined
  }
}

export interface SampleTarget {
  readonly partition: PartitionInfo
  /** Where reading starts and where it stops (the log end when the run began). */
  readonly from: bigint
  readonly to: bigint
}

export interface SampleProgress {
  readonly bytes: number
  readonly records: number
  readonly partitionsDone: number
  readonly partitions: number
}

export interface SampleOptions {
  readonly maxBytes: number
  readonly idPath: readonly string[] | null
  /** Stop by this performance.now() time. */
  readonly until: number
  readonly requestTimeoutMs: number
  readonly onProgress?: (p: SampleProgress) => void
}

const FETCH_MAX_BYTES = 16 * 1024 * 1024
const PARTITION_FETCH_BYTES = 4 * 1024 * 1024

/** Reads every target's range (or its share of maxBytes) and returns a sample per topic. */
export async function sampleTails(
  group: GroupFacet,
  targets: readonly SampleTarget[],
  options: SampleOptions,
): Promise<Map<string, TopicSample>> {
  const samples = new Map<string, TopicSample>()
  const share = Math.max(1024, Math.floor(options.maxBytes / Math.max(1, targets.length)))
  interface Cursor {
    target: SampleTarget
    sample: TopicSample
    at: bigint
    read: number
    done: boolean
    /** Fetch answers in a row that left this partition out (an incremental fetch session omits idle ones). */
    misses: number
  }
  const cursors: Cursor[] = targets.map((target) => {
    let sample = samples.get(target.partition.topic)
    if (!sample) {
      sample = new TopicSample(target.partition.topic, 200_000)
      samples.set(target.partition.topic, sample)
    }
    return { target, sample, at: target.from, read: 0, done: target.from >= target.to, misses: 0 }
  })
  for (const c of cursors) if (c.done) c.sample.complete.add(c.target.partition.partition)
  const session = `doctor-${randomUUID()}`
  let bytes = 0
  let records = 0
  const report = (): void =>
    options.onProgress?.({
      bytes,
      records,
      partitionsDone: cursors.filter((c) => c.done).length,
      partitions: cursors.length,
    })
  const byLeader = new Map<number, Cursor[]>()
  for (const c of cursors) {
    const list = byLeader.get(c.target.partition.leader) ?? []
    list.push(c)
    byLeader.set(c.target.partition.leader, list)
  }
  try {
    await Promise.all(
      [...byLeader].map(async ([broker, list]) => {
        for (;;) {
          const open = list.filter((c) => !c.done)
          const left = options.until - performance.now()
          if (open.length === 0) return
          if (left < 50) {
            for (const c of open) c.sample.partial.add(c.target.partition.partition)
            return
          }
          let answers: Awaited<ReturnType<GroupFacet['fetch']>>
          try {
            answers = await group.fetch(
              {
                session,
                broker,
                maxWaitMs: 0,
                minBytes: 1,
                maxBytes: FETCH_MAX_BYTES,
                partitions: open.map((c) => ({
                  topic: c.target.partition.topic,
                  partition: c.target.partition.partition,
                  offset: c.at,
                  maxBytes: Math.min(PARTITION_FETCH_BYTES, Math.max(1024, share - c.read)),
                })),
              },
              Math.min(options.requestTimeoutMs, left),
            )
          } catch (error) {
            for (const c of open) {
              c.done = true
              c.sample.errors.set(c.target.partition.partition, (error as Error).message)
            }
            return
          }
          const answered = new Set<Cursor>()
          for (const answer of answers) {
            const c = open.find(
              (x) =>
                x.target.partition.topic === answer.topic &&
                x.target.partition.partition === answer.partition,
            )
            if (!c) continue
            answered.add(c)
            if (answer.error === 'OFFSET_OUT_OF_RANGE' && answer.logStartOffset > c.at) {
              c.at = answer.logStartOffset
              continue
            }
            if (answer.error !== null) {
              c.done = true
              c.sample.errors.set(c.target.partition.partition, answer.error)
              continue
            }
            c.sample.addBatchSizes(answer.batchSizes)
            for (const r of answer.records) {
              if (r.offset >= c.target.to) break
              c.sample.add(c.target.partition.partition, r, eventId(r, options.idPath))
              records++
            }
            c.read += answer.bytes
            bytes += answer.bytes
            const progressed = answer.nextOffset > c.at
            c.at = answer.nextOffset
            if (c.at >= c.target.to) {
              c.done = true
              c.sample.complete.add(c.target.partition.partition)
            } else if (c.read >= share || !progressed) {
              c.done = true
              c.sample.partial.add(c.target.partition.partition)
            }
          }
          for (const c of open) {
            if (answered.has(c) || c.done) c.misses = 0
            else if (++c.misses >= 3) {
              c.done = true
              c.sample.partial.add(c.target.partition.partition)
            }
          }
          report()
        }
      }),
    )
  } finally {
    await group.endSession(session).catch(() => undefined)
  }
  return samples
}
