/** Shared by the checks that read the sampler's output: per-topic coverage and its caveats. */

import type { TopicSample } from '../sampler.ts'
import type { CheckId, Finding } from '../types.ts'
import { unknownFinding } from '../types.ts'
import type { CheckContext } from './context.ts'

/** The samples of user topics, or a finding saying why there are none. */
export function samplesOf(ctx: CheckContext, check: CheckId): TopicSample[] | Finding {
  if (!ctx.samples) return unknownFinding(check, 'cluster', 'the sampler did not run')
  if (!ctx.samples.ok) return unknownFinding(check, 'cluster', ctx.samples.reason)
  return [...ctx.samples.value.values()].sort((a, b) => a.topic.localeCompare(b.topic))
}

/** Findings for partitions the sampler could not read. */
export function sampleErrors(check: CheckId, samples: readonly TopicSample[]): Finding[] {
  return samples
    .filter((s) => s.errors.size > 0)
    .map((s) =>
      unknownFinding(
        check,
        `topic ${s.topic}`,
        `partitions ${[...s.errors.keys()].join(', ')} could not be read (${[...new Set(s.errors.values())].join('; ')})`,
      ),
    )
}

export function coverage(s: TopicSample): string {
  const cut = s.partial.size > 0 ? `, ${s.partial.size} partition(s) cut short by the budget` : ''
  return `${s.topic}: ${s.records} records sampled${cut}`
}

/** A key as text when it is printable, otherwise base64. */
export function showKey(latin1: string): string {
  const bytes = Buffer.from(latin1, 'latin1')
  const text = bytes.toString('utf8')
  const printable = Buffer.byteLength(text) === bytes.length && /^[\x20-\x7e]*$/.test(text)
  const shown = printable ? text : `base64:${bytes.toString('base64')}`
  return shown.length > 64 ? `${shown.slice(0, 61)}...` : shown
}
