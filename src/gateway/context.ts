/**
 * What the gateway's route plugins share: the config, the producer, the keys, the readiness sample and
 * the HTTP telemetry. Built once by server.ts and handed to each plugin.
 */
import type { Logger } from 'pino'
import type { SpillwayProducer } from '../producer/producer.ts'
import type { Registry } from '../telemetry/metrics.ts'
import type { KeyRing } from './auth.ts'
import type { GatewayConfig } from './config.ts'
import type { Readiness } from './readiness.ts'
import type { HttpTelemetry } from './telemetry.ts'

export interface GatewayContext {
  readonly config: GatewayConfig
  readonly producer: SpillwayProducer
  readonly keys: KeyRing
  readonly logger: Logger
  readonly registry: Registry
  readonly readiness: Readiness
  readonly telemetry: HttpTelemetry
  /** Appends a request's events all or nothing; throws the refusal of the first refused event. */
  admit(
    items: readonly (Parameters<SpillwayProducer['sendTo']>[0][number] & { readonly path?: string })[],
  ): Promise<void>
}
