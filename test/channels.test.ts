/** docs/operations.md lists exactly the diagnostics channels of src/channels.ts, and src uses no other. */
import assert from 'node:assert/strict'
import { readdirSync, readFileSync } from 'node:fs'
import { join } from 'node:path'
import { test } from 'node:test'
import { fileURLToPath } from 'node:url'
import { channelTable } from '../src/channels.ts'

const root = fileURLToPath(new URL('..', import.meta.url))

function sources(dir: string): string[] {
  return readdirSync(dir, { withFileTypes: true }).flatMap((e) =>
    e.isDirectory() ? sources(join(dir, e.name)) : e.name.endsWith('.ts') ? [join(dir, e.name)] : [],
  )
}

test('docs/operations.md and src/channels.ts list the same channels, publishers and messages', () => {
  const doc = readFileSync(join(root, 'docs/operations.md'), 'utf8')
  const rows = [...doc.matchAll(/^\| `(spillway:[a-z:-]+)`\s*\| ([^|]+?)\s*\| (.+?)\s*\|$/gm)].map((m) => [
    m[1],
    m[2],
    (m[3] as string).replaceAll('\\|', '|').replaceAll('`', ''),
  ])
  const table = Object.entries(channelTable).map(([name, c]) => [name, c.publisher, c.message])
  assert.deepEqual(rows.sort(), table.sort())
})

test('every channel name in src/ is in the table, and no component makes a channel of its own', () => {
  const names = new Set(Object.keys(channelTable))
  for (const file of sources(join(root, 'src'))) {
    const text = readFileSync(file, 'utf8')
    if (!file.endsWith('channels.ts')) {
      assert.doesNotMatch(
        text,
        /dc\.channel\(|diagnostics_channel'/,
        `${file} takes its channels from channels.ts`,
      )
    }
    for (const m of text.matchAll(/'(spillway:[a-z-]+:[a-z-]+)'/g)) {
      assert.ok(names.has(m[1] as string), `${file} uses ${m[1]}, which the table lacks`)
    }
  }
})
