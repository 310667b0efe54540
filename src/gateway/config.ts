/**
 * Gateway configuration: a JSON file (`--config`), then environment overrides, then flags. With nothing
 * configured the gateway runs on its embedded default: no Kafka, events kept in the local log, no keys.
 */
import { type ResolvedLogOptions, resolveLogOptions } from '../log/options.ts'
import {
  applyServiceEnvironment,
  invalid,
  readEnum,
  readInteger,
  readNumber,
  readObject,
  readString,
  readStringArray,
  rejectUnknownKeys,
} from '../options.ts'
import { type AckMode, readDeadLetterTopics } from '../producer/options.ts'
import { isTopicName, TOPIC_NAME_RULE } from '../topic-name.ts'
import { CONNECTION_KEYS, type ConnectionOptions, readConnection } from '../transport/connection.ts'

export interface KeyConfig {
  /** The write key (Segment) or API key (REST Proxy). */
  readonly key: string
  /** REST Proxy Basic-auth password; when set it must match. */
  readonly secret: string | undefined
  /** A name for logs and metrics; the key itself is never logged. */
  readonly name: string
  /** Topics this key may write; ["*"] for any. */
  readonly topics: readonly string[]
  /** Events per second (token bucket); 0 = unlimited. */
  readonly ratePerSecond: number
  readonly burst: number
  /** Bytes per second written (token bucket, like Kafka's producer_byte_rate); 0 = unlimited. */
  readonly bytesPerSecond: number
  readonly burstBytes: number
  /** 'key': the key's name prefixes every event id, so one tenant's ids cannot collide with another's. */
  readonly dedupeScope: 'global' | 'key'
}

export interface GatewayConfig {
  readonly host: string
  readonly port: number
  readonly tls: { readonly key: string; readonly cert: string } | undefined
  readonly kafka:
    | (ConnectionOptions & {
        readonly deadLetterTopics: Readonly<Record<string, string>>
        /** How long events of a topic that does not exist wait before they are dead letters; undefined: forever. */
        readonly unknownTopicTimeoutMs: number | undefined
        /** How long topic metadata is trusted (a created topic is seen within this). */
        readonly metadataMaxAgeMs: number
      })
    | undefined
  readonly ack: AckMode
  readonly log: ResolvedLogOptions
  readonly deliveryTimeoutMs: number
  readonly limits: {
    readonly maxBodyBytes: number
    /** Bytes a request may write after batch-level context is merged into every message. */
    readonly maxRequestWriteBytes: number
    readonly maxEventBytes: number
    readonly maxEvents: number
    readonly maxDepth: number
    readonly headersTimeoutMs: number
    readonly requestTimeoutMs: number
  }
  readonly keys: readonly KeyConfig[]
  readonly segment: {
    readonly defaultTopic: string
    readonly byType: Readonly<Record<string, string>>
    readonly byKey: Readonly<Record<string, string>>
  }
  /** Topics the REST Proxy endpoint accepts: ["*"] for any valid name. */
  readonly restTopics: readonly string[]
  readonly clusterId: string
  readonly cors: { readonly origins: readonly string[] }
  readonly readiness: { readonly high: number; readonly low: number }
  /**
   * Where /metrics, /status.json and the status page are served: `port` puts them on a listener of their
   * own (the main port keeps /healthz and /readyz); `key` asks for it (Bearer, or ?key= for the page).
   * Absolute paths are shown only on the ops port or with the ops key.
   */
  readonly ops: { readonly port: number | undefined; readonly key: string | undefined }
  /** /healthz fails once the log has been unable to write for longer than this (a supervisor restarts). */
  readonly health: { readonly logFailureMs: number }
  readonly logLevel: 'fatal' | 'error' | 'warn' | 'info' | 'debug' | 'silent'
  readonly shutdownTimeoutMs: number
}

const KEYS = [
  'host',
  'port',
  'tls',
  'kafka',
  'ack',
  'log',
  'deliveryTimeoutMs',
  'limits',
  'keys',
  'segment',
  'restTopics',
  'clusterId',
  'cors',
  'readiness',
  'health',
  'ops',
  'logLevel',
  'shutdownTimeoutMs',
] as const

