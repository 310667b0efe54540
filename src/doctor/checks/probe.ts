/**
 * probe (only with --probe TOPIC): writes a few records through a plain producer (not idempotent, so the
 * probe adds no producer id) to partition 0 of the topic, and reports the acknowledgement latency and the
 * end-to-end latency (written until a fetch returns it).
 */
import { randomUUID } from 'node:crypto'
import type { GroupFacet } from '../../transport/cluster.ts'
import { probeWrite } from '../../transport/probe.ts'
import type { KafkaConnectionOptions } from '../../transport/transport.ts'
import { percentile } from '../stats.ts'
import { type CheckReport, checkReport, unknownFinding } from '../types.ts'

export const PROBE_RECORDS = 5

export async function probeCheck(
  connection: KafkaConnectionOptions,
  group: GroupFacet,
  topic: string,
  leader: number | undefined,
  deadlineMs: number,
): Promise<CheckReport> {
  const title = `Probe: write and read back on ${topic}`
  if (leader === undefined)
    return checkReport('probe', title, [
      unknownFinding(
        'probe',
        `topic ${topic}`,
        `topic ${topic} does not exist or has no leader for partition 0`,
      ),
    ])
  const until = performance.now() + deadlineMs
  const session = `doctor-probe-${randomUUID()}`
  const ack: number[] = []
  const e2e: number[] = []
  try {
    for (let i = 0; i < PROBE_RECORDS; i++) {
      const id = randomUUID()
      const started = performance.now()
      const [written] = await probeWrite(
        connection,
        topic,
        [
          {
            key: Buffer.from('spillway-doctor-probe'),
            value: Buffer.from(JSON.stringify({ probe: id, at: Date.now() })),
            headers: new Map([[Buffer.from('spillway-id'), Buffer.from(id)]]),
          },
        ],
        Math.max(100, until - performance.now()),
      )
      if (!written || written.offset < 0n) throw new Error('the broker acknowledged no offset')
      ack.push(written.ackMs)
      for (;;) {
        if (performance.now() > until) throw new Error('the probe record was not read back within the budget')
        const [answer] = await group.fetch(
          {
            session,
            broker: leader,
            maxWaitMs: 200,
            minBytes: 1,
            maxBytes: 1024 * 1024,
            partitions: [{ topic, partition: 0, offset: written.offset, maxBytes: 1024 * 1024 }],
          },
          Math.max(100, until - performance.now()),
        )
        if (answer?.error) throw new Error(`reading back failed: ${answer.error}`)
        if (answer?.records.some((r) => r.offset === written.offset)) break
      }
      e2e.push(performance.now() - started)
    }
  } catch (error) {
    return checkReport('probe', title, [unknownFinding('probe', `topic ${topic}`, (error as Error).message)])
  } finally {
    await group.endSession(session).catch(() => undefined)
  }
  const p50Ack = percentile(ack, 50)
  const p50E2e = percentile(e2e, 50)
  const slow = p50Ack > 1000
  return checkReport(
    'probe',
    title,
    [
      {
        id: slow ? 'probe.slow' : 'probe.latency',
        severity: slow ? 'warn' : 'info',
        subject: `topic ${topic}`,
        summary: `${PROBE_RECORDS} records written with acks=all: acknowledged in ${p50Ack.toFixed(1)} ms (median, max ${Math.max(...ack).toFixed(1)} ms), read back ${p50E2e.toFixed(1)} ms after sending (median).`,
        confidence: 'high',
        evidence: { records: PROBE_RECORDS, ackMs: ack, endToEndMs: e2e },
        remedy: slow
          ? "Acknowledgements over a second: look at the leader's disk, the ISR and the network."
          : 'Nothing to do.',
      },
    ],
    ['The probe writes through a producer that is not idempotent, so it adds no producer id.'],
  )
}
