/**
 * Starts and stops real Apache Kafka brokers (KRaft, combined broker+controller) on 127.0.0.1 from the
 * jars that scripts/kafka/install caches. Used by the test runner, the benchmarks and `npm run kafka`.
 *
 * Every node has three listeners, and a fourth with `secure`:
 *   PLAINTEXT  direct, advertised as itself
 *   PROXIED    advertised as a Toxiproxy port, so a client that bootstraps there talks *only* through the proxy
 *   CONTROLLER KRaft quorum
 *   SECURE     SASL_SSL with SCRAM-SHA-512, its certificate signed by a CA made for this cluster (secure.ts)
 */
import { type ChildProcess, execFileSync, spawn } from 'node:child_process'
import {
  closeSync,
  existsSync,
  mkdirSync,
  mkdtempSync,
  openSync,
  readdirSync,
  readFileSync,
  rmSync,
  writeFileSync,
} from 'node:fs'
import { homedir, tmpdir } from 'node:os'
import { basename, dirname, join } from 'node:path'
import { fileURLToPath } from 'node:url'
import { freePort } from '../ports.ts'
import { makeCertificates, type SecureListener } from './secure.ts'

const here = dirname(fileURLToPath(import.meta.url))

export function kafkaVersion(): string {
  const pom = readFileSync(join(here, 'pom.xml'), 'utf8')
  const match = /<kafka\.version>([^<]+)<\/kafka\.version>/.exec(pom)
  if (!match?.[1]) throw new Error('scripts/kafka/pom.xml has no <kafka.version>')
  return match[1]
}

export function cacheRoot(): string {
  return process.env.SPILLWAY_CACHE ?? join(homedir(), '.cache', 'spillway')
}

export function kafkaHome(): string {
  return join(cacheRoot(), `kafka-${kafkaVersion()}`)
}

/** Runs scripts/kafka/install (a no-op when the cache is complete). Throws with its message on failure. */
export function ensureKafkaInstalled(): void {
  execFileSync('bash', [join(here, 'install')], { stdio: ['ignore', 'inherit', 'inherit'] })
}

export function kafkaClasspath(): string {
  const libs = join(kafkaHome(), 'libs')
  if (!existsSync(join(kafkaHome(), '.complete'))) {
    throw new Error(`Kafka jars are not installed in ${libs}; run: bash scripts/kafka/install`)
  }
  return `${libs}/*`
}

const log4jConfig = [
  'rootLogger.level=INFO',
  'rootLogger.appenderRef.out.ref=OUT',
  'appender.out.type=Console',
  'appender.out.name=OUT',
  'appender.out.layout.type=PatternLayout',
  'appender.out.layout.pattern=[%d] %p %m (%c)%n',
  'logger.kafka.name=kafka',
  'logger.kafka.level=INFO',
  'logger.state.name=state.change.logger',
  'logger.state.level=WARN',
].join('\n')

export interface KafkaNode {
  readonly id: number
  readonly port: number
  /** Where the PROXIED listener binds; Toxiproxy forwards to it. */
  readonly proxiedPort: number
  /** What the PROXIED listener advertises: the Toxiproxy listen port for this node. */
  readonly advertisedProxiedPort: number
  readonly controllerPort: number
  /** The SASL_SSL listener's port (0 when the cluster has none). */
  readonly securePort: number
  readonly dir: string
  readonly logFile: string
  process: ChildProcess | undefined
}

export interface KafkaClusterOptions {
  /** 1 (default) or 3 for replication tests. */
  readonly nodes?: number
  /** Broker heap in MiB. Kept small so tests fit on two cores. */
  readonly heapMb?: number
  readonly startTimeoutMs?: number
  /** Extra server.properties entries applied to every node. */
  readonly config?: Readonly<Record<string, string>>
  /** Parent of the data directory; a fresh temp dir by default. */
  readonly baseDir?: string
  /** The direct listener port of node 1 (default: a free port). */
  readonly port?: number
  /** The brokers' scheduling niceness, 0 to 19 (default 10): how far behind client processes they run. */
  readonly nice?: number
  /** Adds a SASL_SSL listener (SCRAM-SHA-512) with a CA and a user made for this cluster. */
  readonly secure?: boolean
}

const running = new Set<ChildProcess>()

