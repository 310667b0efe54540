#!/usr/bin/env node
// Runs the built CLI when the package is installed (dist/), or the TypeScript sources in a checkout.
import { existsSync } from 'node:fs'

const built = new URL('../dist/cli/main.js', import.meta.url)
const entry = existsSync(built) ? built : new URL('../src/cli/main.ts', import.meta.url)
const { run } = await import(entry.href)
process.exitCode = await run(process.argv.slice(2))
