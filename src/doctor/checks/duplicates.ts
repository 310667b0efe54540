/**
 * duplicates (incident 4): copies per event id in each topic's tail. Ids are selected by hash, so every
 * copy of a selected id is counted; copies of 2, 4, 8 are the outbox-loop signature, and an id on two
 * partitions means its key changed on a retry.
 */
import { type CheckReport, checkReport, type Finding } from '../types.ts'
import type { CheckContext } from './context.ts'
import { coverage, sampleErrors, samplesOf } from './samples.ts'

const BUCKETS = ['1', '2', '3', '4', '5', '6', '7', '8+'] as const

export function copiesDistribution(counts: Iterable<number>): Record<(typeof BUCKETS)[number], number> {
  const out = Object.fromEntries(BUCKETS.map((b) => [b, 0])) as Record<(typeof BUCKETS)[number], number>
  for (const c of counts) out[c >= 8 ? '8+' : (String(c) as (typeof BUCKETS)[number])]++
  return out
}

export function duplicatesCheck(ctx: CheckContext): CheckReport {
  const title = 'Duplicate event ids (incident 4)'
  const samples = samplesOf(ctx, 'duplicates')
  if (!Array.isArray(samples)) return checkReport('duplicates', title, [samples])
  const idSource = ctx.options.idPath
    ? `the value's ${ctx.options.idPath.join('.')}`
    : 'the spillway-id header'
  const findings: Finding[] = sampleErrors('duplicates', samples)
  const notes = [`Event ids are read from ${idSource}.`]
  const rows: (string | number)[][] = []
  for (const s of samples) {
    if (s.records === 0) continue
    notes.push(
      `${coverage(s)}, ${s.recordsWithId} with an id${s.idModulus > 1 ? `, ids kept by hash: 1 in ${s.idModulus}` : ', every id kept'}.`,
    )
    if (s.ids.size === 0) continue
    const distribution = copiesDistribution([...s.ids.values()].map((c) => c.count))
    const duplicated = [...s.ids].filter(([, c]) => c.count > 1)
    const crossPartition = [...s.ids].filter(([, c]) => c.partitions.length > 1)
    const maxCopies = duplicated.reduce((m, [, c]) => Math.max(m, c.count), 1)
    rows.push([s.topic, s.ids.size, ...BUCKETS.map((b) => distribution[b]), maxCopies])
    const confidence = s.idModulus === 1 && s.partial.size === 0 ? 'high' : 'medium'
    const top = [...duplicated]
      .sort((a, b) => b[1].count - a[1].count)
      .slice(0, 10)
      .map(([id, c]) => ({ id, copies: c.count, partitions: c.partitions }))
    if (duplicated.length > 0) {
      const doubling = distribution['4'] + distribution['8+'] > 0
      findings.push({
        id: doubling ? 'duplicates.spiral' : 'duplicates.copies',
        severity: maxCopies >= 4 ? 'crit' : 'warn',
        subject: `topic ${s.topic}`,
        summary: `${duplicated.length} of ${s.ids.size} sampled event ids appear more than once (up to ${maxCopies} copies)${
          doubling
            ? '; counts of 2, 4 and 8 are the signature of a retry or outbox loop that copies what it re-sends'
            : ''
        }.`,
        confidence,
        evidence: { topic: s.topic, idsSampled: s.ids.size, idModulus: s.idModulus, distribution, top },
        remedy:
          'Give each event one id at the source and keep it on every retry; forward and commit retries atomically (spillway retry tiers), and deduplicate by id where the events land.',
      })
    }
    if (crossPartition.length > 0) {
      findings.push({
        id: 'duplicates.cross-partition',
        severity: 'warn',
        subject: `topic ${s.topic}`,
        summary: `${crossPartition.length} event ids appear on more than one partition: their key changed when they were sent again.`,
        confidence,
        evidence: {
          topic: s.topic,
          ids: crossPartition.slice(0, 10).map(([id, c]) => ({ id, partitions: c.partitions })),
        },
        remedy:
          'Keep the key with the event on every retry, so its copies land on one partition and in order.',
      })
    }
  }
  const table = { columns: ['topic', 'ids', ...BUCKETS.map((b) => `×${b}`), 'max'], rows }
  return checkReport('duplicates', title, findings, notes, table)
}