/** The documented options, for `spillway serve --help`. */
export const configHelp: readonly [string, string][] = [
  ['host', 'listen address (default 127.0.0.1; env SPILLWAY_HOST)'],
  ['port', 'listen port (default 8080; env SPILLWAY_PORT)'],
  ['tls.key, tls.cert', 'PEM file paths: serve HTTPS'],
  [
    'kafka.brokers',
    'bootstrap "host:port" list (env SPILLWAY_BROKERS, comma-separated); absent = keep events in the local log',
  ],
  ['kafka.clientId', 'client id (default spillway-gateway)'],
  [
    'kafka.tls',
    'true, or { ca|caFile, cert|certFile, key|keyFile, servername, rejectUnauthorized }: TLS to the brokers',
  ],
  [
    'kafka.sasl',
    '{ mechanism: PLAIN|SCRAM-SHA-256|SCRAM-SHA-512, username, password|passwordFile } (env SPILLWAY_SASL_PASSWORD)',
  ],
  [
    'kafka.deadLetterTopics',
    '{ topic|"*": dead-letter topic }: where events Kafka will never take go (default: the dead-letter log)',
  ],
  [
    'kafka.unknownTopicTimeoutMs',
    'events of a topic that does not exist wait for it (status page, /status.json); after this long they become dead letters (default: wait forever)',
  ],
  [
    'kafka.metadataMaxAgeMs',
    'how long topic metadata is trusted; a created topic is seen within this (default 30000)',
  ],
  ['ack', '"durable" (default): answer after fsync; "kafka": after Kafka acks; "memory" (env SPILLWAY_ACK)'],
  [
    'log.dir',
    'local log directory (default ./.spillway/log; env SPILLWAY_LOG_DIR); one gateway per directory',
  ],
  ['log.maxBytes', 'disk budget of the log (default 1 GiB); past it requests get 503 SPW_ERR_BACKPRESSURE'],
  ['log.fsync', '"always" (default), "never" or { "intervalMs": N }'],
  ['deliveryTimeoutMs', 'deadline of each call to Kafka (default 10000)'],
  ['limits.maxBodyBytes', 'request body limit (default 512000)'],
  [
    'limits.maxRequestWriteBytes',
    'bytes one request may write once batch context is merged into each message (default 4 × maxBodyBytes)',
  ],
  ['limits.maxEventBytes', 'one event as stored, headers and the gateway fields included (default 32768)'],
  ['limits.maxEvents', 'events per request (default 2500)'],
  ['limits.maxDepth', 'JSON nesting depth (default 32)'],
  ['limits.headersTimeoutMs, limits.requestTimeoutMs', 'slow-client cut-offs (default 5000, 15000)'],
  [
    'keys[]',
    '{ key, secret?, name?, topics: ["*"|topic…], ratePerSecond?, burst?, bytesPerSecond?, burstBytes?, dedupeScope? } (env SPILLWAY_KEYS as JSON); none = open. A key without a secret is a public write key: Segment routes only',
  ],
  ['segment.defaultTopic', 'topic for Segment events (default segment-events)'],
  ['segment.byType', '{ "track": "topic", … } per event type'],
  ['segment.byKey', '{ "<key name>": "topic" } per write key'],
  ['restTopics', 'topics the REST Proxy endpoint accepts (default ["*"])'],
  ['clusterId', 'cluster id reported by the REST Proxy endpoint (default "spillway")'],
  [
    'cors.origins',
    'browser origins allowed to send events, or ["*"] (default none: requests with an Origin are refused)',
  ],
  [
    'readiness.high, readiness.low',
    '/readyz turns unready above high and ready again below low (default 0.9, 0.8 of the budget)',
  ],
  [
    'ops.port, ops.key',
    '/metrics, /status.json and the status page on a port of their own, or behind a key (Bearer or ?key=)',
  ],
  [
    'health.logFailureMs',
    '/healthz fails once the log has been unable to write for this long, so a supervisor restarts it (default 30000)',
  ],
  ['logLevel', 'fatal|error|warn|info|debug|silent (default info)'],
  [
    'shutdownTimeoutMs',
    'how long SIGTERM waits for delivery before leaving the rest in the log (default 10000)',
  ],
]

/** Environment overrides, applied over the file. */
export function applyEnvironment(
  raw: Record<string, unknown>,
  env: NodeJS.ProcessEnv,
): Record<string, unknown> {
  const out = applyServiceEnvironment(raw, env)
  if (env.SPILLWAY_ACK) out.ack = env.SPILLWAY_ACK
  if (env.SPILLWAY_LOG_DIR) out.log = { ...readObject(out.log, 'log'), dir: env.SPILLWAY_LOG_DIR }
  if (env.SPILLWAY_KEYS) {
    try {
      out.keys = JSON.parse(env.SPILLWAY_KEYS)
    } catch {
      throw invalid('SPILLWAY_KEYS', '(not JSON)', 'a JSON array of key objects')
    }
  }
  return out
}

