'use strict';
// A copy of the addon that any uid can load, for tests that run a child as another user.
// The checkout may sit in a directory only its owner can enter (a `mktemp -d` clone, root's
// home), so such a child cannot `require()` it there. The copy holds just what loading needs:
// the generated loader (index.js) and the built .node files beside it. One copy per test
// process, removed when the process exits.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..');
let copy = null;

/** The path of a world-readable copy of the addon, for `require()` in a child of any uid. */
function readableAddon() {
  if (copy) return copy;
  const nodes = fs.readdirSync(ROOT).filter((n) => n.endsWith('.node'));
  if (nodes.length === 0) throw new Error(`no built .node in ${ROOT}: run \`npm run build\` first`);
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mna-readable-addon-'));
  process.on('exit', () => fs.rmSync(dir, { recursive: true, force: true }));
  fs.chmodSync(dir, 0o755);
  for (const name of ['index.js', ...nodes]) {
    fs.copyFileSync(path.join(ROOT, name), path.join(dir, name));
    fs.chmodSync(path.join(dir, name), 0o755);
  }
  copy = dir;
  return copy;
}

module.exports = { readableAddon };
