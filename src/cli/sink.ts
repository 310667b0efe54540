/** `spillway sink`: loads the config (file, environment, flags), runs the sinks as a service, handles signals. */
import { loadConfigFile, readObject } from '../options.ts'
import { applySinkEnvironment, resolveSinkServiceConfig, sinkConfigHelp } from '../sinks/config.ts'
import { createSinkService } from '../sinks/service.ts'
import { parseArgs } from './args.ts'

export const sinkHelp = `Usage: spillway sink --config FILE [--port N] [--host ADDR] [--brokers H:P,…]

Runs consumers that write what they read into databases (PostgreSQL, ClickHouse), each partition's offset
kept in the database beside the rows: a crash, a restart or a rebalance neither loses nor repeats a row
(in ClickHouse, once read with FINAL).
  GET /healthz  /readyz  /metrics  /  /status  /status.json      operations

Configuration (JSON file; the environment overrides the file, flags override both):
${sinkConfigHelp.map(([k, v]) => `  ${k.padEnd(30)} ${v}`).join('\n')}

Example:
  { "kafka": { "brokers": ["kafka-1:9092"] },
    "sinks": [ { "type": "postgres", "groupId": "orders-to-pg", "topics": ["orders"],
                 "postgres": { "host": "db", "database": "shop", "user": "spillway", "passwordFile": "/run/secrets/pg" },
                 "table": "orders", "columns": { "id": "$id", "customer": "customer.id", "total": "total" } } ] }

Environment: SPILLWAY_CONFIG (file), SPILLWAY_HOST, SPILLWAY_PORT, SPILLWAY_BROKERS, SPILLWAY_PG_PASSWORD,
SPILLWAY_CLICKHOUSE_PASSWORD, SPILLWAY_SASL_PASSWORD.

Signals: SIGTERM/SIGINT stop fetching, let running batches finish within shutdownTimeoutMs, commit and
leave the groups. A second signal exits at once: what was not committed is written again on restart, once.
`

export async function runSink(argv: readonly string[]): Promise<number> {
  const args = parseArgs(argv, { flags: ['help'], values: ['config', 'port', 'host', 'brokers'] })
  if (args.flags.has('help')) {
    process.stdout.write(sinkHelp)
    return 0
  }
  const file = (args.flags.get('config') as string | undefined) ?? process.env.SPILLWAY_CONFIG
  let raw = readObject(file ? loadConfigFile(file) : {}, 'config')
  raw = applySinkEnvironment(raw, process.env)
  const flag = (name: string): string | undefined => args.flags.get(name) as string | undefined
  if (flag('port')) raw.port = Number(flag('port'))
  if (flag('host')) raw.host = flag('host')
  if (flag('brokers'))
    raw.kafka = { ...readObject(raw.kafka ?? {}, 'kafka'), brokers: (flag('brokers') as string).split(',') }
  const config = resolveSinkServiceConfig(raw)
  const service = createSinkService(config)

  let signals = 0
  const stopped = new Promise<number>((resolve) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      signals++
      if (signals > 1) {
        service.logger.warn(
          { signal },
          'second signal: exiting now; uncommitted batches are written again on restart',
        )
        process.exit(130)
      }
      service.logger.info({ signal }, 'shutting down: no new fetches, finishing running batches, committing')
      service.close().then(
        () => resolve(0),
        (error: unknown) => {
          service.logger.error({ err: (error as Error).message }, 'shutdown failed')
          resolve(1)
        },
      )
    }
    process.on('SIGTERM', onSignal)
    process.on('SIGINT', onSignal)
  })
  try {
    await service.start()
  } catch (error) {
    await service.close().catch(() => undefined)
    throw error
  }
  return await stopped
}
