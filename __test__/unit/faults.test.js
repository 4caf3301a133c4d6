'use strict';
// The faults a real machine makes (issue 18, items 1, 5, 8, 10): a FIFO where a file should be,
// a symlink at the lock path, a lock another process holds for long, a write past the read
// limit. Every call that could hang runs in a child process with a bounded timeout, so a hang
// fails its test instead of hanging the run.
//
//   node --test __test__/unit/faults.test.js

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync, spawn, spawnSync } = require('node:child_process');

const ROOT = path.resolve(__dirname, '..', '..');
const addon = require(ROOT);

const FILE = 'mcp-needs-auth-cache.json';
const CREDS = '.credentials.json';
// Generous: a call that returns at all returns in milliseconds; one that blocks never does.
const CHILD_TIMEOUT_MS = 20000;

function tmpDir(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mna-faults-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const mkfifo = (p) => execFileSync('mkfifo', [p]);

/** Runs `body` (an async function body with `addon`, `fs`, `path` in scope; it returns a value)
 * in a child process. Resolves `{ status: 'done', value }`, `{ status: 'threw', code, message }`,
 * or `{ status: 'timeout' }` when the child had to be killed. */
function inChild(body, { env = {}, timeoutMs = CHILD_TIMEOUT_MS } = {}) {
  const script = `
    const addon = require(${JSON.stringify(ROOT)});
    const fs = require('node:fs');
    const path = require('node:path');
    const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
    (async () => { ${body} })().then(
      (value) => process.stdout.write(JSON.stringify({ status: 'done', value: value ?? null })),
      (e) => process.stdout.write(JSON.stringify({ status: 'threw', code: e.code, message: e.message })),
    );`;
  return new Promise((resolve) => {
    const child = spawn(process.execPath, ['-e', script], {
      env: { ...process.env, ...env },
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      err += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      if (signal === 'SIGKILL') return resolve({ status: 'timeout', stderr: err });
      try {
        resolve({ ...JSON.parse(out), exit: code, stderr: err });
      } catch {
        resolve({ status: 'crashed', exit: code, signal, stdout: out, stderr: err });
      }
    });
  });
}

/** `inChild` for each of `calls` (name -> body), all at once. */
async function eachInChild(calls, options) {
  const names = Object.keys(calls);
  const results = await Promise.all(names.map((n) => inChild(calls[n], options)));
  return Object.fromEntries(names.map((n, i) => [n, results[i]]));
}

function assertThrew(r, code, what) {
  assert.notEqual(r.status, 'timeout', `${what}: hung (killed after ${CHILD_TIMEOUT_MS} ms)`);
  assert.equal(r.status, 'threw', `${what}: ${JSON.stringify(r)}`);
  assert.equal(r.code, code, `${what}: ${r.message}`);
}

/** Whether some process holds a lock on `file` (flock(1), non-blocking, as another process). */
function lockedByOthers(file, { shared = false } = {}) {
  const r = spawnSync('flock', ['--nonblock', shared ? '--shared' : '--exclusive', file, 'true']);
  if (r.status !== 0 && r.status !== 1) throw new Error(`flock: ${r.stderr}`);
  return r.status === 1;
}

/** A second process holding a lock on `file` until the test ends (`flock -o`: only flock itself
 * holds it, and it goes with its process group). */
async function holdLock(t, file, { shared = false } = {}) {
  const holder = spawn('flock', ['--close', shared ? '--shared' : '--exclusive', file, 'sleep', '120'], {
    stdio: 'ignore',
    detached: true,
  });
  t.after(() => {
    try {
      process.kill(-holder.pid, 'SIGKILL');
    } catch {}
  });
  for (let i = 0; i < 200 && !lockedByOthers(file, { shared: !shared }); i++) {
    await new Promise((r) => setTimeout(r, 50));
  }
  assert.ok(lockedByOthers(file, { shared: !shared }), 'the holder has the lock');
  return holder;
}

describe('a FIFO where a file should be never hangs', () => {
  it('at the cache path: every call throws ERR_CACHE_READ naming it', async (t) => {
    const dir = tmpDir(t);
    const file = path.join(dir, FILE);
    mkfifo(file);
    const o = JSON.stringify({ configDir: dir });
    const results = await eachInChild({
      listNeedsAuth: `return addon.listNeedsAuth(${o})`,
      isNeedsAuthCached: `return addon.isNeedsAuthCached('a', ${o})`,
      markNeedsAuth: `return addon.markNeedsAuth('a', ${o})`,
      'invalidateNeedsAuth()': `return addon.invalidateNeedsAuth(undefined, ${o})`,
      "invalidateNeedsAuth('a')": `return addon.invalidateNeedsAuth('a', ${o})`,
      purgeStale: `return addon.purgeStale({ ...${o}, credentials: 'none' })`,
      diagnose: `return addon.diagnose('a', { ...${o}, credentials: 'none' })`,
    });
    for (const [call, r] of Object.entries(results)) {
      assertThrew(r, 'ERR_CACHE_READ', call);
      assert.ok(r.message.includes(file), `${call}: ${r.message}`);
      assert.match(r.message, /is not a regular file \(a FIFO\)/, call);
    }
    assert.ok(fs.lstatSync(file).isFIFO(), 'left as it is');
    assert.ok(!lockedByOthers(`${file}.lock`), 'no writer kept the lock');
  });

  /** A config dir with a FIFO at .credentials.json and an expired entry. */
  function fifoCredentials(t) {
    const dir = tmpDir(t);
    const creds = path.join(dir, CREDS);
    mkfifo(creds);
    fs.writeFileSync(path.join(dir, FILE), JSON.stringify({ a: { timestamp: Date.now() - 3600000 } }));
    const o = JSON.stringify({ configDir: dir, credentials: 'file' });
    return { dir, creds, o, env: { HOME: dir, CLAUDE_CONFIG_DIR: dir } };
  }

  it('at .credentials.json: purgeStale and diagnose throw ERR_CREDENTIALS_READ naming it', async (t) => {
    const { creds, o, env } = fifoCredentials(t);
    const results = await eachInChild(
      {
        purgeStale: `return addon.purgeStale(${o})`,
        diagnose: `return addon.diagnose('a', ${o})`,
      },
      { env },
    );
    for (const [call, r] of Object.entries(results)) {
      assertThrew(r, 'ERR_CREDENTIALS_READ', call);
      assert.ok(r.message.includes(creds), `${call}: ${r.message}`);
      assert.match(r.message, /is not a regular file \(a FIFO\)/, call);
    }
    assert.ok(fs.lstatSync(creds).isFIFO(), 'left as it is');
  });

  it('at .credentials.json: a watcher warns once, and closes', async (t) => {
    const { dir, creds, o, env } = fifoCredentials(t);
    // A watcher: one warning, however often the credentials file changes (another FIFO
    // renamed over it, twice), and close() and exit return.
    const watched = await inChild(
      `
      const warnings = [];
      process.on('warning', (w) => warnings.push(w.message));
      const sub = addon.onAuthChanged(() => {}, ${o});
      await sleep(300);
      for (const i of [1, 2]) {
        const tmp = path.join(${JSON.stringify(dir)}, 'fifo-' + i);
        require('node:child_process').execFileSync('mkfifo', [tmp]);
        fs.renameSync(tmp, ${JSON.stringify(creds)});
        await sleep(400);
      }
      sub.close();
      await sleep(100);
      return warnings;`,
      { env },
    );
    assert.equal(watched.status, 'done', JSON.stringify(watched));
    const about = watched.value.filter((w) => w.includes(creds));
    assert.equal(about.length, 1, `one warning: ${JSON.stringify(watched.value)}`);
    assert.match(about[0], /is not a regular file \(a FIFO\)/);

    assert.ok(fs.lstatSync(creds).isFIFO(), 'left as it is');
  });

  it('at .credentials.json: `node -r mcp-needs-auth/register` warns, and the host runs and exits', async (t) => {
    const { creds, env } = fifoCredentials(t);
    const registered = await inChild('await sleep(300); return "ran";', {
      env: { ...env, NODE_OPTIONS: `--require ${path.join(ROOT, 'register.js')}` },
    });
    assert.equal(registered.status, 'done', JSON.stringify(registered));
    assert.equal(registered.value, 'ran');
    assert.equal(registered.exit, 0);
    assert.match(registered.stderr, /is not a regular file \(a FIFO\)/);
    assert.ok(fs.lstatSync(creds).isFIFO(), 'left as it is');
  });
});

describe('the lock path is never followed through a symlink', () => {
  it('a dangling symlink there: ERR_CACHE_WRITE naming it, nothing created outside', async (t) => {
    const dir = tmpDir(t);
    const outside = tmpDir(t);
    const lock = path.join(dir, `${FILE}.lock`);
    const target = path.join(outside, 'made-by-the-lock');
    fs.symlinkSync(target, lock);
    const o = JSON.stringify({ configDir: dir });
    const r = await inChild(`return addon.markNeedsAuth('a', ${o})`);
    assertThrew(r, 'ERR_CACHE_WRITE', 'markNeedsAuth');
    assert.ok(r.message.includes(lock), r.message);
    assert.match(r.message, /is a symbolic link/);
    assert.deepEqual(fs.readdirSync(outside), [], 'nothing created outside the config dir');
    assert.deepEqual(fs.readdirSync(dir), [`${FILE}.lock`], 'nothing written');
    assert.ok(fs.lstatSync(lock).isSymbolicLink(), 'the link is left as it is');
  });

  it('a symlink to .credentials.json: every writer refuses it, the credentials file is never locked', async (t) => {
    const dir = tmpDir(t);
    const file = path.join(dir, FILE);
    const creds = path.join(dir, CREDS);
    const credBytes = JSON.stringify({ mcpOAuth: {} });
    fs.writeFileSync(creds, credBytes);
    const cache = JSON.stringify({ a: { timestamp: Date.now() - 3600000 } });
    fs.writeFileSync(file, cache);
    fs.symlinkSync(creds, `${file}.lock`);
    const credStat = fs.statSync(creds);
    // Another process holds a shared lock on the credentials file: a writer that locked it
    // (exclusively) through the link would wait for it.
    await holdLock(t, creds, { shared: true });
    const o = JSON.stringify({ configDir: dir, credentials: 'none' });
    const results = await eachInChild({
      markNeedsAuth: `return addon.markNeedsAuth('b', ${o})`,
      invalidateNeedsAuth: `return addon.invalidateNeedsAuth('a', ${o})`,
      purgeStale: `return addon.purgeStale(${o})`,
    });
    for (const [call, r] of Object.entries(results)) {
      assertThrew(r, 'ERR_CACHE_WRITE', call);
      assert.ok(r.message.includes(`${file}.lock`), `${call}: ${r.message}`);
      assert.match(r.message, /is a symbolic link/, call);
    }
    assert.equal(fs.readFileSync(creds, 'utf8'), credBytes, 'credentials untouched');
    assert.equal(fs.statSync(creds).mtimeMs, credStat.mtimeMs);
    assert.equal(fs.readFileSync(file, 'utf8'), cache, 'cache untouched');
    assert.deepEqual(fs.readdirSync(dir).sort(), [CREDS, FILE, `${FILE}.lock`]);
  });
});

describe('a lock another process holds for long', () => {
  it('writers throw ERR_LOCK_TIMEOUT after lockTimeoutMs; reads and no-op removals do not wait', async (t) => {
    const dir = tmpDir(t);
    const file = path.join(dir, FILE);
    const lock = `${file}.lock`;
    const cache = JSON.stringify({ a: { timestamp: Date.now() }, old: { timestamp: Date.now() - 3600000 } });
    fs.writeFileSync(file, cache);
    fs.writeFileSync(lock, '');
    const holder = await holdLock(t, lock);
    const o = JSON.stringify({ configDir: dir, credentials: 'none', lockTimeoutMs: 200 });
    const results = await eachInChild({
      markNeedsAuth: `return addon.markNeedsAuth('b', ${o})`,
      invalidateNeedsAuth: `return addon.invalidateNeedsAuth('a', ${o})`,
      'invalidateNeedsAuth()': `return addon.invalidateNeedsAuth(undefined, ${o})`,
      purgeStale: `return addon.purgeStale(${o})`,
      listNeedsAuth: `return addon.listNeedsAuth(${o}).map((e) => e.server)`,
      isNeedsAuthCached: `return addon.isNeedsAuthCached('a', ${o})`,
      'invalidateNeedsAuth(absent)': `return addon.invalidateNeedsAuth('absent', ${o})`,
      diagnose: `return addon.diagnose('a', ${o}).skipped`,
    });
    for (const call of ['markNeedsAuth', 'invalidateNeedsAuth', 'invalidateNeedsAuth()', 'purgeStale']) {
      const r = results[call];
      assertThrew(r, 'ERR_LOCK_TIMEOUT', call);
      assert.ok(r.message.includes(lock), `${call}: ${r.message}`);
      assert.match(r.message, /waited 200 ms/, call);
      assert.match(r.message, /lockTimeoutMs/, call);
    }
    const done = (call) => {
      assert.equal(results[call].status, 'done', `${call}: ${JSON.stringify(results[call])}`);
      return results[call].value;
    };
    assert.deepEqual(done('listNeedsAuth'), ['a', 'old']);
    assert.equal(done('isNeedsAuthCached'), true);
    assert.deepEqual(done('invalidateNeedsAuth(absent)'), []);
    assert.equal(done('diagnose'), true);
    // Every call above returned while the holder still held the lock.
    assert.equal(holder.exitCode, null, 'the holder is still running');
    assert.ok(lockedByOthers(lock), 'and still holds the lock');
    assert.equal(fs.readFileSync(file, 'utf8'), cache, 'nothing written');
  });

  it('lockTimeoutMs is validated like every option', () => {
    for (const bad of [-1, Number.NaN, Number.POSITIVE_INFINITY, '10']) {
      assert.throws(
        () => addon.markNeedsAuth('a', { configDir: os.tmpdir(), lockTimeoutMs: bad }),
        (e) => e.code === 'ERR_INVALID_ARGUMENT' && /lockTimeoutMs/.test(e.message),
        String(bad),
      );
    }
  });
});

describe('the library never writes a file it would refuse to read', () => {
  it('a 2 MiB id: ERR_CACHE_TOO_LARGE naming the path and the limit, the file untouched', (t) => {
    const dir = tmpDir(t);
    const file = path.join(dir, FILE);
    addon.markNeedsAuth('a', { configDir: dir });
    const before = fs.readFileSync(file);
    assert.throws(
      () => addon.markNeedsAuth('b', { configDir: dir, id: 'x'.repeat(2 * 1024 * 1024) }),
      (e) => e.code === 'ERR_CACHE_TOO_LARGE' && e.message.includes(file) && e.message.includes('1048576'),
    );
    assert.deepEqual(fs.readFileSync(file), before);
    assert.deepEqual(
      addon.listNeedsAuth({ configDir: dir }).map((e) => e.server),
      ['a'],
    );
  });

  it('260 names of 4 KiB: the writes that fit land, the rest are refused, and clear works', (t) => {
    const dir = tmpDir(t);
    const file = path.join(dir, FILE);
    const written = [];
    for (let i = 0; i < 260; i++) {
      const name = `${String(i).padStart(4, '0')}${'n'.repeat(4092)}`;
      try {
        addon.markNeedsAuth(name, { configDir: dir });
        written.push(name);
      } catch (e) {
        assert.equal(e.code, 'ERR_CACHE_TOO_LARGE', e.message);
      }
    }
    assert.ok(written.length > 200 && written.length < 260, `${written.length} fit`);
    assert.ok(fs.statSync(file).size <= 1024 * 1024);
    assert.equal(addon.listNeedsAuth({ configDir: dir }).length, written.length, 'still readable');
    assert.equal(addon.isNeedsAuthCached(written[0], { configDir: dir }), true);
    const cli = spawnSync(
      process.execPath,
      [path.join(ROOT, 'bin', 'mcp-needs-auth.js'), 'clear', '--config-dir', dir],
      {
        encoding: 'utf8',
        timeout: CHILD_TIMEOUT_MS,
      },
    );
    assert.equal(cli.status, 0, cli.stderr);
    assert.equal(fs.readFileSync(file, 'utf8'), '{}');
  });
});
