/**
 * `npm test`: installs and starts the real components the suite needs (one Kafka broker with a SASL_SSL
 * listener beside its plain ones, a Toxiproxy in front of its PROXIED listener, and a PostgreSQL 15 server;
 * ClickHouse is installed here and started by the tests that use it),
 * runs node:test over the given files (default: every test), then
 * stops everything. Set SPILLWAY_TEST_BOOTSTRAP to reuse a broker you started yourself.
 *
 *   npm test                                 # the whole suite
 *   npm test -- test/log/segment.test.ts     # one file
 *   SPILLWAY_SOAK=1 npm test                 # long variants too (npm run soak)
 */
import { execFileSync, spawn } from 'node:child_process'
import { mkdirSync } from 'node:fs'
import { join } from 'node:path'
import { fileURLToPath } from 'node:url'
import './check-node.ts'
import { ensureClickHouseInstalled } from './clickhouse/clickhouse.ts'
import { ensureKafkaInstalled, KafkaCluster, kafkaVersion } from './kafka/cluster.ts'
import { ensurePostgresInstalled, PostgresServer } from './postgres/postgres.ts'
import { ensureToxiproxyInstalled, startToxiproxy } from './toxiproxy/toxiproxy.ts'

const files = process.argv.slice(2).filter((a) => !a.startsWith('--'))
const extra = process.argv.slice(2).filter((a) => a.startsWith('--'))

ensureKafkaInstalled()
ensureToxiproxyInstalled()
ensurePostgresInstalled()
// the ClickHouse tests start servers of their own (scripts/clickhouse/clickhouse.ts); only the package here
ensureClickHouseInstalled()
execFileSync('bash', [fileURLToPath(new URL('./chromium/install', import.meta.url))], {
  stdio: ['ignore', 'inherit', 'inherit'],
})

const started = performance.now()
const toxiproxy = await startToxiproxy()
let cluster: KafkaCluster | undefined
const env: NodeJS.ProcessEnv = { ...process.env, SPILLWAY_TEST_TOXIPROXY_URL: toxiproxy.client.url }
if (process.env.SPILLWAY_TEST_BOOTSTRAP) {
  process.stderr.write(`spillway: using the broker at ${process.env.SPILLWAY_TEST_BOOTSTRAP}\n`)
} else {
  process.stderr.write(`spillway: starting Kafka ${kafkaVersion()} (KRaft, 1 node) and Toxiproxy…\n`)
  cluster = await KafkaCluster.start({ nodes: 1, secure: true })
  const node = cluster.nodes[0]
  if (!node) throw new Error('cluster has no node')
  await toxiproxy.client.createProxy('kafka-1', node.advertisedProxiedPort, node.proxiedPort)
  env.SPILLWAY_TEST_BOOTSTRAP = cluster.bootstrap.join(',')
  env.SPILLWAY_TEST_PROXIED_BOOTSTRAP = cluster.proxiedBootstrap.join(',')
  env.SPILLWAY_TEST_PROXY_NAME = 'kafka-1'
  env.SPILLWAY_TEST_KAFKA_LOG = node.logFile
  if (cluster.secure) {
    env.SPILLWAY_TEST_SECURE_BOOTSTRAP = cluster.secureBootstrap.join(',')
    env.SPILLWAY_TEST_SECURE_CA_FILE = cluster.secure.caFile
    env.SPILLWAY_TEST_SECURE_USERNAME = cluster.secure.username
    env.SPILLWAY_TEST_SECURE_PASSWORD = cluster.secure.password
  }
  process.stderr.write(
    `spillway: Kafka ready at ${env.SPILLWAY_TEST_BOOTSTRAP} (through the proxy: ${env.SPILLWAY_TEST_PROXIED_BOOTSTRAP}) ` +
      `in ${Math.round(performance.now() - started)} ms; broker log: ${node.logFile}\n`,
  )
}
let postgres: PostgresServer | undefined
if (process.env.SPILLWAY_TEST_PG_PORT) {
  process.stderr.write(`spillway: using the PostgreSQL at port ${process.env.SPILLWAY_TEST_PG_PORT}\n`)
} else {
  postgres = await PostgresServer.start()
  const s = postgres.settings
  Object.assign(env, {
    SPILLWAY_TEST_PG_HOST: s.host,
    SPILLWAY_TEST_PG_PORT: String(s.port),
    SPILLWAY_TEST_PG_USER: s.user,
    SPILLWAY_TEST_PG_PASSWORD: s.password,
    SPILLWAY_TEST_PG_DATABASE: s.database,
  })
  process.stderr.write(`spillway: PostgreSQL 15 ready at ${s.host}:${s.port}; log: ${postgres.logFile}\n`)
}
mkdirSync(join(process.cwd(), 'test-artifacts'), { recursive: true })

const args = [
  '--test',
  '--test-concurrency=1',
  '--test-timeout=900000',
  '--test-reporter=spec',
  ...extra,
  ...(files.length > 0 ? files : ['test/**/*.test.ts']),
]
const child = spawn(process.execPath, args, { stdio: 'inherit', env })
let stopping = false
const stopAll = async (): Promise<void> => {
  if (stopping) return
  stopping = true
  await toxiproxy.stop()
  await cluster?.stop()
  await postgres?.stop()
}
for (const signal of ['SIGINT', 'SIGTERM'] as const) {
  process.once(signal, () => {
    child.kill(signal)
  })
}
const code = await new Promise<number>((resolve) => child.once('close', (c) => resolve(c ?? 1)))
await stopAll()
process.exit(code)