/**
 * Each running broker leaves a note under the cache (its pid, the pid of the process that started it and
 * its data directory), removed when it exits. A runner killed with SIGKILL cannot stop its brokers, so the
 * next start reaps the brokers whose starter is gone.
 */
function brokerNotes(): string {
  return join(cacheRoot(), 'brokers')
}

function alive(pid: number): boolean {
  try {
    process.kill(pid, 0)
    return true
  } catch (error) {
    return (error as NodeJS.ErrnoException).code === 'EPERM'
  }
}

/** Stops brokers left behind by a runner that died without stopping them; returns how many. */
export function reapOrphanBrokers(): number {
  const dir = brokerNotes()
  if (!existsSync(dir)) return 0
  let reaped = 0
  for (const file of readdirSync(dir)) {
    const path = join(dir, file)
    let note: { pid: number; owner: number; baseDir: string }
    try {
      note = JSON.parse(readFileSync(path, 'utf8'))
    } catch {
      rmSync(path, { force: true })
      continue
    }
    if (alive(note.owner)) continue
    const cmdline = `/proc/${note.pid}/cmdline`
    // the pid may have been reused: only a Kafka broker is killed
    if (alive(note.pid) && existsSync(cmdline) && readFileSync(cmdline, 'utf8').includes('kafka.Kafka')) {
      try {
        process.kill(-note.pid, 'SIGKILL')
        reaped++
      } catch {
        // gone meanwhile
      }
    }
    if (basename(note.baseDir).startsWith('spillway-kafka-'))
      rmSync(note.baseDir, { recursive: true, force: true })
    rmSync(path, { force: true })
  }
  return reaped
}
process.once('exit', () => {
  for (const child of running) {
    try {
      if (child.pid !== undefined) process.kill(-child.pid, 'SIGKILL')
    } catch {
      // already gone
    }
  }
})

function tail(file: string, lines = 30): string {
  if (!existsSync(file)) return '(no log written)'
  return readFileSync(file, 'utf8').split('\n').slice(-lines).join('\n')
}

export class KafkaCluster {
  readonly nodes: KafkaNode[]
  readonly baseDir: string
  readonly #options: Required<Omit<KafkaClusterOptions, 'baseDir' | 'port'>>
  readonly #clusterId: string
  /** The SASL_SSL listener's CA and user, when the cluster was started with `secure`. */
  readonly secure: SecureListener | undefined

