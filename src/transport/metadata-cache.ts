/**
 * The one cache of topic metadata per cluster: partition count, leaders and replicas, trusted for
 * `maxAgeMs` (one TTL for every user of the cluster: the sender routing batches to leaders, the
 * dispatcher choosing partitions, the admin facet). An error that says the metadata is stale
 * (NOT_LEADER_OR_FOLLOWER, UNKNOWN_TOPIC_OR_PARTITION, a leader that cannot be reached) invalidates the
 * topic, so its next lookup asks the broker again. Concurrent misses for one topic share one request.
 */

export interface BrokerAddress {
  readonly nodeId: number
  readonly host: string
  readonly port: number
  readonly rack: string | null
}

export interface PartitionMetadata {
  readonly partition: number
  /** -1 while the partition has no leader. */
  readonly leader: number
  readonly leaderEpoch: number
  readonly replicas: readonly number[]
  readonly isr: readonly number[]
  readonly offlineReplicas: readonly number[]
}

export interface TopicMetadata {
  readonly name: string
  /** The topic's id (a UUID), as Fetch and KIP-848 heartbeats name topics. */
  readonly id: string
  readonly partitions: readonly PartitionMetadata[]
}

export interface ClusterSnapshot {
  readonly clusterId: string
  readonly controllerId: number
  readonly brokers: readonly BrokerAddress[]
  /** The topics asked for that exist; a missing topic is absent. */
  readonly topics: readonly TopicMetadata[]
}

/** Fetches metadata for the topics from the broker (never from a cache). */
export type MetadataSource = (topics: readonly string[]) => Promise<ClusterSnapshot>

interface Entry {
  readonly topic: TopicMetadata | undefined
  readonly at: number
}

export class MetadataCache {
  readonly #source: MetadataSource
  readonly #maxAgeMs: number
  readonly #now: () => number
  readonly #topics = new Map<string, Entry>()
  readonly #inflight = new Map<string, Promise<TopicMetadata | undefined>>()
  #brokers = new Map<number, BrokerAddress>()

  constructor(source: MetadataSource, maxAgeMs: number, now: () => number = () => performance.now()) {
    this.#source = source
    this.#maxAgeMs = maxAgeMs
    this.#now = now
  }

  /** A topic's metadata, from the cache while fresh; `undefined` when the topic does not exist. */
  async topic(name: string, options: { refresh?: boolean } = {}): Promise<TopicMetadata | undefined> {
    const cached = this.#topics.get(name)
    if (!options.refresh && cached && this.#now() - cached.at < this.#maxAgeMs) return cached.topic
    let pending = this.#inflight.get(name)
    if (!pending) {
      pending = this.#fetch(name).finally(() => this.#inflight.delete(name))
      this.#inflight.set(name, pending)
    }
    return await pending
  }

  async #fetch(name: string): Promise<TopicMetadata | undefined> {
    const snapshot = await this.#source([name])
    this.remember(snapshot)
    const topic = snapshot.topics.find((t) => t.name === name)
    // a missing topic is remembered too, so a stream of events for it does not hammer the broker
    if (!topic) this.#topics.set(name, { topic: undefined, at: this.#now() })
    return topic
  }

  /** Takes in what a broker answered (from this cache's own requests or from an admin call). */
  remember(snapshot: ClusterSnapshot): void {
    const at = this.#now()
    for (const t of snapshot.topics) this.#topics.set(t.name, { topic: t, at })
    if (snapshot.brokers.length > 0) this.#brokers = new Map(snapshot.brokers.map((b) => [b.nodeId, b]))
  }

  broker(nodeId: number): BrokerAddress | undefined {
    return this.#brokers.get(nodeId)
  }

  /** Forgets a topic: the next lookup asks the broker. */
  invalidate(name: string): void {
    this.#topics.delete(name)
  }
}
