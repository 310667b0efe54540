/**
 * replication: RF=1, min.insync.replicas against the replication factor, unclean leader election (topic
 * or broker), under-replicated, at- and under-min-ISR and offline partitions, and the internal topics'
 * replication.
 */
import { configEntry, configNumber, isInternal } from '../facts.ts'
import { type CheckReport, checkReport, type Finding, unknownFinding } from '../types.ts'
import { type CheckContext, listed } from './context.ts'

export function replicationCheck(ctx: CheckContext): CheckReport {
  const title = 'Replication and config risks'
  const { facts } = ctx
  const findings: Finding[] = []
  const brokers = facts.cluster.brokers.length
  if (!facts.topicConfigs.ok)
    findings.push(unknownFinding('replication', 'topics', `topic configs: ${facts.topicConfigs.reason}`))
  if (!facts.brokerConfigs.ok)
    findings.push(unknownFinding('replication', 'brokers', `broker configs: ${facts.brokerConfigs.reason}`))
  const groups = new Map<string, { topics: Set<string>; evidence: Record<string, unknown>[] }>()
  const add = (id: string, topic: string, evidence: Record<string, unknown>): void => {
    const g = groups.get(id) ?? { topics: new Set(), evidence: [] }
    g.topics.add(topic)
    if (g.evidence.length < 50) g.evidence.push({ topic, ...evidence })
    groups.set(id, g)
  }
  const rows: (string | number)[][] = []
  for (const topic of facts.topics) {
    const parts = facts.partitions.filter((p) => p.topic === topic)
    if (parts.length === 0) continue
    const rf = Math.min(...parts.map((p) => p.replicas.length))
    const minIsr = configNumber(facts.topicConfigs, topic, 'min.insync.replicas')
    const unclean = configEntry(facts.topicConfigs, topic, 'unclean.leader.election.enable')
    const internal = isInternal(topic)
    let state = 'ok'
    // on a one-broker cluster one replica is all there is: said once for the cluster, below
    if (brokers > 1 && rf === 1)
      add(internal ? 'replication.internal-topic' : 'replication.rf1', topic, {
        replicationFactor: rf,
        brokers,
      })
    else if (brokers > 1 && internal && rf < Math.min(3, brokers))
      add('replication.internal-topic', topic, { replicationFactor: rf, brokers })
    if (minIsr !== undefined) {
      if (minIsr > rf)
        add('replication.min-isr-above-rf', topic, { replicationFactor: rf, minInsyncReplicas: minIsr })
      else if (rf > 1 && minIsr === rf)
        add('replication.min-isr-equals-rf', topic, { replicationFactor: rf, minInsyncReplicas: minIsr })
      else if (rf >= 3 && minIsr === 1)
        add('replication.min-isr-one', topic, { replicationFactor: rf, minInsyncReplicas: minIsr })
    }
    if (unclean?.value === 'true') add('replication.unclean-election', topic, { source: unclean.source })
    for (const p of parts) {
      // a replica on a stopped broker is reported offline while its partition still has a leader: that
      // partition is under-replicated (or under min ISR), and offline only when it has no leader at all
      if (p.leader < 0) {
        add('replication.offline', topic, { partition: p.partition, replicas: p.replicas })
        state = 'offline'
      } else if (minIsr !== undefined && p.isr.length < minIsr) {
        add('replication.under-min-isr', topic, {
          partition: p.partition,
          isr: p.isr,
          offlineReplicas: p.offline,
          minInsyncReplicas: minIsr,
        })
        state = 'under min ISR'
      } else if (p.isr.length < p.replicas.length || p.offline.length > 0) {
        add('replication.under-replicated', topic, {
          partition: p.partition,
          isr: p.isr,
          replicas: p.replicas,
          offlineReplicas: p.offline,
        })
        state = 'under-replicated'
      }
    }
    rows.push([topic, parts.length, rf, minIsr ?? '?', unclean?.value ?? '?', state])
  }
  const META: Record<
    string,
    { severity: Finding['severity']; summary: (n: number) => string; remedy: string }
  > = {
    'replication.rf1': {
      severity: 'crit',
      summary: (n) =>
        `${n} topic(s) have a single replica: losing that broker's disk loses their data, and a restart makes them unavailable.`,
      remedy:
        'Raise the replication factor to 3 (kafka-reassign-partitions) on a cluster of at least 3 brokers.',
    },
    'replication.internal-topic': {
      severity: 'crit',
      summary: (n) =>
        `${n} internal topic(s) (offsets, transactions) have fewer replicas than the cluster can give them: losing one broker loses group offsets or transaction state.`,
      remedy:
        'Reassign the internal topics to 3 replicas; set offsets.topic.replication.factor and transaction.state.log.replication.factor to 3.',
    },
    'replication.min-isr-above-rf': {
      severity: 'crit',
      summary: (n) =>
        `${n} topic(s) have min.insync.replicas above their replication factor: every acks=all write is refused.`,
      remedy: 'Set min.insync.replicas to the replication factor minus one.',
    },
    'replication.min-isr-equals-rf': {
      severity: 'warn',
      summary: (n) =>
        `${n} topic(s) have min.insync.replicas equal to their replication factor: one broker down or slow blocks every acks=all write.`,
      remedy: 'Set min.insync.replicas to the replication factor minus one (2 with 3 replicas).',
    },
    'replication.min-isr-one': {
      severity: 'warn',
      summary: (n) =>
        `${n} topic(s) have 3 or more replicas but min.insync.replicas=1: an acknowledged write may live on one broker only.`,
      remedy: 'Set min.insync.replicas to 2 and produce with acks=all.',
    },
    'replication.unclean-election': {
      severity: 'crit',
      summary: (n) =>
        `${n} topic(s) allow unclean leader election: an out-of-sync replica may become leader and acknowledged writes are lost.`,
      remedy: 'Set unclean.leader.election.enable=false on the topics and the brokers.',
    },
    'replication.offline': {
      severity: 'crit',
      summary: (n) =>
        `${n} topic(s) have offline partitions: no replica can lead them, so they can be neither written nor read.`,
      remedy: 'Bring the brokers or log directories back; check the controller log.',
    },
    'replication.under-min-isr': {
      severity: 'crit',
      summary: (n) =>
        `${n} topic(s) have partitions with fewer in-sync replicas than min.insync.replicas: acks=all writes are refused now.`,
      remedy: 'Find the lagging or dead brokers (URP per broker) and bring them back in sync.',
    },
    'replication.under-replicated': {
      severity: 'warn',
      summary: (n) => `${n} topic(s) have under-replicated partitions.`,
      remedy: 'Find the broker missing from the ISR; look at its disk, network and replica fetcher.',
    },
  }
  for (const [id, g] of groups) {
    const meta = META[id]
    if (!meta) continue
    const topics = [...g.topics]
    findings.push({
      id,
      severity: meta.severity,
      subject: topics.length === 1 ? `topic ${topics[0]}` : `${topics.length} topics`,
      summary: `${meta.summary(topics.length)} ${listed(topics)}.`,
      confidence: 'high',
      evidence: { topics, details: g.evidence },
      remedy: meta.remedy,
    })
  }
  if (brokers === 1 && facts.topics.length > 0)
    findings.push({
      id: 'replication.single-broker',
      severity: 'warn',
      subject: 'cluster',
      summary:
        'The cluster has one broker, so every topic has one replica: a lost disk loses the data, and a restart stops every write and read until it is back.',
      confidence: 'high',
      evidence: { brokers: facts.cluster.brokers.map((b) => b.nodeId) },
      remedy:
        'Fine for development; in production run 3 brokers with replication factor 3 and min.insync.replicas 2.',
    })
  if (facts.brokerConfigs.ok) {
    const unclean = [...facts.brokerConfigs.value].filter(
      ([, e]) => e.get('unclean.leader.election.enable')?.value === 'true',
    )
    if (unclean.length > 0) {
      findings.push({
        id: 'replication.unclean-election-broker',
        severity: 'crit',
        subject: `brokers ${unclean.map(([b]) => b).join(', ')}`,
        summary: `Brokers ${unclean.map(([b]) => b).join(', ')} allow unclean leader election by default, for every topic that does not override it.`,
        confidence: 'high',
        evidence: { brokers: unclean.map(([b]) => b) },
        remedy: "Set unclean.leader.election.enable=false in the brokers' config.",
      })
    }
  }
  const table = {
    columns: ['topic', 'partitions', 'RF', 'min ISR', 'unclean', 'state'],
    rows: rows.sort((a, b) => (a[5] === 'ok' ? 1 : 0) - (b[5] === 'ok' ? 1 : 0)).slice(0, 40),
  }
  return checkReport(
    'replication',
    title,
    findings,
    [`${brokers} broker(s), ${facts.topics.length} topic(s).`],
    table,
  )
}
