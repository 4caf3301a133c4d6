'use strict';
// support/stack-install.js, the first-use fetch of the end-to-end stacks, without fetching one:
// an unreachable registry (a closed loopback port, an empty npm cache) must fail with an error
// that says so and leave nothing behind; an install in place is used as it is; a second process
// waits for a first one's install under way instead of fetching the stack twice.
//
//   node --test __test__/unit/stack-install.test.js

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');

const { ensureStackInstalled, stackDir } = require('../../support/stack-install.js');
const { tmp } = require('../helpers/tmp.js');

const delay = (ms) => new Promise((r) => setTimeout(r, ms));
// npm pointed at a port nothing listens on, with a cache of its own that holds nothing.
const offline = (dir) => ({
  npm_config_registry: 'http://127.0.0.1:9/',
  npm_config_cache: path.join(dir, 'npm-cache'),
});

describe('ensureStackInstalled', () => {
  it('an unreachable registry: ERR_STACK_INSTALL saying so, naming the registry; no dir left', async (t) => {
    const dir = tmp(t, 'mna-stack-');
    const root = path.join(dir, 'stacks');
    await assert.rejects(
      ensureStackInstalled('seed', { root, fetchRetries: 0, env: offline(dir), timeoutMs: 300_000 }),
      (err) => {
        assert.equal(err.code, 'ERR_STACK_INSTALL');
        assert.match(err.message, /the registry is unreachable \(http:\/\/127\.0\.0\.1:9\/\)/);
        assert.match(err.message, /"seed" Claude Code stack/);
        return true;
      },
    );
    assert.equal(fs.existsSync(stackDir('seed', root)), false, 'no stack dir');
    assert.deepEqual(fs.readdirSync(path.dirname(stackDir('seed', root))), [], 'no temp dir left');
  });

  it('uses a complete install in place without running npm', async (t) => {
    const dir = tmp(t, 'mna-stack-');
    const root = path.join(dir, 'stacks');
    const target = stackDir('seed', root);
    fs.mkdirSync(target, { recursive: true });
    fs.writeFileSync(path.join(target, '.complete'), '{}\n');
    // The registry is unreachable: any npm run would fail.
    assert.equal(await ensureStackInstalled('seed', { root, fetchRetries: 0, env: offline(dir) }), target);
  });

  it("waits for another live process's install under way, then uses it", async (t) => {
    const dir = tmp(t, 'mna-stack-');
    const root = path.join(dir, 'stacks');
    const target = stackDir('seed', root);
    fs.mkdirSync(path.dirname(target), { recursive: true });
    // The other installer: a live process, and its temp dir named as stack-install.js names it.
    const other = spawn(process.execPath, ['-e', 'setTimeout(() => {}, 120000)'], { stdio: 'ignore' });
    t.after(() => other.kill('SIGKILL'));
    const temp = path.join(path.dirname(target), `.installing-${path.basename(target)}-${other.pid}-abc123`);
    fs.mkdirSync(temp);
    let placed = false;
    const asked = ensureStackInstalled('seed', { root, fetchRetries: 0, env: offline(dir), timeoutMs: 120_000 }).then(
      (d) => ({ d, placedFirst: placed }),
    );
    await delay(1500); // it is waiting (it would have failed on the registry otherwise)
    fs.writeFileSync(path.join(temp, '.complete'), '{}\n');
    placed = true;
    fs.renameSync(temp, target);
    const { d, placedFirst } = await asked;
    assert.equal(d, target);
    assert.equal(placedFirst, true, 'resolved only once the other install was in place');
  });
});
