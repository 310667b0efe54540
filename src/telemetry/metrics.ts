/**
 * Prometheus metrics for operators who scrape. Values are read from the components' own counters at
 * scrape time (collect callbacks), so there is one source of truth and nothing to keep in step.
 *
 * Several components may share one registry (a process holds a producer and, later, a consumer): each
 * registers its source with labels of its own, and every metric name then reports one sample per source.
 * A source is read once per scrape however many metrics it feeds.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client'
import { SpillwayError } from '../errors.ts'

export type MetricSource = () => Readonly<Record<string, number | bigint | undefined>>

export interface MetricSpec {
  readonly name: string
  readonly help: string
  readonly type: 'gauge' | 'counter'
  /** Key in the source's stats object. */
  readonly key: string
}

interface Member {
  readonly labels: Readonly<Record<string, string>>
  readonly read: () => number
}

interface Family {
  readonly labelNames: readonly string[]
  readonly members: Member[]
}

const families = new WeakMap<Registry, Map<string, Family>>()

/** The source's stats taken once and reused until the current scrape has finished. */
function oncePerScrape(source: MetricSource): MetricSource {
  let snapshot: ReturnType<MetricSource> | undefined
  return () => {
    if (snapshot === undefined) {
      snapshot = source()
      setImmediate(() => {
        snapshot = undefined
      })
    }
    return snapshot
  }
}

const sameLabels = (a: Readonly<Record<string, string>>, b: Readonly<Record<string, string>>): boolean =>
  Object.keys(a).every((k) => a[k] === b[k])

/**
 * Registers metrics whose values come from `source()` at every scrape, labelled with `labels`. Returns a
 * function that removes this source's samples again (the metric stays for the other sources). A second
 * source with the same labels, or with other label names, is refused: its samples would be lost.
 */
export function registerSourcedMetrics(
  registry: Registry,
  specs: readonly MetricSpec[],
  source: MetricSource,
  labels: Readonly<Record<string, string>> = {},
): () => void {
  const labelNames = Object.keys(labels).sort()
  const byName = families.get(registry) ?? new Map<string, Family>()
  families.set(registry, byName)
  const snapshot = oncePerScrape(source)
  for (const spec of specs) {
    const family = byName.get(spec.name)
    if (family === undefined && registry.getSingleMetric(spec.name))
      throw refused(spec.name, 'is already registered by something else')
    if (family && family.labelNames.join() !== labelNames.join())
      throw refused(spec.name, `has labels [${family.labelNames.join(', ')}], not [${labelNames.join(', ')}]`)
    if (family?.members.some((m) => sameLabels(m.labels, labels)))
      throw refused(spec.name, `already has a source labelled ${JSON.stringify(labels)}`)
  }
  const added: [Family, Member][] = []
  for (const spec of specs) {
    const member: Member = {
      labels,
      read: () => {
        const v = snapshot()[spec.key]
        return typeof v === 'bigint' ? Number(v) : (v ?? 0)
      },
    }
    let family = byName.get(spec.name)
    if (family === undefined) {
      const created: Family = { labelNames, members: [] }
      family = created
      byName.set(spec.name, created)
      const config = { name: spec.name, help: spec.help, labelNames, registers: [registry] }
      if (spec.type === 'gauge') {
        new Gauge({
          ...config,
          collect() {
            this.reset()
            for (const m of created.members) this.set(m.labels, m.read())
          },
        })
      } else {
        new Counter({
          ...config,
          collect() {
            this.reset()
            for (const m of created.members) this.inc(m.labels, m.read())
          },
        })
      }
    }
    family.members.push(member)
    added.push([family, member])
  }
  return () => {
    for (const [family, member] of added) {
      const at = family.members.indexOf(member)
      if (at >= 0) family.members.splice(at, 1)
    }
  }
}

function refused(name: string, why: string): SpillwayError {
  return new SpillwayError(
    'SPW_ERR_INVALID_OPTION',
    `metric ${name} ${why}; give each component that shares a registry its own metricLabels`,
    { details: { key: 'metricLabels', metric: name } },
  )
}

export { Counter, Gauge, Histogram, Registry }