  private constructor(
    nodes: KafkaNode[],
    baseDir: string,
    options: Required<Omit<KafkaClusterOptions, 'baseDir' | 'port'>>,
  ) {
    this.nodes = nodes
    this.baseDir = baseDir
    this.#options = options
    this.secure = options.secure ? makeCertificates(join(baseDir, 'secure')) : undefined
    this.#clusterId = execFileSync(
      'java',
      ['-cp', kafkaClasspath(), 'kafka.tools.StorageTool', 'random-uuid'],
      {
        encoding: 'utf8',
        stdio: ['ignore', 'pipe', 'ignore'],
      },
    )
      .trim()
      .split('\n')
      .pop() as string
  }

  /** Direct bootstrap addresses. */
  get bootstrap(): string[] {
    return this.nodes.map((n) => `127.0.0.1:${n.port}`)
  }

  /** Bootstrap addresses of the SASL_SSL listener (empty without `secure`). */
  get secureBootstrap(): string[] {
    return this.secure ? this.nodes.map((n) => `127.0.0.1:${n.securePort}`) : []
  }

  /** Bootstrap addresses through the proxy (only valid once a proxy forwards advertisedProxiedPort → proxiedPort). */
  get proxiedBootstrap(): string[] {
    return this.nodes.map((n) => `127.0.0.1:${n.advertisedProxiedPort}`)
  }

  static async start(options: KafkaClusterOptions = {}): Promise<KafkaCluster> {
    const resolved = {
      nodes: options.nodes ?? 1,
      heapMb: options.heapMb ?? 640,
      startTimeoutMs: options.startTimeoutMs ?? 90_000,
      config: options.config ?? {},
      nice: options.nice ?? 10,
      secure: options.secure ?? false,
    }
    if (!Number.isInteger(resolved.nice) || resolved.nice < 0 || resolved.nice > 19)
      throw new Error(`nice must be an integer from 0 to 19, got ${resolved.nice}`)
    if (![1, 3].includes(resolved.nodes)) throw new Error(`nodes must be 1 or 3, got ${resolved.nodes}`)
    const reaped = reapOrphanBrokers()
    if (reaped > 0) console.error(`stopped ${reaped} Kafka broker(s) left behind by an earlier run`)
    const baseDir = options.baseDir ?? mkdtempSync(join(tmpdir(), 'spillway-kafka-'))
    const nodes: KafkaNode[] = []
    for (let i = 1; i <= resolved.nodes; i++) {
      const dir = join(baseDir, `node-${i}`)
      mkdirSync(dir, { recursive: true })
      nodes.push({
        id: i,
        port: i === 1 && options.port !== undefined ? options.port : await freePort(),
        proxiedPort: await freePort(),
        advertisedProxiedPort: await freePort(),
        controllerPort: await freePort(),
        securePort: resolved.secure ? await freePort() : 0,
        dir,
        logFile: join(dir, 'broker.log'),
        process: undefined,
      })
    }
    const cluster = new KafkaCluster(nodes, baseDir, resolved)
    cluster.#writeConfigs()
    for (const node of nodes) cluster.#format(node)
    try {
      await Promise.all(nodes.map((n) => cluster.startNode(n.id)))
    } catch (error) {
      await cluster.stop()
      throw error
    }
    return cluster
  }

  #writeConfigs(): void {
    const voters = this.nodes.map((n) => `${n.id}@127.0.0.1:${n.controllerPort}`).join(',')
    const replication = String(Math.min(3, this.nodes.length))
    for (const node of this.nodes) {
      const secure = this.secure
      const secureListener = secure ? `,SECURE://127.0.0.1:${node.securePort}` : ''
      const props: Record<string, string> = {
        'process.roles': 'broker,controller',
        'node.id': String(node.id),
        'controller.quorum.voters': voters,
        listeners: `PLAINTEXT://127.0.0.1:${node.port},PROXIED://127.0.0.1:${node.proxiedPort},CONTROLLER://127.0.0.1:${node.controllerPort}${secureListener}`,
        'advertised.listeners': `PLAINTEXT://127.0.0.1:${node.port},PROXIED://127.0.0.1:${node.advertisedProxiedPort}${secureListener}`,
        'listener.security.protocol.map': `PLAINTEXT:PLAINTEXT,PROXIED:PLAINTEXT,CONTROLLER:PLAINTEXT${secure ? ',SECURE:SASL_SSL' : ''}`,
        ...(secure
          ? {
              'listener.name.secure.sasl.enabled.mechanisms': 'SCRAM-SHA-512',
              'listener.name.secure.scram-sha-512.sasl.jaas.config':
                'org.apache.kafka.common.security.scram.ScramLoginModule required;',
              'listener.name.secure.ssl.keystore.type': 'PEM',
              'listener.name.secure.ssl.keystore.location': secure.keystoreFile,
            }
          : {}),
        'controller.listener.names': 'CONTROLLER',
        'inter.broker.listener.name': 'PLAINTEXT',
        'log.dirs': join(node.dir, 'data'),
        'num.partitions': '1',
        'auto.create.topics.enable': 'false',
        'offsets.topic.num.partitions': '5',
        'offsets.topic.replication.factor': replication,
        'transaction.state.log.num.partitions': '5',
        'transaction.state.log.replication.factor': replication,
        'transaction.state.log.min.isr': '1',
        'share.coordinator.state.topic.replication.factor': replication,
        'share.coordinator.state.topic.min.isr': '1',
        'group.initial.rebalance.delay.ms': '0',
        // KIP-848 groups: short sessions and heartbeats, so membership tests take seconds, not minutes
        'group.consumer.min.session.timeout.ms': '3000',
        'group.consumer.session.timeout.ms': '6000',
        'group.consumer.min.heartbeat.interval.ms': '500',
        'group.consumer.heartbeat.interval.ms': '1000',
        'num.network.threads': '2',
        'num.io.threads': '4',
        'log.retention.check.interval.ms': '60000',
        ...this.#options.config,
      }
      const text = Object.entries(props)
        .map(([k, v]) => `${k}=${v}`)
        .join('\n')
      writeFileSync(join(node.dir, 'server.properties'), `${text}\n`)
      writeFileSync(join(node.dir, 'log4j2.properties'), `${log4jConfig}\n`)
    }
  }

  #format(node: KafkaNode): void {
    try {
      execFileSync(
        'java',
        [
          '-cp',
          kafkaClasspath(),
          `-Dlog4j2.configurationFile=${join(node.dir, 'log4j2.properties')}`,
          'kafka.tools.StorageTool',
          'format',
          '-t',
          this.#clusterId,
          '-c',
          join(node.dir, 'server.properties'),
          ...(this.secure
            ? ['--add-scram', `SCRAM-SHA-512=[name=${this.secure.username},password=${this.secure.password}]`]
            : []),
        ],
        { stdio: ['ignore', 'pipe', 'pipe'], encoding: 'utf8' },
      )
    } catch (error) {
      const e = error as { stderr?: string; stdout?: string }
      const output = `${e.stdout ?? ''}${e.stderr ?? ''}`.trim().split('\n')
      const errors = output.filter((l) => /error|exception|invalid/i.test(l)).slice(-5)
      throw new Error(
        `Kafka node ${node.id} could not be formatted: the storage tool refused its configuration ` +
          `(${join(node.dir, 'server.properties')}).\n--- last lines ---\n${[...errors, ...output.slice(-5)].join('\n')}`,
      )
    }
  }

  #node(id: number): KafkaNode {
    const node = this.nodes.find((n) => n.id === id)
    if (!node) throw new Error(`no Kafka node ${id}`)
    return node
  }

  /** Starts (or restarts) one node and waits until it reports itself started. */
  async startNode(id: number): Promise<void> {
    const node = this.#node(id)
    if (node.process && node.process.exitCode === null) return
    const logOffset = existsSync(node.logFile) ? readFileSync(node.logFile).length : 0
    const fd = openSync(node.logFile, 'a')
    // Brokers run under `nice`: on a 2-core machine they are background load, and every JVM thread
    // inherits the lower priority, so latency-sensitive client processes are scheduled first.
    const child = spawn(
      'nice',
      [
        '-n',
        String(this.#options.nice),
        'java',
        `-Xmx${this.#options.heapMb}m`,
        '-Xms128m',
        '-XX:+UseSerialGC',
        '-XX:CICompilerCount=2',
        '-Djava.awt.headless=true',
        `-Dlog4j2.configurationFile=${join(node.dir, 'log4j2.properties')}`,
        '-cp',
        kafkaClasspath(),
        'kafka.Kafka',
        join(node.dir, 'server.properties'),
      ],
      { stdio: ['ignore', fd, fd], detached: true },
    )
    closeSync(fd)
    node.process = child
    running.add(child)
    const note = join(brokerNotes(), `${child.pid}.json`)
    mkdirSync(brokerNotes(), { recursive: true })
    writeFileSync(note, JSON.stringify({ pid: child.pid, owner: process.pid, baseDir: this.baseDir }))
    child.once('exit', () => {
      running.delete(child)
      rmSync(note, { force: true })
    })

    const deadline = performance.now() + this.#options.startTimeoutMs
    for (;;) {
      const log = existsSync(node.logFile)
        ? readFileSync(node.logFile).subarray(logOffset).toString('utf8')
        : ''
      if (log.includes('Kafka Server started')) return
      const reason = /Address already in use|BindException/.test(log)
        ? 'a port it needs is busy (another broker running? stop it, or retry to get fresh ports)'
        : child.exitCode !== null
          ? `the JVM exited with code ${child.exitCode}`
          : performance.now() > deadline
            ? `it did not report "Kafka Server started" within ${this.#options.startTimeoutMs} ms`
            : undefined
      if (reason) {
        throw new Error(
          `Kafka node ${id} did not start: ${reason}.\nLog: ${node.logFile}\n--- last lines ---\n${tail(node.logFile)}`,
        )
      }
      await new Promise((r) => setTimeout(r, 200))
    }
  }

  /** Stops one node: SIGTERM for a clean shutdown, or SIGKILL for a crash. Resolves when it has exited. */
  async stopNode(id: number, signal: 'SIGTERM' | 'SIGKILL' = 'SIGTERM', timeoutMs = 30_000): Promise<void> {
    const node = this.#node(id)
    const child = node.process
    if (!child || child.exitCode !== null || child.signalCode !== null) return
    const exited = new Promise<void>((resolve) => child.once('exit', () => resolve()))
    const pid = child.pid as number
    try {
      process.kill(-pid, signal)
    } catch {
      return
    }
    const timer = setTimeout(() => {
      try {
        process.kill(-pid, 'SIGKILL')
      } catch {
        // gone
      }
    }, timeoutMs)
    await exited
    clearTimeout(timer)
  }

  /** SIGSTOP / SIGCONT one node: the process stays alive but stops answering. */
  pauseNode(id: number): void {
    this.#signal(id, 'SIGSTOP')
  }

  resumeNode(id: number): void {
    this.#signal(id, 'SIGCONT')
  }

  #signal(id: number, signal: NodeJS.Signals): void {
    const child = this.#node(id).process
    if (!child || child.pid === undefined || child.exitCode !== null || child.signalCode !== null) return
    try {
      process.kill(-child.pid, signal)
    } catch {
      // exited between the check and the signal
    }
  }

  /** Stops every node and removes the data directory. Leaves no process behind. */
  async stop(options: { keepData?: boolean } = {}): Promise<void> {
    for (const node of this.nodes) this.resumeNode(node.id)
    await Promise.all(this.nodes.map((n) => this.stopNode(n.id, 'SIGTERM', 20_000)))
    if (!options.keepData) rmSync(this.baseDir, { recursive: true, force: true })
  }
}

