export const doctorHelp = `spillway doctor --brokers host:port[,host:port…] [options]

Reads a live cluster through Kafka's protocol and says, within a time budget, what is wrong, how sure it
is and what to do: producer-id build-up, duplicate event ids, partition skew and hot keys, record sizes
against limits, consumer lag and group health, replication and config risks, hanging transactions.
It writes nothing unless --probe is given.

Options:
  --brokers LIST             bootstrap brokers (required)
  --check ID[,ID…]           only these checks: producer-ids, duplicates, skew, record-size,
                             consumer-lag, replication, transactions, baseline, probe
  --topic NAME[,NAME…]       only these topics (default: all)
  --group NAME[,NAME…]       only these consumer groups (default: all)
  --budget TIME              time budget for the whole run: seconds, or 30s, 2m (default 10)
  --max-bytes SIZE           bytes the sampler may read over all topics: 256MiB, 512k (default 64MiB)
  --window TIME              how far back the sampler reads each topic's tail: minutes, or 15m, 6h
                             (default 60)
  --id-path PATH             event id from this JSON field of the value (dots), not the spillway-id header
  --consumer-fetch-bytes SIZE  your consumers' per-partition fetch size (default 1MiB)
  --max-lag-seconds N        lag younger than this is OK (default 60)
  --baseline FILE            compare counts with an earlier --json report
  --probe TOPIC              write 5 records to TOPIC (partition 0) and report ack and end-to-end latency
  --fail-on warn|crit        lowest severity that fails the run (default warn)
  --json                     the report as JSON (schema spillway.doctor/1, docs/doctor.md)
  --client-id ID             client id (default spillway-doctor)
  --tls                      connect with TLS (system CAs), or --ca FILE for a CA bundle
  --sasl-mechanism M         PLAIN, SCRAM-SHA-256 or SCRAM-SHA-512, with --sasl-username and
                             --sasl-password-file FILE

Exit status: 0 healthy, 1 warnings, 2 critical, 3 could not judge (unreachable cluster, denied access,
bad option, or a check that could not see enough).
`
