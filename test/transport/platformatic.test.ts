/** The @platformatic/kafka adapter on the caller's thread, against the real broker. */
import { PlatformaticTransport } from '../../src/transport/platformatic.ts'
import { transportContract } from '../helpers/transport-contract.ts'

transportContract((brokers, clientId) => new PlatformaticTransport({ brokers, clientId }))
