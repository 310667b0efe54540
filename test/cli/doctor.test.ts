/**
 * `spillway doctor` as an operator runs it: help, bad flags and an unreachable cluster are one line and
 * exit 3; a real run prints the verdict first, --json follows the schema, --fail-on crit lets warnings pass.
 */
import assert from 'node:assert/strict'
import { spawn } from 'node:child_process'
import { mkdtemp, rm, writeFile } from 'node:fs/promises'
import { tmpdir } from 'node:os'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { Admin } from '@platformatic/kafka'
import { CHECK_IDS, REPORT_SCHEMA } from '../../src/doctor/types.ts'
import { createProducer } from '../../src/index.ts'
import { createTopic, secureKafka, testKafka } from '../helpers/kafka.ts'

const bin = fileURLToPath(new URL('../../bin/spillway.js', import.meta.url))

function doctor(
  args: string[],
): Promise<{ status: number | null; stdout: string; stderr: string; ms: number }> {
  return new Promise((resolve) => {
    const started = performance.now()
    const child = spawn(process.execPath, [bin, 'doctor', ...args], { stdio: ['ignore', 'pipe', 'pipe'] })
    let stdout = ''
    let stderr = ''
    child.stdout.setEncoding('utf8').on('data', (d: string) => {
      stdout += d
    })
    child.stderr.setEncoding('utf8').on('data', (d: string) => {
      stderr += d
    })
    const timer = setTimeout(() => child.kill('SIGKILL'), 60_000)
    child.once('exit', (status) => {
      clearTimeout(timer)
      resolve({ status, stdout, stderr, ms: performance.now() - started })
    })
  })
}

/** stderr without the progress lines: what is left must be the one-line error. */
const errorLines = (stderr: string): string[] =>
  stderr.split('\n').filter((l) => l.trim() !== '' && !l.startsWith('doctor: '))

test('doctor --help lists every check and the exit statuses', async () => {
  const help = await doctor(['--help'])
  assert.equal(help.status, 0)
  for (const id of CHECK_IDS) assert.ok(help.stdout.includes(id), `--help names the ${id} check`)
  assert.match(help.stdout, /0 healthy, 1 warnings, 2 critical, 3 could not judge/)
})

test('bad flags are one line naming the flag, exit 3, and no stack trace', async () => {
  const cases: [string[], RegExp][] = [
    [[], /--brokers is required/],
    [['--brokers', '127.0.0.1:1', '--budget', 'soon'], /--budget must be a positive number.*not soon/],
    [['--brokers', '127.0.0.1:1', '--max-bytes', '12parsecs'], /--max-bytes must be a positive number/],
    [['--brokers', '127.0.0.1:1', '--check', 'astrology'], /astrology/],
    [['--brokers', '127.0.0.1:1', '--fail-on', 'info'], /--fail-on must be warn or crit, not info/],
    [['--brokers', '127.0.0.1:1', 'extra'], /unexpected argument extra/],
  ]
  for (const [args, message] of cases) {
    const run = await doctor(args)
    assert.equal(run.status, 3, `${args.join(' ')}: ${run.stderr}`)
    const lines = errorLines(run.stderr)
    assert.equal(lines.length, 1, `one line for ${args.join(' ')}: ${run.stderr}`)
    assert.match(lines[0] ?? '', /SPW_ERR_INVALID_OPTION/)
    assert.match(lines[0] ?? '', message)
    assert.equal(run.stdout, '')
  }
})

test('an unreachable cluster is exit 3 with one line, within the budget', async () => {
  // a closed port refuses at once; an unroutable address never answers, so only the budget ends the run
  for (const brokers of ['127.0.0.1:1', '10.255.255.1:9092']) {
    const run = await doctor(['--brokers', brokers, '--budget', '3s'])
    assert.equal(run.status, 3, run.stderr)
    const lines = errorLines(run.stderr)
    assert.equal(lines.length, 1, run.stderr)
    assert.match(lines[0] ?? '', new RegExp(`SPW_ERR_UNAVAILABLE: cannot read the cluster at ${brokers}`))
    assert.ok(run.ms < 20_000, `ended by the budget, not hung (${Math.round(run.ms)} ms)`)
  }
})

