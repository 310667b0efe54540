/**
 * The Segment Tracking API (`POST /v1/batch`, `/v1/track`, …) as a Fastify plugin with its own error
 * handler: every refusal in Segment's JSON shape, with the JSON path of the bad field.
 */
import type { FastifyInstance } from 'fastify'
import { SpillwayError } from '../../errors.ts'
import { basicAuth, checkRate, pay } from '../auth.ts'
import { parseJson } from '../body.ts'
import type { GatewayContext } from '../context.ts'
import { errorHandler } from '../http-errors.ts'
import { SEGMENT_TYPES, type SegmentType, segmentItems } from '../segment.ts'

export function segmentRoutes(context: GatewayContext) {
  const { config, keys, logger, telemetry } = context
  return async (app: FastifyInstance): Promise<void> => {
    // SDKs that send their JSON batches as form-urlencoded (RudderStack's Node SDK does): the body is
    // still JSON, and is parsed as JSON like any other (only on the Segment routes)
    app.addContentTypeParser(
      'application/x-www-form-urlencoded',
      { parseAs: 'buffer' },
      (_req, body, done) => {
        done(null, body)
      },
    )
    app.setErrorHandler(errorHandler('segment', logger, (code) => telemetry.refused(code)))
    for (const route of ['batch', ...SEGMENT_TYPES] as const) {
      app.post(`/v1/${route}`, async (request, reply) => {
        const raw = request.body as Buffer | undefined
        if (!Buffer.isBuffer(raw))
          throw new SpillwayError('SPW_ERR_BAD_REQUEST', 'the request body is empty', {
            details: { path: '$' },
          })
        const body = parseJson(raw, config.limits.maxDepth)
        const credentials = basicAuth(request.headers.authorization)
        const bodyKey =
          typeof body === 'object' &&
          body !== null &&
          typeof (body as { writeKey?: unknown }).writeKey === 'string'
            ? (body as { writeKey: string }).writeKey
            : undefined
        // a key with a secret presents it as the Basic-auth password; a body writeKey carries none
        const principal = keys.authenticate(
          credentials?.user || bodyKey,
          credentials?.user ? credentials.password : undefined,
          'segment',
        )
        const items = segmentItems(route as 'batch' | SegmentType, body, principal, config)
        const bytes = items.reduce((sum, item) => sum + item.bytes, 0)
        checkRate(principal, items.length, bytes)
        await context.admit(items)
        pay(principal, items.length, bytes)
        telemetry.body(raw.length)
        return reply.code(200).send({ success: true })
      })
    }
  }
}
