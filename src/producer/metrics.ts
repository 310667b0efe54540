/**
 * The producer's Prometheus metrics: one catalogue, read from one stats() snapshot per scrape (see
 * telemetry/metrics.ts), plus the fsync latency histogram fed by the log. Several producers may share a
 * registry under labels of their own.
 */
import type { DurableLog } from '../log/log.ts'
import { Histogram, type MetricSpec, type Registry, registerSourcedMetrics } from '../telemetry/metrics.ts'
import type { ProducerStats } from './types.ts'

const PRODUCER_METRICS: readonly MetricSpec[] = [
  {
    name: 'spillway_events_accepted_total',
    help: 'Events accepted by send()',
    type: 'counter',
    key: 'accepted',
  },
  {
    name: 'spillway_events_refused_total',
    help: 'Events refused by send(), any reason',
    type: 'counter',
    key: 'refused',
  },
  {
    name: 'spillway_events_delivered_total',
    help: 'Events acknowledged by Kafka',
    type: 'counter',
    key: 'delivered',
  },
  {
    name: 'spillway_events_replayed_total',
    help: 'Events sent again after an ambiguous or partial failure or a crash (the only source of duplicates)',
    type: 'counter',
    key: 'replayed',
  },
  {
    name: 'spillway_events_dead_lettered_total',
    help: 'Poison events moved to the dead-letter log',
    type: 'counter',
    key: 'deadLettered',
  },
  {
    name: 'spillway_events_waiting',
    help: 'Events waiting for their topic to exist (the waiting log)',
    type: 'gauge',
    key: 'waiting',
  },
  {
    name: 'spillway_dead_letters_delivered_total',
    help: 'Dead letters delivered to their dead-letter topic (deadLetterTopics)',
    type: 'counter',
    key: 'deadLettersDelivered',
  },
  {
    name: 'spillway_batches_failed_total',
    help: 'Batches Kafka did not fully acknowledge',
    type: 'counter',
    key: 'failedBatches',
  },
  {
    name: 'spillway_transport_rebuilds_total',
    help: 'Kafka producers rebuilt after a fatal error',
    type: 'counter',
    key: 'rebuilds',
  },
  {
    name: 'spillway_kafka_producer_inits_total',
    help: 'Kafka producers created by the shared transport',
    type: 'counter',
    key: 'kafkaProducerInits',
  },
  {
    name: 'spillway_transports_created_total',
    help: 'Shared transports created in this process',
    type: 'counter',
    key: 'transportsCreated',
  },
  {
    name: 'spillway_inflight_bytes',
    help: 'Bytes in the batch being sent',
    type: 'gauge',
    key: 'inflightBytes',
  },
  {
    name: 'spillway_inflight_max_bytes',
    help: 'Bound on in-flight bytes (batch.maxBytes)',
    type: 'gauge',
    key: 'inflightMax',
  },
  {
    name: 'spillway_breaker_open',
    help: 'Breaker state: 0 closed, 0.5 half-open, 1 open',
    type: 'gauge',
    key: 'breakerOpen',
  },
  {
    name: 'spillway_log_segments',
    help: 'Segment files in the local log',
    type: 'gauge',
    key: 'logSegments',
  },
  { name: 'spillway_log_bytes', help: 'Bytes on disk in the local log', type: 'gauge', key: 'logBytes' },
  {
    name: 'spillway_log_max_bytes',
    help: 'Disk budget of the local log',
    type: 'gauge',
    key: 'logMaxBytes',
  },
  {
    name: 'spillway_log_queued_bytes',
    help: 'Bytes accepted and waiting for the next write+fsync',
    type: 'gauge',
    key: 'logQueuedBytes',
  },
  {
    name: 'spillway_log_tail_cache_bytes',
    help: 'Bytes of just-written records kept in memory for delivery',
    type: 'gauge',
    key: 'logTailCacheBytes',
  },
  {
    name: 'spillway_log_pending_records',
    help: 'Records in the log not yet delivered',
    type: 'gauge',
    key: 'logPending',
  },
  {
    name: 'spillway_log_oldest_pending_seconds',
    help: 'Age of the oldest undelivered record',
    type: 'gauge',
    key: 'logOldestAge',
  },
  {
    name: 'spillway_log_fsyncs_total',
    help: 'fdatasync calls (group commits)',
    type: 'counter',
    key: 'logFsyncs',
  },
  {
    name: 'spillway_log_refused_full_total',
    help: 'Appends refused because the disk budget or disk was full',
    type: 'counter',
    key: 'logRefusedFull',
  },
  {
    name: 'spillway_log_corrupt_regions_total',
    help: 'Damaged regions found and skipped',
    type: 'counter',
    key: 'logCorruptRegions',
  },
  {
    name: 'spillway_memory_bytes',
    help: 'Bytes held by the memory/kafka-mode backlog',
    type: 'gauge',
    key: 'memoryBytes',
  },
  {
    name: 'spillway_memory_max_bytes',
    help: 'Memory budget (memoryBytes)',
    type: 'gauge',
    key: 'memoryMaxBytes',
  },
]

/** The stats as the flat values the catalogue's `key`s name. */
function flatten(s: ProducerStats, inflightMax: number): Record<string, number | bigint | undefined> {
  const log = s.log
  return {
    accepted: s.accepted,
    refused: s.refused,
    delivered: s.delivered,
    replayed: s.replayed,
    deadLettered: s.deadLettered,
    deadLettersDelivered: s.deadLettersDelivered,
    waiting: s.waiting.events,
    failedBatches: s.failedBatches,
    rebuilds: s.rebuilds,
    inflightBytes: s.inflightBytes,
    inflightMax,
    kafkaProducerInits: s.kafkaProducerInits,
    transportsCreated: s.transportsCreated,
    breakerOpen: s.breaker === 'closed' ? 0 : s.breaker === 'open' ? 1 : 0.5,
    logSegments: log?.segments,
    logBytes: log?.diskBytes,
    logMaxBytes: log?.maxBytes,
    logQueuedBytes: log?.queuedBytes,
    logTailCacheBytes: log?.tailCacheBytes,
    logPending: log?.pendingRecords,
    logOldestAge:
      log?.oldestPendingTimestamp === undefined ? 0 : (Date.now() - log.oldestPendingTimestamp) / 1000,
    logFsyncs: log?.fsyncs,
    logRefusedFull: log?.refusedFull,
    logCorruptRegions: log?.corruptRegions,
    memoryBytes: s.memory?.bytes,
    memoryMaxBytes: s.memory?.maxBytes,
  }
}

/**
 * Registers the producer's metrics on `registry` under `labels`; returns what unregisters them. A name
 * clash with another component on the same registry throws (SPW_ERR_INVALID_OPTION) before anything runs.
 */
export function registerProducerMetrics(
  registry: Registry,
  stats: () => ProducerStats,
  inflightMax: number,
  labels: Readonly<Record<string, string>>,
  log: DurableLog | undefined,
): () => void {
  const unregister = registerSourcedMetrics(
    registry,
    PRODUCER_METRICS,
    () => flatten(stats(), inflightMax),
    labels,
  )
  if (log) {
    const fsync =
      (registry.getSingleMetric('spillway_log_fsync_seconds') as Histogram | undefined) ??
      new Histogram({
        name: 'spillway_log_fsync_seconds',
        help: 'fdatasync latency of the local log (the cost of a durable ack)',
        buckets: [0.0001, 0.00025, 0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 1],
        labelNames: Object.keys(labels),
        registers: [registry],
      })
    log.on('fsync', (ms) => fsync.observe(labels, ms / 1000))
  }
  return unregister
}
