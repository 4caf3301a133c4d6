'use strict';
// No thread to spawn never aborts the host (issue 18.2). A child Node process runs as an
// unprivileged uid under a real RLIMIT_NPROC (which counts every thread of that uid, and does not
// apply to root), set on it by `prlimit --pid` (as that uid) once Node's own threads are up: first with no room
// for one more thread at subscribe (ERR_WATCH, thrown), then with room to subscribe and none left
// when its config dir is removed and recreated (a warning, and watching again once threads can
// be had). Before the fix both aborted the child (SIGABRT: a failed spawn unwrapped in notify).
//
//   node --test __test__/unit/thread-limit.test.js

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn, execFileSync } = require('node:child_process');

const { sleep, CACHE_FILE } = require('../fixtures/creds-common.js');
const { readableAddon } = require('../helpers/readable-addon.js');

const WAIT_MS = 10_000;
const canRun =
  process.platform === 'linux' && process.getuid?.() === 0 && ['setpriv', 'prlimit'].every((c) => hasCommand(c));

function hasCommand(cmd) {
  try {
    execFileSync('sh', ['-c', `command -v ${cmd}`], { stdio: 'ignore' });
    return true;
  } catch {
    return false;
  }
}

/** The child: answers commands on stdin with JSON lines on stdout. */
const CHILD = `
const fs = require('node:fs');
const m = require(process.argv[2]);
const send = (x) => process.stdout.write(JSON.stringify(x) + '\\n');
const threads = () => fs.readdirSync('/proc/self/task').length;
process.on('warning', (w) => { if (w.code === 'MCP_NEEDS_AUTH_WATCH') send({ warning: w.message }); });
let buf = '';
process.stdin.on('data', (d) => {
  buf += d;
  for (let i = buf.indexOf('\\n'); i >= 0; i = buf.indexOf('\\n')) {
    const { dir } = JSON.parse(buf.slice(0, i));
    buf = buf.slice(i + 1);
    try {
      m.onAuthChanged((e) => send({ event: e.reason, servers: e.servers }), { configDir: dir, credentials: 'file' });
      send({ subscribed: true });
    } catch (e) {
      send({ error: e.code, message: e.message });
    }
  }
});
process.stdin.on('end', () => process.exit(0));
// libuv starts its thread pool on first use: now, while threads can still be had.
fs.promises.readFile(__filename).then(() => send({ ready: true, threads: threads() }));
`;

/** A world-readable temp dir (uid `uid` may enter it), removed at the end of the test. */
function sharedDir(t, uid) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mna-nproc-'));
  fs.chmodSync(dir, 0o755);
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  const config = path.join(dir, 'config');
  fs.mkdirSync(config);
  fs.chownSync(config, uid, uid);
  const script = path.join(dir, 'child.js');
  fs.writeFileSync(script, CHILD, { mode: 0o644 });
  return { config, script };
}