test('a real run: verdict first, --json in the schema with the same exit status, --fail-on crit', async (t) => {
  const { bootstrap } = testKafka()
  const topic = await createTopic(t, 'cli-doctor', { partitions: 2 })
  const producer = await createProducer({ brokers: bootstrap, ack: 'kafka', transportLingerMs: 0 })
  t.after(() => producer.close())
  const sent = await producer.send(
    topic,
    Array.from({ length: 40 }, (_, i) => ({ key: `k${i % 8}`, value: { n: i } })),
  )
  assert.ok(sent.every((r) => r.status === 'accepted'))
  const scope = ['--brokers', bootstrap.join(','), '--topic', topic, '--budget', '4s']
  const admin = new Admin({ clientId: 'spillway-test-admin', bootstrapBrokers: bootstrap })
  t.after(() => admin.close())
  const ends = async (): Promise<string> =>
    JSON.stringify(
      (
        await admin.listOffsets({
          topics: [
            {
              name: topic,
              partitions: [
                { partitionIndex: 0, timestamp: -1n },
                { partitionIndex: 1, timestamp: -1n },
              ],
            },
          ],
        })
      ).flatMap((x) => x.partitions.map((p) => `${p.partitionIndex}:${p.offset}`)),
    )
  const groups = async (): Promise<string[]> => [...(await admin.listGroups()).keys()].sort()
  const [endsBefore, groupsBefore] = [await ends(), await groups()]

  const human = await doctor(scope)
  // the test cluster has one broker: a warning, and nothing critical on a fresh topic of 40 records
  assert.equal(human.status, 1, human.stdout + human.stderr)
  assert.match(human.stdout.split('\n')[0] ?? '', /^WARNING: 1 warning\(s\) in \d+ check\(s\)/)
  assert.match(human.stdout, /replication\.single-broker/)
  assert.match(human.stdout, /\[OK\] Duplicate event ids/)

  const json = await doctor([...scope, '--json'])
  assert.equal(json.status, 1)
  const report = JSON.parse(json.stdout) as {
    schema: string
    exitCode: number
    severity: string
    counts: { topics: number; partitions: number }
    checks: { id: string; severity: string; findings: { id: string }[] }[]
  }
  assert.equal(report.schema, REPORT_SCHEMA)
  assert.equal(report.exitCode, 1)
  assert.equal(report.severity, 'warn')
  assert.deepEqual(report.counts.partitions, 2)
  const checks = new Map(report.checks.map((c) => [c.id, c]))
  assert.equal(checks.get('replication')?.severity, 'warn')
  assert.equal(checks.get('duplicates')?.severity, 'ok')
  assert.equal(checks.get('producer-ids')?.severity, 'ok')

  // it only reads: no record written, no group joined
  assert.equal(await ends(), endsBefore)
  assert.deepEqual(await groups(), groupsBefore)

  const lenient = await doctor([...scope, '--check', 'replication', '--fail-on', 'crit'])
  assert.equal(lenient.status, 0, lenient.stdout)

  const missing = await doctor([
    '--brokers',
    bootstrap.join(','),
    '--topic',
    `${topic}-absent`,
    '--budget',
    '3s',
  ])
  assert.equal(missing.status, 3)
  assert.match(missing.stdout, /absent/)
})

test('over SASL_SSL: the right credentials read the cluster; a wrong password is exit 3 and SPW_ERR_KAFKA_AUTH', async (t) => {
  const secure = secureKafka()
  await createTopic(t, 'cli-doctor-secure', { partitions: 1 })
  const dir = await mkdtemp(join(tmpdir(), 'spillway-doctor-'))
  t.after(() => rm(dir, { recursive: true, force: true }))
  const good = join(dir, 'good')
  const bad = join(dir, 'bad')
  await writeFile(good, secure.password)
  await writeFile(bad, `${secure.password}-wrong`)
  const args = (passwordFile: string): string[] => [
    '--brokers',
    secure.bootstrap.join(','),
    '--ca',
    secure.caFile,
    '--sasl-mechanism',
    'SCRAM-SHA-512',
    '--sasl-username',
    secure.username,
    '--sasl-password-file',
    passwordFile,
    '--check',
    'replication',
    '--budget',
    '5s',
  ]
  const ok = await doctor(args(good))
  // the one-broker warning proves the cluster was read: it needs the brokers and a topic
  assert.equal(ok.status, 1, ok.stdout + ok.stderr)
  assert.match(ok.stdout, /replication\.single-broker/)
  const refused = await doctor(args(bad))
  assert.equal(refused.status, 3, refused.stdout + refused.stderr)
  const lines = errorLines(refused.stderr)
  assert.equal(lines.length, 1, refused.stderr)
  assert.match(lines[0] ?? '', /SPW_ERR_KAFKA_AUTH/)
  assert.ok(!refused.stderr.includes(secure.password), 'the password is never printed')
})
