/**
 * The admin facet over @platformatic/kafka: read-only cluster calls for the producer (partition counts),
 * the consumer and the doctor. Requests that must reach one broker (DescribeProducers to each leader,
 * ConsumerGroupDescribe to each coordinator) use the client's own authenticated connections, so TLS and
 * SASL apply to them as to everything else. Failures reject with a SpillwayError (errors.ts).
 */
import {
  type Admin,
  ConfigResourceTypes,
  ConfigSources,
  type Connection,
  consumerGroupDescribeV0,
  describeProducersV0,
  describeTransactionsV0,
  FindCoordinatorKeyTypes,
  listTransactionsV0,
  metadataV12,
} from '@platformatic/kafka'
import { SpillwayError } from '../errors.ts'
import { clientErrorFacts, toSpillwayError } from './classify.ts'
import type {
  AdminFacet,
  CommittedOffset,
  ConfigDescription,
  ConfigQuery,
  GroupDescription,
  GroupListing,
  ListedOffset,
  LogDirPartition,
  OffsetQuery,
  ProducerDescription,
  TransactionDescription,
} from './cluster.ts'
import { withDeadline } from './deadline.ts'
import type { ClusterSnapshot, MetadataCache, TopicMetadata } from './metadata-cache.ts'

type AdminClient = Admin
type ListedTopic = {
  name: string
  partitions: { partitionIndex: number; offset: bigint; timestamp: bigint }[]
}

/** The client's metadata answer in spillway's terms. */
export function snapshotOf(metadata: Awaited<ReturnType<AdminClient['metadata']>>): ClusterSnapshot {
  return {
    clusterId: metadata.id,
    controllerId: metadata.controllerId,
    brokers: [...metadata.brokers].map(([nodeId, b]) => ({
      nodeId,
      host: b.host,
      port: b.port,
      rack: b.rack ?? null,
    })),
    // the client leaves internal topics (and topics deleted meanwhile) out as undefined entries
    topics: [...metadata.topics].flatMap(([name, t]) =>
      t === undefined
        ? []
        : [
            {
              name,
              id: t.id,
              partitions: t.partitions.flatMap((p, partition) =>
                p === undefined
                  ? []
                  : [
                      {
                        partition,
                        leader: p.leader,
                        leaderEpoch: p.leaderEpoch,
                        replicas: p.replicas,
                        isr: p.isr,
                        offlineReplicas: p.offlineReplicas,
                      },
                    ],
              ),
            },
          ],
    ),
  }
}

const SOURCE_NAMES = new Map<number, string>([
  [ConfigSources.DYNAMIC_TOPIC_CONFIG, 'topic'],
  [ConfigSources.DYNAMIC_BROKER_CONFIG, 'dynamic-broker'],
  [ConfigSources.DYNAMIC_DEFAULT_BROKER_CONFIG, 'dynamic-default-broker'],
  [ConfigSources.STATIC_BROKER_CONFIG, 'static-broker'],
  [ConfigSources.DEFAULT_CONFIG, 'default'],
])

/** The authenticated connection to one broker, from a client's pool. */
export async function brokerConnection(client: AdminClient, nodeId: number): Promise<Connection> {
  const connections = await client.connectToBrokers([nodeId])
  const connection = connections.get(nodeId)
  if (!connection) throw new SpillwayError('SPW_ERR_UNAVAILABLE', `broker ${nodeId} cannot be reached`)
  return connection
}

export function callbackApi<T>(call: (callback: (error: unknown, value: T) => void) => void): Promise<T> {
  return new Promise((resolve, reject) => call((error, value) => (error ? reject(error) : resolve(value))))
}

export class PlatformaticAdmin implements AdminFacet {
  readonly #client: () => AdminClient
  readonly #metadata: MetadataCache

  /** `client` is made on first use: a producer-only lease never opens admin connections. */
  constructor(client: () => AdminClient, metadata: MetadataCache) {
    this.#client = client
    this.#metadata = metadata
  }

