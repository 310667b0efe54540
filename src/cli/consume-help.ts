/** The text of `spillway consume --help` (kept apart so `spillway --help` loads no Kafka client). */
export const consumeHelp = `Usage:
  spillway consume --brokers H:P[,H:P…] --topic T[,T2…] [options]
      Prints records as they arrive: partition, offset, key, headers (spillway-id among them), value.
      --group G          join consumer group G and commit what was printed (default: no group, no commits)
      --from WHERE       where a partition without a committed offset starts: beginning (default), end,
                         an ISO-8601 time or ms since the epoch
      --json             one JSON object per line; values that are not UTF-8 text come as base64
      --max N            exit after N records
      --timeout MS       exit when no record arrived for MS milliseconds
      --client-id ID     the Kafka client id (default spillway-consume)
      --tls              connect with TLS (--ca FILE for a private CA)
      --sasl-mechanism M, --sasl-username U, --sasl-password-file F   SASL (PLAIN, SCRAM-SHA-256/512)
`
