/** What every check reads: the facts, the second snapshot, the samples and the options. */
import type { Facts, Known, Offsets, Snapshot } from '../facts.ts'
import type { ResolvedDoctorOptions } from '../options.ts'
import type { TopicSample } from '../sampler.ts'

export interface CheckContext {
  readonly facts: Facts
  /** The snapshot taken at the end of the window; undefined when no selected check needs one. */
  readonly second: Snapshot | undefined
  readonly samples: Known<ReadonlyMap<string, TopicSample>> | undefined
  readonly options: ResolvedDoctorOptions
  /** The first offset written within producer.id.expiration.ms, per partition. */
  readonly expiryAgo: Known<Offsets> | undefined
  /** Per `group/topic[partition]`: the timestamp of the record at the committed offset (null: none there). */
  readonly committedTimestamps: Known<ReadonlyMap<string, number | null>> | undefined
}

export const MiB = 1024 * 1024

export function formatBytes(n: number): string {
  if (n >= 1024 ** 3) return `${(n / 1024 ** 3).toFixed(1)} GiB`
  if (n >= MiB) return `${(n / MiB).toFixed(1)} MiB`
  if (n >= 1024) return `${(n / 1024).toFixed(1)} KiB`
  return `${n} B`
}

/** "a, b, c and 4 more" */
export function listed(items: readonly string[], max = 5): string {
  if (items.length <= max) return items.join(', ')
  return `${items.slice(0, max).join(', ')} and ${items.length - max} more`
}
