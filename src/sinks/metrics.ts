/** A sink's Prometheus metrics, read from its stats() at scrape time, labelled with the sink's name. */
import { type MetricSpec, type Registry, registerSourcedMetrics } from '../telemetry/metrics.ts'
import type { SpillwaySink } from './sink.ts'

const SINK_METRICS: readonly MetricSpec[] = [
  {
    name: 'spillway_sink_rows_written_total',
    help: 'Rows the sink inserted',
    type: 'counter',
    key: 'rowsWritten',
  },
  {
    name: 'spillway_sink_rows_existing_total',
    help: 'Records whose event id the table already had (redeliveries), not written again',
    type: 'counter',
    key: 'rowsExisting',
  },
  { name: 'spillway_sink_batches_total', help: 'Batches committed', type: 'counter', key: 'batches' },
  {
    name: 'spillway_sink_rows_refused_total',
    help: 'Records the database or the mapping refused, sent to the dead-letter topic',
    type: 'counter',
    key: 'refused',
  },
  {
    name: 'spillway_sink_retries_total',
    help: 'Batch attempts that failed and were retried (database down, slow or restarting)',
    type: 'counter',
    key: 'retries',
  },
  {
    name: 'spillway_sink_database_up',
    help: '1 when the last attempt to reach the database succeeded, else 0',
    type: 'gauge',
    key: 'databaseUp',
  },
]

export function registerSinkMetrics(registry: Registry, sink: SpillwaySink, name: string): () => void {
  return registerSourcedMetrics(
    registry,
    SINK_METRICS,
    () => {
      const s = sink.stats()
      return {
        rowsWritten: s.rowsWritten,
        rowsExisting: s.rowsExisting,
        batches: s.batches,
        refused: s.refused,
        retries: s.retries,
        databaseUp: s.databaseUp ? 1 : 0,
      }
    },
    { sink: name },
  )
}
