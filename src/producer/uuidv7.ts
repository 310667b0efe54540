/**
 * UUIDv7 (RFC 9562): 48-bit Unix ms, version 7, 12-bit counter, variant, 62 random bits. The counter
 * keeps ids from one process strictly increasing within a millisecond, so ids sort by admission time.
 */
import { randomFillSync } from 'node:crypto'

const pool = Buffer.alloc(4096)
let poolOffset = pool.length
let lastMs = -1
let counter = 0

function random(n: number): Buffer {
  if (poolOffset + n > pool.length) {
    randomFillSync(pool)
    poolOffset = 0
  }
  const out = pool.subarray(poolOffset, poolOffset + n)
  poolOffset += n
  return out
}

/** The id's bytes are assembled here, then turned into its text; nothing keeps them. */
const scratch = Buffer.alloc(16)

const hex: string[] = Array.from({ length: 256 }, (_, i) => i.toString(16).padStart(2, '0'))

export function uuidv7(nowMs: number = Date.now()): string {
  let ms = nowMs
  if (ms <= lastMs) {
    ms = lastMs
    counter++
    if (counter > 0xfff) {
      // counter exhausted within one ms: borrow the next ms rather than repeat an id
      lastMs++
      ms = lastMs
      counter = 0
    }
  } else {
    lastMs = ms
    counter = random(2).readUInt16BE(0) & 0x3ff // leave headroom above a random start
  }
  const b = scratch
  b.writeUIntBE(ms, 0, 6)
  b[6] = 0x70 | (counter >> 8)
  b[7] = counter & 0xff
  random(8).copy(b, 8)
  b[8] = ((b[8] as number) & 0x3f) | 0x80
  let s = ''
  for (let i = 0; i < 16; i++) {
    s += hex[b[i] as number]
    if (i === 3 || i === 5 || i === 7 || i === 9) s += '-'
  }
  return s
}