/** Runs a Kafka CLI class (console consumer, perf tests, topic tool) with the cached jars. */
export async function runKafkaTool(
  mainClass: string,
  args: readonly string[],
  options: { timeoutMs?: number } = {},
): Promise<{ stdout: string; stderr: string; code: number | null }> {
  const child = spawn('java', ['-Xmx256m', '-XX:+UseSerialGC', '-cp', kafkaClasspath(), mainClass, ...args], {
    stdio: ['ignore', 'pipe', 'pipe'],
  })
  let stdout = ''
  let stderr = ''
  child.stdout.setEncoding('utf8').on('data', (d: string) => {
    stdout += d
  })
  child.stderr.setEncoding('utf8').on('data', (d: string) => {
    stderr += d
  })
  const timer = setTimeout(() => child.kill('SIGKILL'), options.timeoutMs ?? 120_000)
  const code = await new Promise<number | null>((resolve) => child.once('close', (c) => resolve(c)))
  clearTimeout(timer)
  return { stdout, stderr, code }
}

async function main(): Promise<void> {
  const args = process.argv.slice(2)
  if (args.includes('--help') || args.includes('-h')) {
    process.stdout.write(
      [
        'Usage: npm run kafka -- [--nodes 1|3] [--port N] [--secure]',
        '',
        'Starts a real Apache Kafka broker (KRaft) on 127.0.0.1 from the cached jars, prints its',
        'bootstrap address and keeps running until Ctrl-C, then stops it and removes its data.',
        '--secure adds a SASL_SSL listener (SCRAM-SHA-512) and prints its CA file and credentials.',
        '',
      ].join('\n'),
    )
    return
  }
  const nodesArg = args.indexOf('--nodes')
  const nodes = nodesArg >= 0 ? Number(args[nodesArg + 1]) : 1
  const portArg = args.indexOf('--port')
  const port = portArg >= 0 ? Number(args[portArg + 1]) : undefined
  ensureKafkaInstalled()
  process.stderr.write(`spillway: starting Kafka ${kafkaVersion()} with ${nodes} node(s)…\n`)
  const secure = args.includes('--secure')
  const cluster = await KafkaCluster.start({ nodes, secure, ...(port !== undefined ? { port } : {}) })
  process.stdout.write(`bootstrap: ${cluster.bootstrap.join(',')}\n`)
  if (cluster.secure) {
    process.stdout.write(
      `SASL_SSL bootstrap: ${cluster.secureBootstrap.join(',')} (SCRAM-SHA-512 ${cluster.secure.username} / ` +
        `${cluster.secure.password}, CA ${cluster.secure.caFile})\n`,
    )
  }
  for (const node of cluster.nodes) process.stdout.write(`node ${node.id} log: ${node.logFile}\n`)
  const shutdown = async (): Promise<void> => {
    process.stderr.write('spillway: stopping Kafka…\n')
    await cluster.stop()
    process.exit(0)
  }
  process.once('SIGINT', shutdown)
  process.once('SIGTERM', shutdown)
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  main().catch((error: unknown) => {
    process.stderr.write(`spillway: ${error instanceof Error ? error.message : String(error)}\n`)
    process.exit(1)
  })
}
