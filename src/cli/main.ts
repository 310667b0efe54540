#!/usr/bin/env node
/** The `spillway` command line. Each subcommand lives in its own module beside this one. */
import { readFileSync } from 'node:fs'
import { isSpillwayError } from '../errors.ts'
import { consumeHelp } from './consume-help.ts'
import { deadLettersHelp, runDeadLettersCommand } from './dead-letters.ts'
import { logHelp, runLogCommand } from './log.ts'

const pkg = JSON.parse(readFileSync(new URL('../../package.json', import.meta.url), 'utf8')) as {
  version: string
}

const help = `spillway ${pkg.version}: keeps events flowing into Apache Kafka without losing them.

Usage:
  spillway serve [options]        run the HTTP ingestion gateway (spillway serve --help)
  spillway consume [options]      print a topic's records as they arrive (spillway consume --help)
  spillway sink --config FILE     write topics into PostgreSQL, each row once (spillway sink --help)
  spillway doctor [options]       audit a live cluster for the incidents' anti-patterns (spillway doctor --help)
  spillway log inspect <dir>      summarise a local log directory
  spillway log dump <dir>         print a local log's records as JSON lines
  spillway dead-letters replay    send dead letters back to their topics once the cause is fixed
  spillway --version

${logHelp}
${deadLettersHelp}
${consumeHelp}`

export async function main(argv: readonly string[]): Promise<number> {
  const [command, ...rest] = argv
  switch (command) {
    case undefined:
    case '--help':
    case '-h':
    case 'help':
      process.stdout.write(help)
      return command === undefined ? 2 : 0
    case '--version':
    case 'version':
      process.stdout.write(`${pkg.version}\n`)
      return 0
    case 'log':
      return await runLogCommand(rest, process.stdout, process.stderr)
    case 'dead-letters':
      return await runDeadLettersCommand(rest, process.stdout)
    case 'consume': {
      const { runConsume } = await import('./consume.ts')
      return await runConsume(rest, process.stdout, process.stderr)
    }
    case 'doctor': {
      const { runDoctorCommand } = await import('./doctor.ts')
      return await runDoctorCommand(rest, process.stdout, process.stderr)
    }
    case 'sink': {
      const { runSink } = await import('./sink.ts')
      return await runSink(rest)
    }
    case 'serve': {
      const { runServe } = await import('./serve.ts')
      return await runServe(rest)
    }
    default:
      process.stderr.write(`spillway: unknown command ${JSON.stringify(command)}\n\n${help}`)
      return 2
  }
}

/** Runs a command and turns any error into a one-line message with its code, and exit status 1. */
export async function run(argv: readonly string[]): Promise<number> {
  try {
    return await main(argv)
  } catch (error) {
    const prefix = isSpillwayError(error) ? `${error.code}: ` : ''
    process.stderr.write(`spillway: ${prefix}${error instanceof Error ? error.message : String(error)}\n`)
    return 1
  }
}

if (import.meta.main) {
  process.exitCode = await run(process.argv.slice(2))
}
