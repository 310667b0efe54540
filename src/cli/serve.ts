/** `spillway serve`: loads the config (file, environment, flags), starts the gateway, handles signals. */
import { applyEnvironment, configHelp, resolveGatewayConfig } from '../gateway/config.ts'
import { createGateway } from '../gateway/server.ts'
import { loadConfigFile, readObject } from '../options.ts'
import { parseArgs } from './args.ts'

export const serveHelp = `Usage: spillway serve [--config FILE] [--port N] [--host ADDR] [--brokers H:P,…] [--log-dir DIR] [--ack MODE]

Runs the HTTP ingestion gateway:
  POST /v1/batch, /v1/track, /v1/identify, /v1/page, /v1/screen, /v1/group, /v1/alias   Segment Tracking API
  POST /v3/clusters/{cluster_id}/topics/{topic}/records                                 Confluent REST Proxy v3
  GET  /healthz  /readyz  /metrics  /  /status  /status.json                           operations

With no Kafka configured it runs on its embedded default: events are fsynced into the local log
(./.spillway/log) and stay there until kafka.brokers is set, then they are delivered.

Configuration (JSON file; the environment overrides the file, flags override both):
${configHelp.map(([k, v]) => `  ${k.padEnd(34)} ${v}`).join('\n')}

Environment: SPILLWAY_CONFIG (file), SPILLWAY_HOST, SPILLWAY_PORT, SPILLWAY_BROKERS, SPILLWAY_ACK,
SPILLWAY_LOG_DIR, SPILLWAY_KEYS (JSON array).

Signals: SIGTERM/SIGINT stop accepting, finish in-flight requests, deliver for up to shutdownTimeoutMs and
leave the rest durable in the log. A second signal exits at once; acknowledged events are already on disk.
`

export async function runServe(argv: readonly string[]): Promise<number> {
  const args = parseArgs(argv, {
    flags: ['help'],
    values: ['config', 'port', 'host', 'brokers', 'log-dir', 'ack'],
  })
  if (args.flags.has('help')) {
    process.stdout.write(serveHelp)
    return 0
  }
  const file = (args.flags.get('config') as string | undefined) ?? process.env.SPILLWAY_CONFIG
  let raw = readObject(file ? loadConfigFile(file) : {}, 'config')
  raw = applyEnvironment(raw, process.env)
  const flag = (name: string): string | undefined => args.flags.get(name) as string | undefined
  if (flag('port')) raw.port = Number(flag('port'))
  if (flag('host')) raw.host = flag('host')
  if (flag('ack')) raw.ack = flag('ack')
  if (flag('brokers'))
    raw.kafka = { ...readObject(raw.kafka, 'kafka'), brokers: (flag('brokers') as string).split(',') }
  if (flag('log-dir')) raw.log = { ...readObject(raw.log, 'log'), dir: flag('log-dir') }
  const config = resolveGatewayConfig(raw)
  const gateway = await createGateway(config)
  await gateway.listen()

  let signals = 0
  const stopped = new Promise<number>((resolve) => {
    const onSignal = (signal: NodeJS.Signals): void => {
      signals++
      if (signals > 1) {
        gateway.logger.warn(
          { signal },
          'second signal: exiting now; acknowledged events are already in the local log',
        )
        process.exit(130)
      }
      gateway.logger.info(
        { signal },
        'shutting down: no new requests, finishing in-flight ones, delivering what can be delivered',
      )
      gateway.close().then(
        () => resolve(0),
        (error: unknown) => {
          gateway.logger.error({ err: (error as Error).message }, 'shutdown failed')
          resolve(1)
        },
      )
    }
    process.on('SIGTERM', onSignal)
    process.on('SIGINT', onSignal)
  })
  return await stopped
}
