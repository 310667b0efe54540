import assert from 'node:assert/strict'
import { test } from 'node:test'
import { exitCodeOf } from '../../src/doctor/doctor.ts'
import { DEFAULT_CHECKS, resolveDoctorOptions } from '../../src/doctor/options.ts'

test('defaults: every check that needs no input, a 10 s budget, 64 MiB, 1 MiB consumer fetch', () => {
  const o = resolveDoctorOptions({ brokers: 'localhost:9092' })
  assert.deepEqual(o.checks, DEFAULT_CHECKS)
  assert.equal(o.budgetMs, 10_000)
  assert.equal(o.maxBytes, 64 * 1024 * 1024)
  assert.equal(o.consumerFetchBytes, 1024 * 1024)
  assert.equal(o.failOn, 'warn')
  assert.ok(!o.checks.includes('probe') && !o.checks.includes('baseline'))
  const probing = resolveDoctorOptions({ brokers: 'localhost:9092', probeTopic: 'p', baseline: 'b.json' })
  assert.ok(probing.checks.includes('probe') && probing.checks.includes('baseline'))
})

test('bad options name the key and what is allowed', () => {
  assert.throws(() => resolveDoctorOptions({}), /option brokers .*host:port/)
  assert.throws(
    () => resolveDoctorOptions({ brokers: 'a:1', checks: ['lag'] }),
    /option checks is "lag"; expected check ids/,
  )
  assert.throws(() => resolveDoctorOptions({ brokers: 'a:1', budgetMs: 10 }), /option budgetMs is 10/)
  assert.throws(() => resolveDoctorOptions({ brokers: 'a:1', checks: ['probe'] }), /probeTopic/)
  assert.throws(() => resolveDoctorOptions({ brokers: 'a:1', colour: true } as never), /colour/)
})

test('exit codes: critical 2, could not judge 3, warnings 1 (0 with fail-on crit), healthy 0', () => {
  assert.equal(exitCodeOf('crit', 'warn'), 2)
  assert.equal(exitCodeOf('unknown', 'warn'), 3)
  assert.equal(exitCodeOf('warn', 'warn'), 1)
  assert.equal(exitCodeOf('warn', 'crit'), 0)
  assert.equal(exitCodeOf('info', 'warn'), 0)
  assert.equal(exitCodeOf('ok', 'crit'), 0)
})
