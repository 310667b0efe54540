/**
 * Completed offsets beyond the committed one, written into the commit's metadata string so a restart
 * does not redo work that was already done (Confluent's Parallel Consumer does the same; this encoding is
 * spillway's own). Kafka keeps up to `offset.metadata.max.bytes` (4096 by default) of metadata per
 * partition.
 *
 *   metadata = "spw1:" base64url(runs)
 *   runs     = varint*    alternating run lengths over the offsets from the committed one (W) on:
 *                         first a run of offsets NOT completed (W itself never is), then a run of
 *                         completed ones, and so on; the last run is a completed one
 *
 * An empty set of completed offsets is the empty string (nothing to say). A metadata string that does not
 * start with the prefix (another client's, or none) means "nothing completed beyond W".
 */

const PREFIX = 'spw1:'

function writeVarint(out: number[], n: number): void {
  let v = n
  while (v >= 0x80) {
    out.push((v & 0x7f) | 0x80)
    v = Math.floor(v / 128)
  }
  out.push(v)
}

/**
 * Encodes `completed` (offsets, all greater than `committed`, any order) relative to `committed`.
 * Offsets at or below `committed` are ignored: they are covered by the commit itself.
 */
export function encodeCompleted(committed: bigint, completed: Iterable<bigint>): string {
  const sorted = [...new Set(completed)]
    .filter((o) => o > committed)
    .sort((a, b) => (a < b ? -1 : a > b ? 1 : 0))
  if (sorted.length === 0) return ''
  const runs: number[] = []
  let cursor = committed
  let i = 0
  while (i < sorted.length) {
    const start = sorted[i] as bigint
    writeVarint(runs, Number(start - cursor)) // not completed: [cursor, start)
    let end = start
    while (i + 1 < sorted.length && (sorted[i + 1] as bigint) === end + 1n) {
      i++
      end = end + 1n
    }
    i++
    writeVarint(runs, Number(end - start + 1n)) // completed: [start, end]
    cursor = end + 1n
  }
  return PREFIX + Buffer.from(runs).toString('base64url')
}

/** The completed offsets beyond `committed` that `metadata` records; empty for anything not ours. */
export function decodeCompleted(committed: bigint, metadata: string | null | undefined): bigint[] {
  if (!metadata?.startsWith(PREFIX)) return []
  const bytes = Buffer.from(metadata.slice(PREFIX.length), 'base64url')
  const out: bigint[] = []
  let cursor = committed
  let o = 0
  let completedRun = false
  while (o < bytes.length) {
    let value = 0
    let scale = 1
    let byte: number
    do {
      byte = bytes[o++] as number
      if (byte === undefined) return out // truncated: keep what was whole
      value += (byte & 0x7f) * scale
      scale *= 128
    } while (byte & 0x80)
    if (completedRun) {
      for (let k = 0; k < value; k++) out.push(cursor + BigInt(k))
      if (out.length > 10_000_000) return out
    }
    cursor += BigInt(value)
    completedRun = !completedRun
  }
  return out
}
