/** Fails early, with a fix, when npm scripts would run on a Node.js older than spillway supports. */
const [major = 0, minor = 0] = process.versions.node.split('.').map(Number)
const ok = major > 22 || (major === 22 && minor >= 22)
if (!ok) {
  process.stderr.write(
    `spillway needs Node.js >= 22.22 (24 LTS recommended); this is ${process.version}.\n` +
      'Run `npm install` in the repository: it installs Node 24 as a devDependency that npm scripts use.\n',
  )
  process.exit(1)
}
