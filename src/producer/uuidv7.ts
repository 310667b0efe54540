/**
 * UUIDv7 (RFC 9562): 48-bit Unix ms, version 7, 12-bit counter, variant, 62 random bits. The counter
 * keeps ids from one process strictly increasing within a millisecond, so ids sort by admission time.
 *
 * One id is made per admitted event, so it is written as text straight into a reused 36-byte buffer:
 * no intermediate bytes, no string concatenation, one string allocated per id.
 */
import { randomFillSync } from 'node:crypto'

const pool = Buffer.alloc(4096)
let poolOffset = pool.length
let lastMs = -1
let counter = 0

/** Where `n` fresh random bytes start in `pool`. */
function randomAt(n: number): number {
  if (poolOffset + n > pool.length) {
    randomFillSync(pool)
    poolOffset = 0
  }
  const at = poolOffset
  poolOffset += n
  return at
}

const text = Buffer.from('00000000-0000-7000-8000-000000000000', 'latin1')
const HEX_DIGITS = Buffer.from('0123456789abcdef', 'latin1')
/** Where the text of each of the 16 bytes goes, past the dashes. */
const SLOTS = [0, 2, 4, 6, 9, 11, 14, 16, 19, 21, 24, 26, 28, 30, 32, 34]

function put(slot: number, byte: number): void {
  const at = SLOTS[slot] as number
  text[at] = HEX_DIGITS[byte >> 4] as number
  text[at + 1] = HEX_DIGITS[byte & 15] as number
}

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
    counter = pool.readUInt16BE(randomAt(2)) & 0x3ff // leave headroom above a random start
  }
  // 48 bits of ms: the top 32 by division (bitwise operators work on 32 bits), the low 16 directly
  const high = Math.floor(ms / 0x10000)
  put(0, (high >>> 24) & 0xff)
  put(1, (high >>> 16) & 0xff)
  put(2, (high >>> 8) & 0xff)
  put(3, high & 0xff)
  put(4, (ms >>> 8) & 0xff)
  put(5, ms & 0xff)
  put(6, 0x70 | (counter >> 8))
  put(7, counter & 0xff)
  const random = randomAt(8)
  put(8, ((pool[random] as number) & 0x3f) | 0x80)
  for (let i = 1; i < 8; i++) put(8 + i, pool[random + i] as number)
  return text.toString('latin1', 0, 36)
}
