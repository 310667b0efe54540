/**
 * Runs benchmarks by name: `npm run bench -- log`, `npm run bench -- producer`, or all of them.
 * Benchmarks print tables with ratios against a peer measured in the same run; BENCHMARKS.md records them.
 */
import { spawnSync } from 'node:child_process'
import { fileURLToPath } from 'node:url'

const suites: Record<string, string> = {
  log: 'log-append.ts',
  producer: 'producer.ts',
  gateway: 'gateway.ts',
  'record-batch': 'record-batch.ts',
  consumer: 'consumer.ts',
  sink: 'sink.ts',
  retry: 'retry.ts',
}
const wanted = process.argv.slice(2)
const names = wanted.length > 0 ? wanted : Object.keys(suites)
for (const name of names) {
  const file = suites[name]
  if (!file) {
    process.stderr.write(`unknown benchmark ${name}; known: ${Object.keys(suites).join(', ')}\n`)
    process.exit(2)
  }
  const result = spawnSync(process.execPath, ['--expose-gc', fileURLToPath(new URL(file, import.meta.url))], {
    stdio: 'inherit',
  })
  if (result.status !== 0) process.exit(result.status ?? 1)
}
