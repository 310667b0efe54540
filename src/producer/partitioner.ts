/**
 * Key → partition exactly as the Java client's default partitioner does it:
 * `toPositive(murmur2(keyBytes)) % numPartitions`, so spillway and every Java/librdkafka-compatible
 * producer agree on where a key lives. (A plain unsigned murmur2 % n, as some clients use, does not.)
 */
export function murmur2(data: Buffer, start = 0, end = data.length): number {
  const length = end - start
  const seed = 0x9747b28c
  const m = 0x5bd1e995
  const r = 24
  let h = (seed ^ length) | 0
  const length4 = length >> 2
  for (let i = 0; i < length4; i++) {
    const i4 = start + (i << 2)
    let k =
      ((data[i4] as number) & 0xff) |
      (((data[i4 + 1] as number) & 0xff) << 8) |
      (((data[i4 + 2] as number) & 0xff) << 16) |
      (((data[i4 + 3] as number) & 0xff) << 24)
    k = Math.imul(k, m)
    k ^= k >>> r
    k = Math.imul(k, m)
    h = Math.imul(h, m)
    h ^= k
  }
  const tail = start + (length4 << 2)
  const rest = length & 3
  if (rest === 3) h ^= ((data[tail + 2] as number) & 0xff) << 16
  if (rest >= 2) h ^= ((data[tail + 1] as number) & 0xff) << 8
  if (rest >= 1) {
    h ^= (data[tail] as number) & 0xff
    h = Math.imul(h, m)
  }
  h ^= h >>> 13
  h = Math.imul(h, m)
  h ^= h >>> 15
  return h | 0
}

export function partitionForKey(key: Buffer, partitions: number): number {
  return (murmur2(key) & 0x7fffffff) % partitions
}

/** partitionForKey for a key kept at bytes[start, end), without a view of it. */
export function partitionForKeyAt(bytes: Buffer, start: number, end: number, partitions: number): number {
  return (murmur2(bytes, start, end) & 0x7fffffff) % partitions
}
