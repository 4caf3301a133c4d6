'use strict';
// The one temp-dir helper of the test suites.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

/**
 * A fresh directory `<os.tmpdir()>/<prefix>XXXXXX`, removed (recursively) when `t` ends: `t` is
 * a test context, or anything with `after(fn)` (node:test's `{ after }` for a whole file).
 * `realpath: true` returns its real path (os.tmpdir() may be reached through a symlink), for
 * tests that compare paths the addon resolved.
 */
function tmp(t, prefix = 'mna-', { realpath = false } = {}) {
  const made = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  const dir = realpath ? fs.realpathSync(made) : made;
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

module.exports = { tmp };
