/** The @platformatic/kafka adapter on the caller's thread, against the real broker. */
import { PlatformaticCluster } from '../../src/transport/platformatic.ts'
import { clusterContract } from '../helpers/cluster-contract.ts'

clusterContract((brokers, clientId) => new PlatformaticCluster({ brokers, clientId }))