function readTopic(value: unknown, key: string, fallback?: string): string {
  const topic = readString(value, key, fallback)
  if (!isTopicName(topic)) throw invalid(key, topic, TOPIC_NAME_RULE)
  return topic
}

function readTopicMap(value: unknown, key: string): Record<string, string> {
  const o = readObject(value, key)
  const out: Record<string, string> = {}
  for (const [k, v] of Object.entries(o)) out[k] = readTopic(v, `${key}.${k}`)
  return out
}

export function resolveGatewayConfig(input: unknown): GatewayConfig {
  const o = readObject(input, 'config')
  rejectUnknownKeys(o, '', KEYS)
  const tls = o.tls === undefined ? undefined : readObject(o.tls, 'tls')
  if (tls) rejectUnknownKeys(tls, 'tls', ['key', 'cert'])
  const kafka = o.kafka === undefined ? undefined : readObject(o.kafka, 'kafka')
  if (kafka)
    rejectUnknownKeys(kafka, 'kafka', [
      ...CONNECTION_KEYS,
      'deadLetterTopics',
      'unknownTopicTimeoutMs',
      'metadataMaxAgeMs',
    ])
  const limits = readObject(o.limits, 'limits')
  rejectUnknownKeys(limits, 'limits', [
    'maxBodyBytes',
    'maxRequestWriteBytes',
    'maxEventBytes',
    'maxEvents',
    'maxDepth',
    'headersTimeoutMs',
    'requestTimeoutMs',
  ])
  const segment = readObject(o.segment, 'segment')
  rejectUnknownKeys(segment, 'segment', ['defaultTopic', 'byType', 'byKey'])
  const cors = readObject(o.cors, 'cors')
  rejectUnknownKeys(cors, 'cors', ['origins'])
  const readiness = readObject(o.readiness, 'readiness')
  rejectUnknownKeys(readiness, 'readiness', ['high', 'low'])
  const ops = readObject(o.ops, 'ops')
  rejectUnknownKeys(ops, 'ops', ['port', 'key'])
  const health = readObject(o.health, 'health')
  rejectUnknownKeys(health, 'health', ['logFailureMs'])
  const log = readObject(o.log, 'log')
  const keysInput = o.keys === undefined ? [] : o.keys
  if (!Array.isArray(keysInput)) throw invalid('keys', keysInput, 'an array of { key, topics, … }')
  const keys = keysInput.map((k, i) => readKey(k, `keys[${i}]`))
  const names = new Set<string>()
  for (const k of keys) {
    if (names.has(k.name)) throw invalid('keys', k.name, 'unique key names')
    names.add(k.name)
  }
  const connection = kafka ? readConnection(kafka, 'kafka', 'spillway-gateway') : undefined
  const brokers = connection?.brokers
  const ack = readEnum(o.ack, 'ack', ['durable', 'kafka', 'memory'] as const, 'durable')
  if (ack !== 'durable' && !brokers) throw invalid('ack', ack, '"durable" when kafka.brokers is not set')
  const high = readNumber(readiness.high, 'readiness.high', 0.9, { min: 0.01, max: 1 })
  const low = readNumber(readiness.low, 'readiness.low', 0.8, { min: 0, max: high })
  const maxBodyBytes = readInteger(limits.maxBodyBytes, 'limits.maxBodyBytes', 512_000, {
    min: 1024,
    max: 64 * 1024 * 1024,
  })
  return {
    host: readString(o.host, 'host', '127.0.0.1'),
    port: readInteger(o.port, 'port', 8080, { min: 0, max: 65535 }),
    tls: tls ? { key: readString(tls.key, 'tls.key'), cert: readString(tls.cert, 'tls.cert') } : undefined,
    kafka: connection
      ? {
          ...connection,
          deadLetterTopics: readDeadLetterTopics(kafka?.deadLetterTopics, true, 'kafka.deadLetterTopics'),
          unknownTopicTimeoutMs:
            kafka?.unknownTopicTimeoutMs === undefined
              ? undefined
              : readInteger(kafka.unknownTopicTimeoutMs, 'kafka.unknownTopicTimeoutMs', 0, { min: 0 }),
          metadataMaxAgeMs: readInteger(kafka?.metadataMaxAgeMs, 'kafka.metadataMaxAgeMs', 30_000, {
            min: 100,
            max: 3_600_000,
          }),
        }
      : undefined,
    ack,
    log: resolveLogOptions({ ...log, dir: readString(log.dir, 'log.dir', './.spillway/log') }, 'log'),
    deliveryTimeoutMs: readInteger(o.deliveryTimeoutMs, 'deliveryTimeoutMs', 10_000, { min: 10 }),
    limits: {
      maxBodyBytes,
      maxRequestWriteBytes: readInteger(
        limits.maxRequestWriteBytes,
        'limits.maxRequestWriteBytes',
        4 * maxBodyBytes,
        { min: 1024 },
      ),
      maxEventBytes: readInteger(limits.maxEventBytes, 'limits.maxEventBytes', 32_768, {
        min: 64,
        max: maxBodyBytes,
      }),
      maxEvents: readInteger(limits.maxEvents, 'limits.maxEvents', 2500, { min: 1, max: 100_000 }),
      maxDepth: readInteger(limits.maxDepth, 'limits.maxDepth', 32, { min: 2, max: 1000 }),
      headersTimeoutMs: readInteger(limits.headersTimeoutMs, 'limits.headersTimeoutMs', 5000, { min: 100 }),
      requestTimeoutMs: readInteger(limits.requestTimeoutMs, 'limits.requestTimeoutMs', 15_000, { min: 100 }),
    },
    keys,
    segment: {
      defaultTopic: readTopic(segment.defaultTopic, 'segment.defaultTopic', 'segment-events'),
      byType: readTopicMap(segment.byType, 'segment.byType'),
      byKey: readTopicMap(segment.byKey, 'segment.byKey'),
    },
    restTopics: o.restTopics === undefined ? ['*'] : readStringArray(o.restTopics, 'restTopics'),
    clusterId: readString(o.clusterId, 'clusterId', 'spillway'),
    cors: { origins: cors.origins === undefined ? [] : readStringArray(cors.origins, 'cors.origins') },
    readiness: { high, low },
    ops: {
      port: ops.port === undefined ? undefined : readInteger(ops.port, 'ops.port', 0, { min: 0, max: 65535 }),
      key: ops.key === undefined ? undefined : readString(ops.key, 'ops.key'),
    },
    health: {
      logFailureMs: readInteger(health.logFailureMs, 'health.logFailureMs', 30_000, { min: 0 }),
    },
    logLevel: readEnum(
      o.logLevel,
      'logLevel',
      ['fatal', 'error', 'warn', 'info', 'debug', 'silent'] as const,
      'info',
    ),
    shutdownTimeoutMs: readInteger(o.shutdownTimeoutMs, 'shutdownTimeoutMs', 10_000, { min: 0 }),
  }
}

