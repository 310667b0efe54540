/**
 * Confluent REST Proxy v3's produce endpoint as a Fastify plugin with its own error handler: every
 * refusal in the REST Proxy's error shape.
 */
import type { FastifyInstance } from 'fastify'
import { SpillwayError } from '../../errors.ts'
import { isTopicName, TOPIC_NAME_RULE } from '../../topic-name.ts'
import { basicAuth, checkRate, mayWrite, pay } from '../auth.ts'
import { parseJsonStream } from '../body.ts'
import type { GatewayContext } from '../context.ts'
import { errorHandler } from '../http-errors.ts'
import { restRecord, restSuccess } from '../rest-proxy.ts'

export function restProxyRoutes(context: GatewayContext) {
  const { config, keys, logger, telemetry } = context
  return async (app: FastifyInstance): Promise<void> => {
    app.setErrorHandler(errorHandler('rest', logger, (code) => telemetry.refused(code)))
    app.post('/v3/clusters/:cluster/topics/:topic/records', async (request, reply) => {
      const { cluster, topic } = request.params as { cluster: string; topic: string }
      if (cluster !== config.clusterId)
        throw new SpillwayError('SPW_ERR_NOT_FOUND', `cluster ${cluster} not found`)
      const credentials = basicAuth(request.headers.authorization)
      const principal = keys.authenticate(credentials?.user, credentials?.password, 'rest')
      if (!isTopicName(topic))
        throw new SpillwayError(
          'SPW_ERR_BAD_REQUEST',
          `topic name ${JSON.stringify(topic)} is not ${TOPIC_NAME_RULE}`,
        )
      if (!config.restTopics.includes('*') && !config.restTopics.includes(topic)) {
        throw new SpillwayError('SPW_ERR_UNKNOWN_TOPIC', `topic ${topic} is not served by this gateway`, {
          details: { topic },
        })
      }
      if (!mayWrite(principal, topic))
        throw new SpillwayError('SPW_ERR_FORBIDDEN_TOPIC', `key ${principal.name} may not write to ${topic}`)
      const raw = request.body as Buffer | undefined
      if (!Buffer.isBuffer(raw) || raw.length === 0)
        throw new SpillwayError('SPW_ERR_BAD_REQUEST', 'the request body is empty')
      const docs = parseJsonStream(raw, config.limits.maxDepth)
      if (docs.length > config.limits.maxEvents) {
        throw new SpillwayError(
          'SPW_ERR_PAYLOAD_TOO_LARGE',
          `${docs.length} records in one request; at most ${config.limits.maxEvents}`,
        )
      }
      const records = docs.map((d, i) => {
        if ('error' in d) throw d.error
        return restRecord(d.value, docs.length > 1 ? `$[${i}]` : '$', config.limits.maxEventBytes)
      })
      if (records.length === 0) throw new SpillwayError('SPW_ERR_BAD_REQUEST', 'the request holds no record')
      const bytes = records.reduce((sum, r) => sum + r.bytes, 0)
      if (bytes > config.limits.maxRequestWriteBytes) {
        throw new SpillwayError(
          'SPW_ERR_PAYLOAD_TOO_LARGE',
          `the request writes ${bytes} bytes; at most ${config.limits.maxRequestWriteBytes} (limits.maxRequestWriteBytes)`,
          { details: { path: '$', max: config.limits.maxRequestWriteBytes } },
        )
      }
      checkRate(principal, records.length, bytes)
      await context.admit(
        records.map((r, i) => ({ topic, event: r.event, path: records.length > 1 ? `$[${i}]` : '$' })),
      )
      pay(principal, records.length, bytes)
      telemetry.body(raw.length)
      const bodies = records.map((r) => restSuccess(config.clusterId, topic, r))
      if (bodies.length === 1) return reply.code(200).send(bodies[0])
      return reply
        .code(200)
        .type('application/json')
        .send(`${bodies.map((b) => JSON.stringify(b)).join('\n')}\n`)
    })
  }
}