/** The child as `uid`, its output lines, and a way to wait for one. */
function startChild(t, uid, script) {
  const child = spawn('setpriv', asUser(uid, process.execPath, script, readableAddon()), {
    cwd: '/',
    env: { PATH: process.env.PATH, HOME: '/nonexistent' },
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const lines = [];
  let exit = null;
  let stderr = '';
  let buf = '';
  child.stdout.on('data', (d) => {
    buf += d;
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      lines.push(JSON.parse(buf.slice(0, i)));
      buf = buf.slice(i + 1);
    }
  });
  child.stderr.on('data', (d) => {
    stderr += d;
  });
  child.on('exit', (code, signal) => {
    exit = { code, signal };
  });
  t.after(() => child.kill('SIGKILL'));
  const next = async (pred, what) => {
    const end = Date.now() + WAIT_MS;
    for (;;) {
      const hit = lines.find(pred);
      if (hit) return hit;
      assert.equal(exit, null, `the child died waiting for ${what}: ${JSON.stringify(exit)} ${stderr}`);
      assert.ok(Date.now() < end, `timed out waiting for ${what}: ${JSON.stringify(lines)} ${stderr}`);
      await sleep(10);
    }
  };
  const send = (x) => child.stdin.write(`${JSON.stringify(x)}\n`);
  const end = async () => {
    child.stdin.end();
    const until = Date.now() + WAIT_MS;
    while (exit === null && Date.now() < until) await sleep(10);
    return exit;
  };
  return { child, lines, next, send, end, stderr: () => stderr };
}

/**
 * Sets the child's soft RLIMIT_NPROC to `n` (or back to its hard limit: `'unlimited'`). As the
 * child's own uid: root may not change another uid's limits here (no CAP_SYS_RESOURCE).
 */
function limitThreads(uid, pid, n) {
  const soft = n === 'unlimited' ? hardLimit(pid) : n;
  execFileSync('setpriv', asUser(uid, 'prlimit', '--pid', String(pid), `--nproc=${soft}:`));
}

function hardLimit(pid) {
  const line = fs
    .readFileSync(`/proc/${pid}/limits`, 'utf8')
    .split('\n')
    .find((l) => l.startsWith('Max processes'));
  return line.trim().split(/\s+/)[3];
}

const asUser = (uid, ...argv) => ['--reuid', String(uid), '--regid', String(uid), '--clear-groups', ...argv];

describe('no thread to spawn', { skip: !canRun && 'needs Linux, root, setpriv and prlimit' }, () => {
  it('onAuthChanged throws ERR_WATCH whichever thread cannot start, and the host lives on', async (t) => {
    const uid = 4242;
    const { config, script } = sharedDir(t, uid);
    // Room for 0, 1, 2, ... more threads: each of the threads a subscription starts (the
    // auto-invalidator's, notify's, the watcher's) is in turn the one that cannot be had.
    const answers = [];
    for (let room = 0; room <= 4; room++) {
      const c = startChild(t, uid, script);
      const { threads } = await c.next((l) => l.ready, 'the child to start');
      // Every thread of this uid is the child's (one child at a time).
      limitThreads(uid, c.child.pid, threads + room);
      c.send({ dir: config });
      const answer = await c.next((l) => l.subscribed || l.error, `the subscription (room for ${room})`);
      assert.ok(answer.subscribed || answer.error === 'ERR_WATCH', `room for ${room}: ${JSON.stringify(answer)}`);
      if (answer.error) assert.match(answer.message, /thread/);
      assert.deepEqual(await c.end(), { code: 0, signal: null }, `room for ${room}: ${c.stderr()}`);
      assert.doesNotMatch(c.stderr(), /panicked/, `room for ${room}: a panic, even contained`);
      answers.push(answer.subscribed ? 'subscribed' : answer.error);
    }
    assert.equal(answers[0], 'ERR_WATCH', 'no room at all');
    assert.equal(answers.at(-1), 'subscribed', `room enough in the end: ${answers}`);
  });

  it('a watcher re-armed with no thread to spawn warns, and watches again once it can', async (t) => {
    const uid = 4243;
    const { config, script } = sharedDir(t, uid);
    const c = startChild(t, uid, script);
    const { threads } = await c.next((l) => l.ready, 'the child to start');
    c.send({ dir: config });
    const answer = await c.next((l) => l.subscribed || l.error, 'the subscription');
    assert.equal(answer.subscribed, true, JSON.stringify(answer));
    // The watcher's threads run; no room for a new one (re-arming needs notify's).
    limitThreads(uid, c.child.pid, threads);
    fs.rmSync(config, { recursive: true });
    const warning = await c.next((l) => l.warning, 'the watch warning');
    assert.ok(warning.warning.includes(config), warning.warning);
    fs.mkdirSync(config);
    fs.chownSync(config, uid, uid);
    await sleep(1200); // a few retries while still limited
    limitThreads(uid, c.child.pid, 'unlimited');
    fs.writeFileSync(path.join(config, CACHE_FILE), JSON.stringify({ x: { timestamp: Date.now() } }));
    const event = await c.next((l) => l.event, 'the cache change after the outage');
    assert.deepEqual(event, { event: 'cache-changed', servers: ['x'] });
    assert.equal(c.lines.filter((l) => l.warning).length, 1, 'one warning for the outage');
    assert.deepEqual(await c.end(), { code: 0, signal: null }, c.stderr());
    assert.doesNotMatch(c.stderr(), /panicked/, 'a panic, even contained');
  });
});