  /** Runs one admin call under a deadline; any failure becomes a coded SpillwayError. */
  async #run<T>(what: string, deadlineMs: number, work: () => Promise<T>): Promise<T> {
    try {
      return await withDeadline(work(), deadlineMs, what)
    } catch (error) {
      throw toSpillwayError(error, what)
    }
  }

  async partitions(topic: string, deadlineMs: number): Promise<number> {
    const info = await this.#run(`metadata for ${topic}`, deadlineMs, () => this.#metadata.topic(topic))
    if (!info) {
      throw new SpillwayError('SPW_ERR_TOPIC_MISSING', `topic ${topic} does not exist`, {
        details: { topic },
      })
    }
    return info.partitions.length
  }

  async metadata(topics: readonly string[], deadlineMs: number): Promise<ClusterSnapshot> {
    return await this.#run('metadata', deadlineMs, async () => {
      const client = this.#client()
      const names = topics.length > 0 ? [...topics] : await client.listTopics({ includeInternals: true })
      let snapshot: ClusterSnapshot
      try {
        snapshot = snapshotOf(await client.metadata({ topics: names, forceUpdate: true }))
      } catch (error) {
        // one unknown topic fails the whole request: ask for each, and leave the missing ones out
        if (!clientErrorFacts(error).names.has('UNKNOWN_TOPIC_OR_PARTITION')) throw error
        const each = await Promise.all(
          names.map(async (name) => {
            try {
              return snapshotOf(await client.metadata({ topics: [name], forceUpdate: true }))
            } catch (inner) {
              if (clientErrorFacts(inner).names.has('UNKNOWN_TOPIC_OR_PARTITION')) return undefined
              throw inner
            }
          }),
        )
        const found = each.filter((x): x is ClusterSnapshot => x !== undefined)
        const base = found[0] ?? snapshotOf(await client.metadata({ topics: [], forceUpdate: true }))
        snapshot = { ...base, topics: found.flatMap((x) => x.topics) }
      }
      // the client drops internal topics (__consumer_offsets, __transaction_state) from its answers
      const internal = names.filter((n) => n.startsWith('__') && !snapshot.topics.some((t) => t.name === n))
      if (internal.length > 0 && snapshot.brokers[0]) {
        snapshot = {
          ...snapshot,
          topics: [...snapshot.topics, ...(await this.#internalTopics(internal, snapshot.brokers[0].nodeId))],
        }
      }
      this.#metadata.remember(snapshot)
      return snapshot
    })
  }

  /** Internal topics' metadata, by a Metadata request of spillway's own on one broker's connection. */
  async #internalTopics(names: readonly string[], nodeId: number): Promise<TopicMetadata[]> {
    const connection = await this.#connection(nodeId)
    const response = await metadataV12.api.async(connection, [...names], false, false)
    return response.topics
      .filter((t) => t.errorCode === 0 && t.name)
      .map((t) => ({
        name: t.name as string,
        id: t.topicId,
        partitions: [...t.partitions]
          .sort((a, b) => a.partitionIndex - b.partitionIndex)
          .map((p) => ({
            partition: p.partitionIndex,
            leader: p.leaderId,
            leaderEpoch: p.leaderEpoch,
            replicas: p.replicaNodes,
            isr: p.isrNodes,
            offlineReplicas: p.offlineReplicas,
          })),
      }))
  }

  async #connection(nodeId: number): Promise<Connection> {
    return await brokerConnection(this.#client(), nodeId)
  }

  async describeProducers(topics: readonly string[], deadlineMs: number): Promise<ProducerDescription[]> {
    return await this.#run('DescribeProducers', deadlineMs, async () => {
      const snapshot = snapshotOf(await this.#client().metadata({ topics: [...topics], forceUpdate: true }))
      // DescribeProducers must go to each partition's leader.
      const byLeader = new Map<number, { name: string; partitionIndexes: number[] }[]>()
      for (const t of snapshot.topics) {
        for (const p of t.partitions) {
          const list = byLeader.get(p.leader) ?? []
          let entry = list.find((e) => e.name === t.name)
          if (!entry) {
            entry = { name: t.name, partitionIndexes: [] }
            list.push(entry)
          }
          entry.partitionIndexes.push(p.partition)
          byLeader.set(p.leader, list)
        }
      }
      const answers = await Promise.all(
        [...byLeader].map(async ([leader, request]) => {
          const connection = await this.#connection(leader)
          return await describeProducersV0.api.async(connection, request)
        }),
      )
      const out: ProducerDescription[] = []
      for (const response of answers) {
        for (const t of response.topics) {
          for (const p of t.partitions) {
            const producers = p.activeProducers.map((a) => ({
              producerId: a.producerId,
              producerEpoch: a.producerEpoch,
              lastSequence: a.lastSequence,
              lastTimestamp: a.lastTimestamp,
              currentTxnStartOffset: a.currentTxnStartOffset,
            }))
            out.push({
              topic: t.name,
              partition: p.partitionIndex,
              producerIds: producers.map((a) => a.producerId),
              producers,
            })
          }
        }
      }
      return out
    })
  }

  async listOffsets(queries: readonly OffsetQuery[], deadlineMs: number): Promise<ListedOffset[]> {
    return await this.#run('ListOffsets', deadlineMs, async () => {
      const byTopic = new Map<string, { partitionIndex: number; timestamp: bigint }[]>()
      for (const q of queries) {
        const list = byTopic.get(q.topic) ?? []
        list.push({ partitionIndex: q.partition, timestamp: q.timestamp })
        byTopic.set(q.topic, list)
      }
      const listed = await this.#client().listOffsets({
        topics: [...byTopic].map(([name, partitions]) => ({ name, partitions })),
      })
      return (listed as ListedTopic[]).flatMap((t) =>
        t.partitions.map((p) => ({
          topic: t.name,
          partition: p.partitionIndex,
          offset: p.offset,
          timestamp: p.timestamp,
        })),
      )
    })
  }

  async describeConfigs(queries: readonly ConfigQuery[], deadlineMs: number): Promise<ConfigDescription[]> {
    return await this.#run('DescribeConfigs', deadlineMs, async () => {
      const described = await this.#client().describeConfigs({
        resources: queries.map((q) => ({
          resourceType: q.type === 'topic' ? ConfigResourceTypes.TOPIC : ConfigResourceTypes.BROKER,
          resourceName: q.name,
          configurationKeys: q.keys ? [...q.keys] : null,
        })),
      })
      return described.map(
        (d): ConfigDescription => ({
          type: d.resourceType === ConfigResourceTypes.TOPIC ? 'topic' : 'broker',
          name: d.resourceName,
          entries: d.configs.map((c) => ({
            name: c.name,
            value: c.value ?? null,
            source: SOURCE_NAMES.get(c.configSource) ?? 'unknown',
            sensitive: c.isSensitive,
          })),
        }),
      )
    })
  }

  async describeLogDirs(topics: readonly string[], deadlineMs: number): Promise<LogDirPartition[]> {
    return await this.#run('DescribeLogDirs', deadlineMs, async () => {
      const client = this.#client()
      const snapshot = snapshotOf(await client.metadata({ topics: [...topics], forceUpdate: true }))
      const described = await client.describeLogDirs({
        topics: snapshot.topics.map((t) => ({
          name: t.name,
          partitions: t.partitions.map((p) => p.partition),
        })),
      })
      const out: LogDirPartition[] = []
      for (const broker of described) {
        for (const dir of broker.results) {
          for (const t of dir.topics) {
            for (const p of t.partitions) {
              if (p.isFutureKey) continue
              out.push({
                broker: broker.broker,
                dir: dir.logDir,
                topic: t.name,
                partition: p.partitionIndex,
                bytes: p.partitionSize,
              })
            }
          }
        }
      }
      return out
    })
  }

  async listGroups(deadlineMs: number): Promise<GroupListing[]> {
    return await this.#run('ListGroups', deadlineMs, async () => {
      const groups = await this.#client().listGroups({ types: ['classic', 'consumer'] })
      return [...groups.values()].map((g) => ({
        groupId: g.id,
        state: String(g.state),
        type: g.groupType ?? 'classic',
        protocolType: g.protocolType,
      }))
    })
  }

  async describeGroups(groupIds: readonly string[], deadlineMs: number): Promise<GroupDescription[]> {
    return await this.#run('DescribeGroups', deadlineMs, async () => {
      const client = this.#client()
      const listed = await client.listGroups({ types: ['classic', 'consumer'] })
      const consumerGroups = groupIds.filter((id) => listed.get(id)?.groupType === 'consumer')
      const classicGroups = groupIds.filter((id) => !consumerGroups.includes(id))
      const out: GroupDescription[] = []
      if (classicGroups.length > 0) {
        const described = await client.describeGroups({ groups: classicGroups })
        for (const g of described.values()) {
          out.push({
            groupId: g.id,
            type: 'classic',
            state: String(g.state),
            epoch: -1,
            members: [...g.members.values()].map((m) => ({
              memberId: m.id,
              clientId: m.clientId,
              clientHost: m.clientHost,
              memberEpoch: -1,
              assignment: [...(m.assignments?.values() ?? [])].map((a) => ({
                topic: a.topic,
                partitions: [...a.partitions],
              })),
            })),
          })
        }
      }
      if (consumerGroups.length > 0) out.push(...(await this.#describeConsumerGroups(consumerGroups)))
      return out
    })
  }

  async describeTransactions(deadlineMs: number): Promise<TransactionDescription[]> {
    return await this.#run('ListTransactions', deadlineMs, async () => {
      const client = this.#client()
      const snapshot = snapshotOf(await client.metadata({ topics: [], forceUpdate: true }))
      // every broker coordinates the transactional ids that hash to its partitions of __transaction_state
      const listed = await Promise.all(
        snapshot.brokers.map(async (b) => {
          const connection = await this.#connection(b.nodeId)
          const response = await listTransactionsV0.api.async(connection, [], [], -1n, null)
          return { nodeId: b.nodeId, ids: response.transactionStates.map((t) => t.transactionalId) }
        }),
      )
      const out: TransactionDescription[] = []
      for (const { nodeId, ids } of listed) {
        if (ids.length === 0) continue
        const connection = await this.#connection(nodeId)
        const response = await describeTransactionsV0.api.async(connection, ids)
        for (const t of response.transactionStates) {
          if (t.errorCode !== 0) continue
          out.push({
            transactionalId: t.transactionalId,
            producerId: t.producerId,
            producerEpoch: t.producerEpoch,
            state: t.transactionState,
            timeoutMs: t.transactionTimeoutMs,
            startTimeMs: Number(t.transactionStartTimeMs),
            coordinator: nodeId,
            partitions: t.topics.flatMap((x) =>
              x.partitions.map((partition) => ({ topic: x.topic, partition })),
            ),
          })
        }
      }
      return out
    })
  }

  /** KIP-848 groups: ConsumerGroupDescribe, sent to each group's coordinator. */
  async #describeConsumerGroups(groupIds: readonly string[]): Promise<GroupDescription[]> {
    const client = this.#client()
    const coordinators = await client.findCoordinator({
      keyType: FindCoordinatorKeyTypes.GROUP,
      keys: [...groupIds],
    })
    const byCoordinator = new Map<number, string[]>()
    for (const c of coordinators) byCoordinator.set(c.nodeId, [...(byCoordinator.get(c.nodeId) ?? []), c.key])
    const out: GroupDescription[] = []
    for (const [nodeId, groups] of byCoordinator) {
      const connection = await this.#connection(nodeId)
      const response = await callbackApi<Awaited<ReturnType<typeof consumerGroupDescribeV0.api.async>>>(
        (cb) => consumerGroupDescribeV0.api(connection, groups, false, cb as never),
      )
      for (const g of response.groups) {
        out.push({
          groupId: g.groupId,
          type: 'consumer',
          state: g.groupState,
          epoch: g.groupEpoch,
          members: g.members.map((m) => ({
            memberId: m.memberId,
            clientId: m.clientId,
            clientHost: m.clientHost,
            memberEpoch: m.memberEpoch,
            assignment: m.assignment.topicPartitions.map((a) => ({
              topic: a.topicName,
              partitions: [...a.partitions],
            })),
          })),
        })
      }
    }
    return out
  }

  async committedOffsets(
    groupIds: readonly string[],
    deadlineMs: number,
    stable = false,
  ): Promise<CommittedOffset[]> {
    return await this.#run('OffsetFetch', deadlineMs, async () => {
      const groups = await this.#client().listConsumerGroupOffsets({
        groups: [...groupIds],
        requireStable: stable,
      })
      return groups.flatMap((g) =>
        g.topics.flatMap((t) =>
          t.partitions.map((p) => ({
            groupId: g.groupId,
            topic: t.name,
            partition: p.partitionIndex,
            offset: p.committedOffset,
            metadata: p.metadata ?? null,
          })),
        ),
      )
    })
  }

  async createTopics(
    topics: readonly { name: string; partitions: number }[],
    deadlineMs: number,
  ): Promise<void> {
    await this.#run('CreateTopics', deadlineMs, async () => {
      for (const t of topics) {
        try {
          await this.#client().createTopics({ topics: [t.name], partitions: t.partitions, replicas: -1 })
        } catch (error) {
          // created meanwhile by someone else: what was wanted is there
          if (!clientErrorFacts(error).names.has('TOPIC_ALREADY_EXISTS')) throw error
        }
        this.#metadata.invalidate(t.name)
      }
    })
  }
}
