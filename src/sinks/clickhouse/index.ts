/** createClickHouseSink(): a sink whose writer is ClickHouse over HTTP (writer.ts), from one options object. */
import type { Registry } from '../../telemetry/metrics.ts'
import { readSinkOptions } from '../options.ts'
import type { PostgresSinkOptions } from '../postgres/index.ts'
import { SpillwaySink } from '../sink.ts'
import { type ClickHouseConnectionOptions, readClickHouseTable } from './options.ts'
import { ClickHouseWriter } from './writer.ts'

export interface ClickHouseSinkOptions
  extends Omit<PostgresSinkOptions, 'postgres' | 'registry' | 'metricLabels'> {
  readonly clickhouse: Partial<ClickHouseConnectionOptions> & { readonly passwordFile?: string }
  readonly registry?: Registry
  readonly metricLabels?: Readonly<Record<string, string>>
}

const DATABASE_KEYS = ['clickhouse', 'table', 'columns', 'createTable', 'offsetsTable'] as const

export function createClickHouseSink(options: ClickHouseSinkOptions): SpillwaySink {
  const { registry, metricLabels } = options
  const { runtime, rest } = readSinkOptions(options, DATABASE_KEYS, {
    ...(registry ? { registry } : {}),
    ...(metricLabels ? { metricLabels } : {}),
  })
  const table = readClickHouseTable(rest)
  return new SpillwaySink(new ClickHouseWriter(table), table.mapping, runtime)
}
