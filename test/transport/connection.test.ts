import assert from 'node:assert/strict'
import { writeFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { isSpillwayError } from '../../src/errors.ts'
import { readConnection } from '../../src/transport/connection.ts'
import { tempDir } from '../helpers/fs.ts'

const PEM = '-----BEGIN CERTIFICATE-----\nMIIB\n-----END CERTIFICATE-----\n'

function refusal(fn: () => unknown, key: RegExp): void {
  assert.throws(fn, (error: unknown) => {
    assert.ok(isSpillwayError(error, 'SPW_ERR_INVALID_OPTION'), String(error))
    assert.match(error.message, key)
    return true
  })
}

test('no brokers means no Kafka; brokers come back with the default client id', () => {
  assert.equal(readConnection({}, 'kafka', 'spillway'), undefined)
  assert.deepEqual(readConnection({ brokers: 'a:9092, b:9093' }, 'kafka', 'gw'), {
    brokers: ['a:9092', 'b:9093'],
    clientId: 'gw',
    tls: undefined,
    sasl: undefined,
  })
})

test('TLS and SASL are read inline or from files; passwords from a file lose their trailing newline', async (t) => {
  const dir = await tempDir(t)
  writeFileSync(join(dir, 'ca.pem'), PEM)
  writeFileSync(join(dir, 'password'), 's3cret\n')
  const c = readConnection(
    {
      brokers: ['127.0.0.1:9093'],
      tls: { caFile: join(dir, 'ca.pem'), servername: 'kafka.local' },
      sasl: { mechanism: 'SCRAM-SHA-512', username: 'alice', passwordFile: join(dir, 'password') },
    },
    'kafka',
    'gw',
  )
  assert.deepEqual(c?.tls, { ca: PEM, servername: 'kafka.local', rejectUnauthorized: true })
  assert.deepEqual(c?.sasl, { mechanism: 'SCRAM-SHA-512', username: 'alice', password: 's3cret' })
  assert.deepEqual(readConnection({ brokers: ['h:1'], tls: true }, '', 'x')?.tls, {})
})

test('a wrong connection setting names its key, and never prints a password', () => {
  refusal(() => readConnection({ brokers: ['nohost'] }, 'kafka', 'x'), /kafka\.brokers/)
  refusal(() => readConnection({ brokers: ['h:70000'] }, 'kafka', 'x'), /kafka\.brokers.*port/)
  refusal(() => readConnection({ tls: {} }, 'kafka', 'x'), /kafka\.brokers.*tls or sasl/)
  refusal(() => readConnection({ brokers: ['h:1'], tls: { ca: 'not pem' } }, 'kafka', 'x'), /kafka\.tls\.ca/)
  refusal(() => readConnection({ brokers: ['h:1'], tls: { cert: PEM } }, 'kafka', 'x'), /kafka\.tls\.key/)
  refusal(
    () => readConnection({ brokers: ['h:1'], tls: { cafile: 'x' } }, 'kafka', 'x'),
    /unknown option kafka\.tls\.cafile/,
  )
  refusal(
    () => readConnection({ brokers: ['h:1'], tls: { caFile: '/nonexistent/ca.pem' } }, 'kafka', 'x'),
    /kafka\.tls\.caFile.*ENOENT/,
  )
  refusal(
    () =>
      readConnection(
        { brokers: ['h:1'], sasl: { mechanism: 'GSSAPI', username: 'u', password: 'p' } },
        'k',
        'x',
      ),
    /k\.sasl\.mechanism/,
  )
  assert.throws(
    () => readConnection({ brokers: ['h:1'], sasl: { username: 'u', password: 12345678 } }, 'k', 'x'),
    (error: Error) => /k\.sasl\.password/.test(error.message) && !error.message.includes('12345678'),
  )
})
