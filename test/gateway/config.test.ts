import assert from 'node:assert/strict'
import { test } from 'node:test'
import { isSpillwayError } from '../../src/errors.ts'
import { applyEnvironment, resolveGatewayConfig } from '../../src/gateway/config.ts'

test('the gateway config takes kafka.tls and kafka.sasl, with the password from the environment', () => {
  const raw = applyEnvironment(
    {
      kafka: { brokers: ['127.0.0.1:9093'], tls: true, sasl: { mechanism: 'SCRAM-SHA-512', username: 'gw' } },
    },
    { SPILLWAY_SASL_PASSWORD: 'from-env' },
  )
  const config = resolveGatewayConfig(raw)
  assert.deepEqual(config.kafka?.tls, {})
  assert.deepEqual(config.kafka?.sasl, { mechanism: 'SCRAM-SHA-512', username: 'gw', password: 'from-env' })
  assert.equal(config.kafka?.clientId, 'spillway-gateway')
})

test("a topic named '..' in the gateway config is refused with Kafka's rule", () => {
  assert.throws(
    () => resolveGatewayConfig({ segment: { defaultTopic: '..' } }),
    (error: unknown) =>
      isSpillwayError(error, 'SPW_ERR_INVALID_OPTION') && /segment\.defaultTopic/.test(error.message),
  )
})
