/**
 * The material of a test cluster's SASL_SSL listener: a CA made for this cluster alone, a broker
 * certificate it signs (for 127.0.0.1 and localhost), and a SCRAM user. openssl makes the files; the
 * broker reads its key and chain as a PEM keystore, so no Java keytool or keystore password is involved.
 */
import { execFileSync } from 'node:child_process'
import { randomBytes } from 'node:crypto'
import { mkdirSync, readFileSync, writeFileSync } from 'node:fs'
import { join } from 'node:path'

export interface SecureListener {
  /** PEM of the CA that signed the broker's certificate: what a client trusts. */
  readonly caFile: string
  /** The broker's private key (PKCS#8, unencrypted) followed by its certificate and the CA's. */
  readonly keystoreFile: string
  readonly mechanism: 'SCRAM-SHA-512'
  readonly username: string
  readonly password: string
}

function openssl(args: readonly string[]): void {
  try {
    execFileSync('openssl', args, { stdio: ['ignore', 'pipe', 'pipe'] })
  } catch (error) {
    const e = error as NodeJS.ErrnoException & { stderr?: Buffer }
    if (e.code === 'ENOENT')
      throw new Error('openssl is missing; it makes the test CA: apt-get install openssl')
    throw new Error(`openssl ${args[0]} failed: ${e.stderr?.toString().trim() ?? e.message}`)
  }
}

/** Writes a fresh CA, broker key and certificate into `dir`. */
export function makeCertificates(dir: string): SecureListener {
  mkdirSync(dir, { recursive: true })
  const file = (name: string) => join(dir, name)
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file('ca.key')])
  openssl([
    'req',
    '-x509',
    '-new',
    '-key',
    file('ca.key'),
    '-days',
    '2',
    '-subj',
    '/CN=spillway test CA',
    '-out',
    file('ca.pem'),
  ])
  openssl(['genpkey', '-algorithm', 'EC', '-pkeyopt', 'ec_paramgen_curve:P-256', '-out', file('broker.key')])
  openssl(['req', '-new', '-key', file('broker.key'), '-subj', '/CN=localhost', '-out', file('broker.csr')])
  writeFileSync(file('broker.ext'), 'subjectAltName=IP:127.0.0.1,DNS:localhost\n')
  openssl([
    'x509',
    '-req',
    '-in',
    file('broker.csr'),
    '-CA',
    file('ca.pem'),
    '-CAkey',
    file('ca.key'),
    '-CAcreateserial',
    '-days',
    '2',
    '-extfile',
    file('broker.ext'),
    '-out',
    file('broker.pem'),
  ])
  const keystore = ['broker.key', 'broker.pem', 'ca.pem'].map((f) => readFileSync(file(f), 'utf8')).join('')
  writeFileSync(file('keystore.pem'), keystore, { mode: 0o600 })
  return {
    caFile: file('ca.pem'),
    keystoreFile: file('keystore.pem'),
    mechanism: 'SCRAM-SHA-512',
    username: 'spillway-test',
    password: randomBytes(12).toString('hex'),
  }
}
