/**
 * Compressed request bodies. SDKs compress their batches (RudderStack's Node SDK always sends gzip), so
 * the gateway decodes `Content-Encoding: gzip`, `deflate` and `br` before parsing. The body limit
 * (`limits.maxBodyBytes`) applies to the *decoded* bytes: decoding stops, and the request gets 413, as
 * soon as the inflated size passes it, so a gzip bomb costs at most the limit. An encoding the gateway
 * does not know gets 415, never a pass-through of bytes it would misread.
 */
import { Transform, type TransformCallback } from 'node:stream'
import zlib from 'node:zlib'
import { SpillwayError } from '../errors.ts'

const DECODERS: Readonly<Record<string, () => Transform>> = {
  gzip: () => zlib.createGunzip(),
  'x-gzip': () => zlib.createGunzip(),
  deflate: () => zlib.createInflate(),
  br: () => zlib.createBrotliDecompress(),
}

export const SUPPORTED_ENCODINGS = ['identity', ...Object.keys(DECODERS)]

/** The decoder for a Content-Encoding header, undefined for none/identity; throws 415 for others. */
export function decoderFor(header: string | undefined): (() => Transform) | undefined {
  const encoding = (header ?? '').trim().toLowerCase()
  if (encoding === '' || encoding === 'identity') return undefined
  const decoder = DECODERS[encoding]
  if (!decoder) {
    throw new SpillwayError(
      'SPW_ERR_UNSUPPORTED_MEDIA_TYPE',
      `content-encoding ${JSON.stringify(header)} is not supported; send ${SUPPORTED_ENCODINGS.join(', ')}`,
      { details: { path: '$' } },
    )
  }
  return decoder
}

/**
 * A stream of the decoded body. It reports the bytes read from the wire as `receivedEncodedLength` (how
 * Fastify checks Content-Length against a decoded body) and fails with SPW_ERR_PAYLOAD_TOO_LARGE once
 * more than `maxBytes` come out.
 */
export function decodeBody(
  encoded: NodeJS.ReadableStream,
  decoder: Transform,
  maxBytes: number,
  encoding: string,
): Transform & { receivedEncodedLength: number } {
  let decoded = 0
  const capped = new Transform({
    transform(chunk: Buffer, _encoding: BufferEncoding, done: TransformCallback) {
      decoded += chunk.length
      if (decoded > maxBytes) {
        done(
          new SpillwayError(
            'SPW_ERR_PAYLOAD_TOO_LARGE',
            `the ${encoding} body inflates past the size limit (limits.maxBodyBytes ${maxBytes})`,
            { details: { maxBytes } },
          ),
        )
        return
      }
      done(null, chunk)
    },
  }) as Transform & { receivedEncodedLength: number }
  capped.receivedEncodedLength = 0
  encoded.on('data', (chunk: Buffer) => {
    capped.receivedEncodedLength += chunk.length
  })
  const fail = (error: Error): void => {
    capped.destroy(
      error instanceof SpillwayError
        ? error
        : new SpillwayError(
            'SPW_ERR_BAD_REQUEST',
            `the ${encoding} body cannot be decoded: ${error.message}`,
            {
              details: { path: '$' },
            },
          ),
    )
  }
  decoder.on('error', fail)
  capped.on('error', () => {
    // stop inflating as soon as the decoded side gives up; the rest of the request is read and dropped,
    // so the client still gets its answer on a healthy connection
    encoded.unpipe(decoder)
    decoder.destroy()
    encoded.resume()
  })
  encoded.pipe(decoder).pipe(capped)
  return capped
}
