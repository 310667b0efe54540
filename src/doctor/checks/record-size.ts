/**
 * record-size (incident 3): record and batch sizes per topic against the topic's max.message.bytes, the
 * brokers' message.max.bytes and replica.fetch.max.bytes, and the consumers' fetch size.
 */
import { anyBrokerConfig, configNumber } from '../facts.ts'
import { percentile } from '../stats.ts'
import { type CheckReport, checkReport, type Finding } from '../types.ts'
import { type CheckContext, formatBytes } from './context.ts'
import { coverage, sampleErrors, samplesOf } from './samples.ts'

export const LARGE_AVERAGE = 600 * 1000

export function recordSizeCheck(ctx: CheckContext): CheckReport {
  const title = 'Record sizes against limits (incident 3)'
  const samples = samplesOf(ctx, 'record-size')
  if (!Array.isArray(samples)) return checkReport('record-size', title, [samples])
  const findings: Finding[] = sampleErrors('record-size', samples)
  const fetchBytes = ctx.options.consumerFetchBytes
  const brokerMax = Number(anyBrokerConfig(ctx.facts.brokerConfigs, 'message.max.bytes')?.value ?? Number.NaN)
  const replicaFetch = Number(
    anyBrokerConfig(ctx.facts.brokerConfigs, 'replica.fetch.max.bytes')?.value ?? Number.NaN,
  )
  const notes = [
    `Consumer fetch size taken as ${formatBytes(fetchBytes)} per partition (--consumer-fetch-bytes).`,
    ...(Number.isFinite(brokerMax)
      ? [`Broker message.max.bytes ${brokerMax}, replica.fetch.max.bytes ${replicaFetch}.`]
      : []),
  ]
  const rows: (string | number)[][] = []
  for (const s of samples) {
    if (s.records === 0) continue
    notes.push(`${coverage(s)}.`)
    const sizes = s.recordSizes.values
    const batches = s.batchSizes.values
    const p50 = percentile(sizes, 50)
    const p99 = percentile(sizes, 99)
    const average = s.bytes / s.records
    const topicMax = configNumber(ctx.facts.topicConfigs, s.topic, 'max.message.bytes')
    const perFetch = p50 > 0 ? fetchBytes / p50 : Number.POSITIVE_INFINITY
    rows.push([
      s.topic,
      s.records,
      formatBytes(p50),
      formatBytes(p99),
      formatBytes(s.maxRecord),
      formatBytes(percentile(batches, 99)),
      formatBytes(s.maxBatch),
      topicMax === undefined ? '-' : formatBytes(topicMax),
    ])
    const evidence = {
      topic: s.topic,
      sampledRecords: s.records,
      recordBytes: { p50, p99, max: s.maxRecord, average: Math.round(average) },
      batchBytes: { p50: percentile(batches, 50), p99: percentile(batches, 99), max: s.maxBatch },
      maxMessageBytes: topicMax ?? null,
      brokerMessageMaxBytes: Number.isFinite(brokerMax) ? brokerMax : null,
      replicaFetchMaxBytes: Number.isFinite(replicaFetch) ? replicaFetch : null,
      consumerFetchBytes: fetchBytes,
      recordsPerFetch: Number.isFinite(perFetch) ? Number(perFetch.toFixed(2)) : null,
    }
    const confidence = s.records >= 20 ? 'high' : 'medium'
    if (perFetch < 2) {
      findings.push({
        id: 'record-size.one-per-fetch',
        severity: 'warn',
        subject: `topic ${s.topic}`,
        summary: `Half the records of ${s.topic} are ${formatBytes(p50)} or more: a consumer fetching ${formatBytes(fetchBytes)} per partition gets about one record per fetch, so this partition falls behind its neighbours.`,
        confidence,
        evidence,
        remedy: `Raise the consumers' max.partition.fetch.bytes to several records (at least ${formatBytes(p99 * 4)}), or use a consumer whose fetch size follows the batches it sees (spillway does); better, keep large payloads out of Kafka and send a reference.`,
      })
    }
    if (average > LARGE_AVERAGE) {
      findings.push({
        id: 'record-size.large-average',
        severity: 'warn',
        subject: `topic ${s.topic}`,
        summary: `Records of ${s.topic} average ${formatBytes(average)}, above 600 KB.`,
        confidence,
        evidence,
        remedy: 'Compress at the producer, split the payload, or store it elsewhere and send a reference.',
      })
    }
    const limit = topicMax ?? (Number.isFinite(brokerMax) ? brokerMax : undefined)
    if (limit !== undefined && s.maxBatch >= 0.9 * limit) {
      findings.push({
        id: 'record-size.near-limit',
        severity: s.maxBatch > limit ? 'crit' : 'warn',
        subject: `topic ${s.topic}`,
        summary: `The largest batch of ${s.topic} is ${formatBytes(s.maxBatch)}, ${Math.round((100 * s.maxBatch) / limit)}% of its max.message.bytes (${formatBytes(limit)}): a slightly larger one will be refused.`,
        confidence,
        evidence,
        remedy:
          'Raise max.message.bytes with headroom (and replica.fetch.max.bytes with it), or make records smaller.',
      })
    }
  }
  const table = {
    columns: [
      'topic',
      'sampled',
      'p50 record',
      'p99 record',
      'max record',
      'p99 batch',
      'max batch',
      'max.message.bytes',
    ],
    rows,
  }
  return checkReport('record-size', title, findings, notes, table)
}
