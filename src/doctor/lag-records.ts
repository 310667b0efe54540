/**
 * Reads the timestamp of the record at given offsets (a group's committed offsets), so lag in seconds is
 * exact: now minus when the oldest unhandled record was written, never interpolated.
 */
import { randomUUID } from 'node:crypto'
import type { GroupFacet } from '../transport/cluster.ts'
import { tp } from './facts.ts'

export interface OffsetLookup {
  readonly topic: string
  readonly partition: number
  readonly leader: number
  readonly offset: bigint
}

export const lookupKey = (l: { topic: string; partition: number; offset: bigint }): string =>
  `${tp(l.topic, l.partition)}@${l.offset}`

/** Per lookupKey: the timestamp (ms) of the first record at or after the offset, or null if none. */
export async function recordTimestamps(
  group: GroupFacet,
  lookups: readonly OffsetLookup[],
  deadlineMs: number,
): Promise<Map<string, number | null>> {
  const out = new Map<string, number | null>()
  const pending = [...new Map(lookups.map((l) => [lookupKey(l), l])).values()]
  const until = performance.now() + deadlineMs
  const session = `doctor-lag-${randomUUID()}`
  try {
    while (pending.length > 0 && performance.now() < until) {
      // one offset per partition per request
      const round = new Map<string, OffsetLookup>()
      for (const l of pending)
        if (!round.has(tp(l.topic, l.partition))) round.set(tp(l.topic, l.partition), l)
      const byLeader = new Map<number, OffsetLookup[]>()
      for (const l of round.values()) byLeader.set(l.leader, [...(byLeader.get(l.leader) ?? []), l])
      await Promise.all(
        [...byLeader].map(async ([broker, list]) => {
          const answers = await group.fetch(
            {
              session,
              broker,
              maxWaitMs: 0,
              minBytes: 1,
              maxBytes: 4 * 1024 * 1024,
              partitions: list.map((l) => ({
                topic: l.topic,
                partition: l.partition,
                offset: l.offset,
                maxBytes: 64 * 1024,
              })),
            },
            Math.max(100, until - performance.now()),
          )
          for (const l of list) {
            const a = answers.find((x) => x.topic === l.topic && x.partition === l.partition)
            out.set(lookupKey(l), a?.records[0]?.timestamp ?? null)
          }
        }),
      )
      for (const l of round.values()) pending.splice(pending.indexOf(l), 1)
    }
  } finally {
    await group.endSession(session).catch(() => undefined)
  }
  return out
}
