/**
 * Every `diagnostics_channel` spillway publishes on, in one table: the name, who publishes, and the
 * message. docs/operations.md lists the same channels and a test keeps the two in step. Components take
 * their channels from here (`channel('spillway:log:fsync')`), so a name cannot be misspelt or go
 * undocumented. Publishing is guarded by `hasSubscribers` wherever it sits on a hot path.
 */
import dc from 'node:diagnostics_channel'

export const channelTable = {
  'spillway:log:corruption': {
    publisher: 'log',
    message:
      '{ segment, offset, bytes, reason, tail }: a damaged region found and skipped (tail: a torn end)',
  },
  'spillway:log:fsync': { publisher: 'log', message: '{ durationMs }: one group commit written and synced' },
  'spillway:log:refused': {
    publisher: 'log',
    message: "{ reason: 'full' | 'queue', bytes }: an append refused by the disk budget or the write queue",
  },
  'spillway:producer:send': { publisher: 'producer', message: '{ count, mode }: events accepted' },
  'spillway:producer:refused': { publisher: 'producer', message: '{ id, code }: an event refused' },
  'spillway:producer:churn': {
    publisher: 'transport registry',
    message: '{ perMinute, limit }: more producers created per minute than churnPerMinute',
  },
  'spillway:dispatcher:batch': {
    publisher: 'dispatcher',
    message: '{ records, bytes }: a batch acknowledged',
  },
  'spillway:dispatcher:failure': {
    publisher: 'dispatcher',
    message: '{ reason, records }: an attempt failed (records: its size)',
  },
  'spillway:dispatcher:dead-letter': {
    publisher: 'dispatcher',
    message: '{ seq, reason }: a poison record moved to the dead-letter path',
  },
  'spillway:transport:retry': {
    publisher: 'transport',
    message:
      '{ attempt, partitions, reasons }: a failed batch sent again as the same bytes (on the Kafka client thread)',
  },
  'spillway:consumer:fetch': {
    publisher: 'consumer',
    message: '{ broker, partitions, records, bytes }: a fetch answered',
  },
  'spillway:consumer:commit': {
    publisher: 'consumer',
    message: '{ partitions, refused }: offsets committed (refused: partitions the group turned down)',
  },
  'spillway:consumer:rebalance': {
    publisher: 'consumer',
    message: "{ change: 'assigned' | 'revoked' | 'lost', partitions, epoch }: ownership changed",
  },
  'spillway:consumer:record-error': {
    publisher: 'consumer',
    message: '{ topic, partition, offset, id, code, action }: a handler or decoder failed for a record',
  },
} as const

export type ChannelName = keyof typeof channelTable

export function channel(name: ChannelName): dc.Channel {
  return dc.channel(name)
}
