/**
 * Prometheus metrics for operators who scrape. Values are read from the components' own counters at
 * scrape time (collect callbacks), so there is one source of truth and nothing to keep in step.
 */
import { Counter, Gauge, Histogram, Registry } from 'prom-client'

export type MetricSource = () => Readonly<Record<string, number | bigint | undefined>>

export interface MetricSpec {
  readonly name: string
  readonly help: string
  readonly type: 'gauge' | 'counter'
  /** Key in the source's stats object. */
  readonly key: string
}

/** Registers metrics whose values come from `source()` at every scrape, labelled with `labels`. */
export function registerSourcedMetrics(
  registry: Registry,
  specs: readonly MetricSpec[],
  source: MetricSource,
  labels: Readonly<Record<string, string>> = {},
): void {
  const labelNames = Object.keys(labels)
  for (const spec of specs) {
    const existing = registry.getSingleMetric(spec.name)
    if (existing) continue
    const read = (): number => {
      const v = source()[spec.key]
      return typeof v === 'bigint' ? Number(v) : (v ?? 0)
    }
    if (spec.type === 'gauge') {
      new Gauge({
        name: spec.name,
        help: spec.help,
        labelNames,
        registers: [registry],
        collect() {
          this.set(labels, read())
        },
      })
    } else {
      new Counter({
        name: spec.name,
        help: spec.help,
        labelNames,
        registers: [registry],
        collect() {
          this.reset()
          this.inc(labels, read())
        },
      })
    }
  }
}

export { Counter, Gauge, Histogram, Registry }
