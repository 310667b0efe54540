/**
 * Test access to the PostgreSQL server scripts/test.ts started: its settings, a fresh database per test
 * (dropped afterwards), and a client for checking what a sink wrote.
 */
import { randomUUID } from 'node:crypto'
import type { TestContext } from 'node:test'
import pg from 'pg'

export interface TestPostgres {
  readonly host: string
  readonly port: number
  readonly user: string
  readonly password: string
  readonly database: string
}

function required(name: string): string {
  const value = process.env[name]
  if (!value)
    throw new Error(
      `${name} is not set: run tests through \`npm test\` (scripts/test.ts), which starts PostgreSQL`,
    )
  return value
}

export function testPostgres(): TestPostgres {
  return {
    host: required('SPILLWAY_TEST_PG_HOST'),
    port: Number(required('SPILLWAY_TEST_PG_PORT')),
    user: required('SPILLWAY_TEST_PG_USER'),
    password: required('SPILLWAY_TEST_PG_PASSWORD'),
    database: required('SPILLWAY_TEST_PG_DATABASE'),
  }
}

/** A client on `settings`' database, closed when the test ends. */
export async function pgClient(t: TestContext, settings: TestPostgres): Promise<pg.Client> {
  const client = new pg.Client(settings)
  client.on('error', () => undefined)
  await client.connect()
  t.after(() => client.end().catch(() => undefined))
  return client
}

/** A new, empty database on the server, dropped (with its connections) when the test ends. */
export async function freshDatabase(
  t: TestContext,
  server: TestPostgres = testPostgres(),
): Promise<TestPostgres> {
  const name = `spw_${randomUUID().replace(/-/g, '').slice(0, 12)}`
  const admin = new pg.Client(server)
  await admin.connect()
  await admin.query(`CREATE DATABASE ${name}`)
  await admin.end()
  t.after(async () => {
    const client = new pg.Client(server)
    try {
      await client.connect()
      await client.query(`DROP DATABASE IF EXISTS ${name} WITH (FORCE)`)
    } catch {
      // the server may already be gone (a test that stopped its own)
    } finally {
      await client.end().catch(() => undefined)
    }
  })
  return { ...server, database: name }
}
