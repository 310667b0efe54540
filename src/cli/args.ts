/** A small argv parser: `--key value`, `--key=value`, `--flag`, and positionals. Unknown flags are errors. */
import { SpillwayError } from '../errors.ts'

export interface ParsedArgs {
  readonly positionals: string[]
  readonly flags: Map<string, string | true>
}

export function parseArgs(
  argv: readonly string[],
  spec: { flags: readonly string[]; values: readonly string[] },
): ParsedArgs {
  const positionals: string[] = []
  const flags = new Map<string, string | true>()
  for (let i = 0; i < argv.length; i++) {
    const arg = argv[i] as string
    if (!arg.startsWith('--')) {
      positionals.push(arg)
      continue
    }
    const [rawName, inline] = arg.slice(2).split(/=(.*)/s, 2) as [string, string | undefined]
    if (spec.flags.includes(rawName)) {
      flags.set(rawName, true)
    } else if (spec.values.includes(rawName)) {
      const value = inline ?? argv[++i]
      if (value === undefined) {
        throw new SpillwayError('SPW_ERR_INVALID_OPTION', `--${rawName} needs a value`, {
          details: { key: rawName },
        })
      }
      flags.set(rawName, value)
    } else {
      const known = [...spec.flags, ...spec.values].map((f) => `--${f}`).join(', ')
      throw new SpillwayError(
        'SPW_ERR_INVALID_OPTION',
        `unknown flag --${rawName}; known: ${known || '(none)'}`,
        {
          details: { key: rawName },
        },
      )
    }
  }
  return { positionals, flags }
}
