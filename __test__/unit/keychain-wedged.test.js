'use strict';
// A keychain that never answers cannot block the host: every keychain read gives up after the
// addon's KEYCHAIN_TIMEOUT (5 s) with ERR_CREDENTIALS_READ naming the item, and a watcher warns
// and keeps going. The Secret Service here is real D-Bus: a private session bus
// (dbus-run-session) on which a small peer (fixtures/secret-service-wedged.py, python3-dbus)
// owns org.freedesktop.secrets and answers everything up to an unlock prompt that it never
// completes, as a locked keyring does on a machine where nobody sees its prompt.
//
// Skipped locally when dbus-run-session or python3-dbus is missing; under CI it always runs.
//
//   node --test __test__/unit/keychain-wedged.test.js

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');

const ADDON = path.resolve(__dirname, '..', '..');
const PEER = path.join(__dirname, '..', 'fixtures', 'secret-service-wedged.py');
// Debian's python3 (the one python3-dbus is for), not whatever python3 comes first on PATH.
const PYTHON = fs.existsSync('/usr/bin/python3') ? '/usr/bin/python3' : 'python3';
// Far beyond the addon's bound, so that only a read without one hits it.
const CHILD_TIMEOUT_MS = 120000;
// The session kills itself a little later, should this test's process be gone by then.
const WATCHDOG_S = CHILD_TIMEOUT_MS / 1000 + 30;

function skipReason() {
  if (process.platform !== 'linux') return 'Secret Service tests run on Linux only';
  if (process.env.CI) return false;
  const dbus = spawnSync('dbus-run-session', ['--version'], { encoding: 'utf8' });
  if (dbus.error) return 'dbus-run-session is missing (Debian: apt-get install dbus)';
  const py = spawnSync(PYTHON, ['-c', 'import dbus.mainloop.glib, gi.repository.GLib'], { encoding: 'utf8' });
  if (py.status !== 0) return 'python3-dbus or python3-gi is missing (Debian: apt-get install python3-dbus python3-gi)';
  return false;
}

// Runs inside the private bus: starts the peer, waits for it to own the name, then calls the
// addon and prints one JSON line of outcomes.
const CHILD = `
const { spawn } = require('node:child_process');
const readline = require('node:readline');
const fs = require('node:fs');
const [addonPath, peerPath, python, configDir] = process.argv.slice(1);
const threads = () => fs.readdirSync('/proc/self/task').filter((t) => {
  try { return fs.readFileSync('/proc/self/task/' + t + '/comm', 'utf8').trim() === 'mna-keychain'; } catch { return false; }
}).length;
// The peer is also the watchdog: it kills this whole session (process group) past the bound.
const peer = spawn(python, [peerPath, String(${WATCHDOG_S})], { stdio: ['pipe', 'pipe', 'inherit'] });
const lines = readline.createInterface({ input: peer.stdout });
const seen = [];
lines.on('line', async (line) => {
  seen.push(line);
  if (line !== 'ready') return;
  const out = { calls: [], peer: seen };
  const addon = require(addonPath);
  const opts = { configDir, credentials: 'keychain' };
  for (let i = 0; i < 3; i++) {
    try {
      addon.purgeStale(opts);
      out.calls.push({ ok: true });
    } catch (e) {
      out.calls.push({ code: e.code, message: e.message });
    }
  }
  out.parkedThreads = threads();
  // A watcher of the same store: a warning, not a throw, and it stays subscribed.
  const warned = new Promise((resolve) => process.on('warning', (w) => resolve({ code: w.code, message: w.message })));
  try {
    const sub = addon.onAuthChanged(() => {}, { ...opts, pollIntervalMs: 200 });
    out.warning = await Promise.race([warned, new Promise((r) => setTimeout(() => r(null), 60000))]);
    sub.close();
    out.closed = true;
  } catch (e) {
    out.subscribeError = { code: e.code, message: e.message };
  }
  console.log(JSON.stringify(out));
  peer.stdin.end();
  process.exit(0);
});
`;

describe('a keychain that never answers', { skip: skipReason() }, () => {
  it('purgeStale throws ERR_CREDENTIALS_READ naming the item; a watcher warns', async (t) => {
    const home = fs.mkdtempSync(path.join(os.tmpdir(), 'mna-wedged-'));
    t.after(() => fs.rmSync(home, { recursive: true, force: true }));
    const configDir = path.join(home, '.claude');
    fs.mkdirSync(configDir);
    const runtime = path.join(home, 'run');
    fs.mkdirSync(runtime, { mode: 0o700 });
    const env = { ...process.env, HOME: home, XDG_RUNTIME_DIR: runtime, XDG_DATA_HOME: path.join(home, 'data') };
    delete env.DBUS_SESSION_BUS_ADDRESS;
    const child = spawn('dbus-run-session', ['--', process.execPath, '-e', CHILD, ADDON, PEER, PYTHON, configDir], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const killer = setTimeout(() => process.kill(-child.pid, 'SIGKILL'), CHILD_TIMEOUT_MS);
    t.after(() => {
      clearTimeout(killer);
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {}
    });
    const [code, signal] = await new Promise((resolve) => child.on('close', (c, s) => resolve([c, s])));
    clearTimeout(killer);
    assert.equal(signal, null, `the child was killed: the keychain read had no bound\n${stderr}`);
    assert.equal(code, 0, stderr);
    const line = stdout.trim().split('\n').pop();
    const out = JSON.parse(line);
    assert.ok(out.peer.includes('prompted'), 'the client reached the prompt that is never answered');
    for (const [i, call] of out.calls.entries()) {
      assert.equal(call.code, 'ERR_CREDENTIALS_READ', `call ${i}: ${JSON.stringify(call)}`);
      assert.match(call.message, /keychain item "Claude Code-credentials(-[0-9a-f]{8})?"/, `call ${i} names the item`);
    }
    assert.equal(out.parkedThreads, 1, 'one helper thread parked for the item, however many calls');
    assert.equal(out.subscribeError, undefined, `onAuthChanged threw: ${JSON.stringify(out.subscribeError)}`);
    // Watcher warnings carry the package's warning code, and the error's code in the message.
    assert.equal(out.warning?.code, 'MCP_NEEDS_AUTH_WATCH', `the watcher's warning: ${JSON.stringify(out.warning)}`);
    assert.match(out.warning.message, /keychain item .*\(ERR_CREDENTIALS_READ\)$/);
    assert.equal(out.closed, true);
  });
});
