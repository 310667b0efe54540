/**
 * The consumer's Prometheus metrics: counters and gauges read from one stats() snapshot per scrape
 * (telemetry/metrics.ts), per-partition lag and state read the same way, and a record-size histogram
 * per topic fed as records arrive. Several consumers may share a registry under labels of their own.
 */
import {
  Gauge,
  Histogram,
  type MetricSpec,
  type Registry,
  registerSourcedMetrics,
} from '../telemetry/metrics.ts'
import type { ConsumerStats, PartitionState } from './types.ts'

const spec = (name: string, help: string, type: 'gauge' | 'counter', key: string): MetricSpec => ({
  name,
  help,
  type,
  key,
})

const CONSUMER_METRICS: readonly MetricSpec[] = [
  spec('spillway_consumer_records_handled_total', 'Records whose handler completed', 'counter', 'handled'),
  spec(
    'spillway_consumer_handler_failures_total',
    'Records whose handler (or decoder) failed or timed out',
    'counter',
    'failed',
  ),
  spec(
    'spillway_consumer_records_retried_total',
    'Records tried again in place after a failure',
    'counter',
    'retried',
  ),
  spec(
    'spillway_consumer_records_skipped_total',
    'Records skipped by the error policy',
    'counter',
    'skipped',
  ),
  spec(
    'spillway_consumer_records_dead_lettered_total',
    'Records written to their dead-letter topic',
    'counter',
    'deadLettered',
  ),
  spec(
    'spillway_consumer_records_tiered_total',
    'Records moved on to a retry tier (retry tiers)',
    'counter',
    'tiered',
  ),
  spec(
    'spillway_consumer_records_blocked_behind_total',
    'Records moved to a retry tier unhandled, behind their key (retry.blockKey)',
    'counter',
    'blockedBehind',
  ),
  spec(
    'spillway_consumer_delayed_records',
    'Records held in retry tiers until they are due',
    'gauge',
    'delayed',
  ),
  spec(
    'spillway_consumer_retry_transactions_total',
    'Transactions begun to forward records and commit offsets (retry tiers)',
    'counter',
    'transactions',
  ),
  spec(
    'spillway_consumer_retry_transactions_aborted_total',
    'Forwarding transactions aborted (their copies are never seen by read_committed readers)',
    'counter',
    'transactionsAborted',
  ),
  spec(
    'spillway_consumer_duplicates_total',
    'Records skipped because their event id was already handled (dedupe)',
    'counter',
    'duplicates',
  ),
  spec(
    'spillway_consumer_coalesced_total',
    'Records superseded by a newer record of their key (coalesce)',
    'counter',
    'coalesced',
  ),
  spec(
    'spillway_consumer_already_done_total',
    'Records a previous owner had completed (commit metadata), not handled again',
    'counter',
    'alreadyDone',
  ),
  spec(
    'spillway_consumer_handler_timeouts_total',
    'Handler calls that passed handlerTimeoutMs',
    'counter',
    'handlerTimeouts',
  ),
  spec('spillway_consumer_fetches_total', 'Fetch requests answered', 'counter', 'fetches'),
  spec('spillway_consumer_fetched_bytes_total', 'Record batch bytes fetched', 'counter', 'fetchedBytes'),
  spec('spillway_consumer_commits_total', 'Offset commits answered', 'counter', 'commits'),
  spec(
    'spillway_consumer_commits_refused_total',
    'Commits (or partitions of one) refused as stale or fenced, and dropped',
    'counter',
    'commitsRefused',
  ),
  spec('spillway_consumer_rebalances_total', 'Assignments received', 'counter', 'rebalances'),
  spec(
    'spillway_consumer_abandoned_total',
    'Handlers still running when their partition was given up (not committed)',
    'counter',
    'abandoned',
  ),
  spec('spillway_consumer_running', 'Handler calls running now', 'gauge', 'running'),
  spec('spillway_consumer_buffered_bytes', 'Bytes of fetched records not yet done', 'gauge', 'bufferedBytes'),
  spec('spillway_consumer_assigned_partitions', 'Partitions owned now', 'gauge', 'assigned'),
  spec(
    'spillway_consumer_stalled_partitions',
    'Partitions with records waiting and no progress for stallAlarmMs',
    'gauge',
    'stalledPartitions',
  ),
  spec(
    'spillway_consumer_lag_records',
    'Records between the done watermark and the log end, all partitions',
    'gauge',
    'lagRecords',
  ),
]

const STATES: readonly PartitionState[] = [
  'starting',
  'fetching',
  'paused',
  'blocked',
  'retrying',
  'delayed',
  'idle',
]

type Source = { readonly labels: Readonly<Record<string, string>>; readonly stats: () => ConsumerStats }
const partitionSources = new WeakMap<Registry, Set<Source>>()

function partitionGauge(
  registry: Registry,
  name: string,
  help: string,
  labelNames: readonly string[],
  read: (
    p: ConsumerStats['partitions'][number],
    labels: Record<string, string>,
    set: (l: Record<string, string>, v: number) => void,
  ) => void,
): void {
  if (registry.getSingleMetric(name)) return
  new Gauge({
    name,
    help,
    labelNames: [...labelNames],
    registers: [registry],
    collect() {
      this.reset()
      for (const source of partitionSources.get(registry) ?? []) {
        for (const p of source.stats().partitions) {
          read(p, { ...source.labels, topic: p.topic, partition: String(p.partition) }, (l, v) =>
            this.set(l, v),
          )
        }
      }
    },
  })
}

export interface ConsumerMetrics {
  readonly unregister: () => void
  readonly observeRecordSize: (topic: string, bytes: number) => void
}

/** Registers the consumer's metrics on `registry` under `labels`. */
export function registerConsumerMetrics(
  registry: Registry,
  stats: () => ConsumerStats,
  labels: Readonly<Record<string, string>>,
): ConsumerMetrics {
  const unregister = registerSourcedMetrics(registry, CONSUMER_METRICS, stats as never, labels)
  const labelNames = [...Object.keys(labels), 'topic', 'partition']
  partitionGauge(
    registry,
    'spillway_consumer_partition_lag_records',
    'Records behind the log end, per partition',
    labelNames,
    (p, l, set) => set(l, Number(p.lagRecords)),
  )
  partitionGauge(
    registry,
    'spillway_consumer_partition_lag_seconds',
    'Now minus the timestamp of the oldest record not yet done, per partition',
    labelNames,
    (p, l, set) => set(l, p.lagSeconds),
  )
  partitionGauge(
    registry,
    'spillway_consumer_partition_state',
    'The partition state (1 for the current one): starting, fetching, paused, blocked, retrying, idle',
    [...labelNames, 'state'],
    (p, l, set) => {
      for (const s of STATES) set({ ...l, state: s }, p.state === s ? 1 : 0)
    },
  )
  const source: Source = { labels, stats }
  const set = partitionSources.get(registry) ?? new Set<Source>()
  partitionSources.set(registry, set)
  set.add(source)
  const sizes =
    (registry.getSingleMetric('spillway_consumer_record_bytes') as Histogram | undefined) ??
    new Histogram({
      name: 'spillway_consumer_record_bytes',
      help: 'Size of consumed records (key, value and headers), per topic',
      labelNames: [...Object.keys(labels), 'topic'],
      buckets: [256, 1024, 4096, 16384, 65536, 262144, 614400, 1048576, 4194304, 16777216],
      registers: [registry],
    })
  return {
    unregister: () => {
      unregister()
      set.delete(source)
    },
    observeRecordSize: (topic, bytes) => sizes.observe({ ...labels, topic }, bytes),
  }
}