function readKey(value: unknown, prefix: string): KeyConfig {
  const k = readObject(value, prefix)
  rejectUnknownKeys(k, prefix, [
    'key',
    'secret',
    'name',
    'topics',
    'ratePerSecond',
    'burst',
    'bytesPerSecond',
    'burstBytes',
    'dedupeScope',
  ])
  const key = readString(k.key, `${prefix}.key`)
  if (key.length < 8) throw invalid(`${prefix}.key`, '(hidden)', 'a key of at least 8 characters')
  const ratePerSecond = readNumber(k.ratePerSecond, `${prefix}.ratePerSecond`, 0, { min: 0 })
  const bytesPerSecond = readNumber(k.bytesPerSecond, `${prefix}.bytesPerSecond`, 0, { min: 0 })
  return {
    key,
    secret: k.secret === undefined ? undefined : readString(k.secret, `${prefix}.secret`),
    name: readString(k.name, `${prefix}.name`, `key-${key.slice(0, 4)}…`),
    topics: readStringArray(k.topics, `${prefix}.topics`, ['*']),
    ratePerSecond,
    burst: readNumber(k.burst, `${prefix}.burst`, Math.max(1, ratePerSecond), { min: 1 }),
    bytesPerSecond,
    burstBytes: readNumber(k.burstBytes, `${prefix}.burstBytes`, Math.max(1, bytesPerSecond), { min: 1 }),
    dedupeScope: readEnum(k.dedupeScope, `${prefix}.dedupeScope`, ['global', 'key'] as const, 'global'),
  }
}
