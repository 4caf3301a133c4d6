'use strict';
// A config dir on a filesystem whose changes this kernel does not hear of (issue 19): a real
// FUSE mount (bindfs) whose backing directory another process writes directly, as another
// machine writes an NFS or SMB share, or a container's host writes its bind mount. Checks
// through the mount must agree with readFileSync through it; the watcher must poll there (a
// credentials save heard, auto-invalidation and sticky removal done, one event per save); and a
// bind mount placed over the config dir or the cache file (in a private mount namespace) must
// give the new answer at once.
//
// Linux and root only (FUSE and mount namespaces). In CI (process.env.CI) a missing bindfs or
// root is a failure, not a skip: .ci/run installs bindfs and fuse3.
//
//   node --test __test__/unit/remote-fs.test.js

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn, spawnSync, execFileSync } = require('node:child_process');

const creds = require('../../support/credentials.js');
const { ADDON_DIR, sleep, secret, urlOf, runWriter, collector } = require('../fixtures/creds-common.js');

const addon = require(ADDON_DIR);
const { until } = require('../helpers/wait.js');

const FILE = 'mcp-needs-auth-cache.json';
/** Generous bounds for what must happen (machines here are loaded); never asserted as timing. */
const WAIT_MS = 15_000;
const POLL_MS = 300;

/** Why this machine cannot run these tests, or null. */
function missing() {
  if (process.platform !== 'linux') return 'Linux only (FUSE, mount namespaces)';
  if (process.getuid() !== 0) return 'needs root (bindfs -o allow_other, mount --bind)';
  for (const tool of ['bindfs', 'fusermount', 'unshare', 'mount']) {
    if (spawnSync('sh', ['-c', `command -v ${tool}`], { timeout: 5000 }).status !== 0)
      return `${tool} is not installed`;
  }
  if (!fs.existsSync('/dev/fuse')) return 'no /dev/fuse';
  return null;
}

const why = missing();
/** In CI a missing prerequisite fails every test here; elsewhere they are skipped. */
const when = why && !process.env.CI ? { skip: why } : {};
function required() {
  if (why) assert.fail(`remote-fs tests cannot run: ${why} (CI must install bindfs and fuse3, as root)`);
}

/**
 * A bindfs mount `mnt` of a fresh backing dir `back`, both in a temp dir; unmounted (bounded),
 * then removed, when the test ends, after everything deferClose'd.
 */
function fuseDirs(t) {
  required();
  const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mna-rfs-'));
  const back = path.join(root, 'back');
  const mnt = path.join(root, 'mnt');
  fs.mkdirSync(back);
  fs.mkdirSync(mnt);
  t.after(async () => {
    for (const fn of t.closers || []) {
      try {
        await fn();
      } catch {}
    }
    const unmounted =
      spawnSync('fusermount', ['-u', mnt], { timeout: 10_000 }).status === 0 ||
      spawnSync('umount', ['-l', mnt], { timeout: 10_000 }).status === 0;
    if (unmounted) fs.rmSync(root, { recursive: true, force: true });
  });
  execFileSync('bindfs', [back, mnt], { timeout: 10_000 });
  return { back, mnt };
}

/** Registers `fn` to run before the mount is taken away. */
function beforeUnmount(t, fn) {
  t.closers = t.closers || [];
  t.closers.push(fn);
}

/**
 * Another process that writes files on request, as a remote machine would: one line of JSON
 * `{file, data}` on stdin, `ok` on stdout once written in place (Claude Code's writeFile).
 */
function remoteWriter(t) {
  const child = spawn(
    process.execPath,
    [
      '-e',
      `const fs = require('fs'); let buf = '';
       process.stdin.on('data', (d) => {
         buf += d; let i;
         while ((i = buf.indexOf('\\n')) >= 0) {
           const { file, data } = JSON.parse(buf.slice(0, i)); buf = buf.slice(i + 1);
           fs.writeFileSync(file, data); process.stdout.write('ok\\n');
         }
       });
       process.stdin.on('end', () => process.exit(0));`,
    ],
    { stdio: ['pipe', 'pipe', 'inherit'] },
  );
  beforeUnmount(t, () => child.kill('SIGKILL'));
  let acks = 0;
  let waiting = [];
  child.stdout.on('data', (d) => {
    acks += String(d)
      .split('\n')
      .filter((l) => l === 'ok').length;
    waiting = waiting.filter((w) => {
      if (w.n > acks) return true;
      w.resolve();
      return false;
    });
  });
  let sent = 0;
  return {
    write(file, data) {
      sent++;
      const n = sent;
      child.stdin.write(`${JSON.stringify({ file, data })}\n`);
      return new Promise((resolve, reject) => {
        const timer = setTimeout(() => reject(new Error('the writer did not answer')), WAIT_MS);
        waiting.push({
          n,
          resolve: () => {
            clearTimeout(timer);
            resolve();
          },
        });
        if (n <= acks) waiting.pop().resolve();
      });
    },
  };
}

const cacheDoc = (entries) =>
  JSON.stringify(Object.fromEntries(Object.entries(entries).map(([k, ts]) => [k, { timestamp: ts }])));

function readJson(file) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return {};
  }
}

/** A subscription whose events are collected, closed before the mount goes. */
function subscribe(t, options) {
  const c = collector();
  const sub = addon.onAuthChanged((event) => c.push(event), options);
  beforeUnmount(t, () => sub.close());
  return c;
}

/** Waits (bounded, by polling) until `pred()` holds. */
/** `until` with this file's bound and poll interval. */
const waitFor = (pred, what, timeoutMs = WAIT_MS) => until(pred, { what, timeoutMs, stepMs: 20 });

describe('a config dir on FUSE, written behind the mount', when, () => {
  it('diagnose says the watcher polls there', (t) => {
    const { mnt } = fuseDirs(t);
    const d = addon.diagnose('x', { configDir: mnt, credentials: 'file' });
    assert.equal(d.watch.mode, 'poll');
    assert.match(d.watch.filesystem, /^fuse/);
    const local = addon.diagnose('x', { configDir: path.dirname(mnt), credentials: 'file' });
    assert.equal(local.watch.mode, 'notify', `${path.dirname(mnt)} is ${local.watch.filesystem}`);
  });

  it('every check through the mount agrees with readFileSync through it (40 writes)', {
    timeout: 120_000,
  }, async (t) => {
    const { back, mnt } = fuseDirs(t);
    const w = remoteWriter(t);
    const opts = { configDir: mnt };
    const viaMount = path.join(mnt, FILE);
    // `x` is cached after even writes and absent after odd ones; the pad makes sizes differ.
    const truth = () => Object.hasOwn(readJson(viaMount), 'x');
    await w.write(path.join(back, FILE), cacheDoc({}));
    addon.isNeedsAuthCached('x', opts);
    addon.isNeedsAuthCached('x', opts); // a second load: today's memo arms its watch here
    let disagreements = 0;
    const seen = [];
    for (let i = 0; i < 40; i++) {
      const doc = i % 2 === 0 ? { x: Date.now(), [`pad${'y'.repeat(i)}`]: Date.now() } : {};
      await w.write(path.join(back, FILE), cacheDoc(doc));
      // Spread over a few seconds, so that the kernel's attribute cache (1 s) expires during the
      // run and readFileSync sees the new file: a memo that trusts inotify here never does.
      await sleep(i % 8 === 6 ? 1200 : 50);
      // FUSE's attribute cache may still show the old file for a while, to readFileSync too:
      // the check must agree with a read made between its two calls (the view can only move
      // from old to new in between).
      const before = addon.isNeedsAuthCached('x', opts);
      const read = truth();
      const after = addon.isNeedsAuthCached('x', opts);
      if (before !== read && after !== read) disagreements++;
      seen.push([before, read, after]);
    }
    assert.equal(disagreements, 0, `checks vs readFileSync: ${JSON.stringify(seen)}`);
  });

  it('a credentials save behind the mount is heard and its entry removed by polling', async (t) => {
    const { back, mnt } = fuseDirs(t);
    const stamp = Date.now() - 60_000;
    fs.writeFileSync(path.join(back, FILE), cacheDoc({ a: stamp, b: stamp }));
    creds.writeExpiredToken(back, 'a', urlOf('a'), { token: secret('a-old') });
    const c = subscribe(t, { configDir: mnt, credentials: 'file', pollIntervalMs: POLL_MS });
    const savedAt = Date.now();
    await runWriter(back, [
      { fn: 'writeFreshToken', server: 'a', url: urlOf('a'), opts: { style: 'in-place', token: secret('a-new') } },
    ]);
    const got = await c.waitFor((e) => e.reason === 'credentials-changed', WAIT_MS, 'the sign-in');
    const heardAfter = Date.now() - savedAt;
    assert.deepEqual(got.servers, ['a']);
    assert.deepEqual(Object.keys(readJson(path.join(back, FILE))), ['b'], "a's entry removed, b's kept");
    t.diagnostic(`heard ${heardAfter} ms after the save (pollIntervalMs ${POLL_MS}; bound ${2 * POLL_MS} + load)`);
  });

  it('a stale entry written back behind the mount is removed again (sticky removal)', async (t) => {
    const { back, mnt } = fuseDirs(t);
    const w = remoteWriter(t);
    const stamp = Date.now() - 60_000;
    const cacheFile = path.join(back, FILE);
    fs.writeFileSync(cacheFile, cacheDoc({ a: stamp, b: stamp }));
    creds.writeExpiredToken(back, 'a', urlOf('a'), { token: secret('a-old') });
    const c = subscribe(t, { configDir: mnt, credentials: 'file', pollIntervalMs: POLL_MS });
    await runWriter(back, [
      { fn: 'writeFreshToken', server: 'a', url: urlOf('a'), opts: { style: 'rename', token: secret('a-new') } },
    ]);
    await c.waitFor((e) => e.reason === 'credentials-changed', WAIT_MS, 'the sign-in');
    await waitFor(() => !Object.hasOwn(readJson(cacheFile), 'a'), "a's removal");
    // A Claude Code that read the cache before the sign-in writes its copy back.
    await w.write(cacheFile, cacheDoc({ a: stamp, b: stamp, c: Date.now() }));
    await waitFor(() => {
      const doc = readJson(cacheFile);
      return !Object.hasOwn(doc, 'a') && Object.hasOwn(doc, 'c');
    }, 'the write-back undone');
    assert.deepEqual(Object.keys(readJson(cacheFile)).sort(), ['b', 'c']);
  });

  it('no cache event lost or doubled over 100 saves behind the mount', { timeout: 300_000 }, async (t) => {
    const { back, mnt } = fuseDirs(t);
    const w = remoteWriter(t);
    const cacheFile = path.join(back, FILE);
    fs.writeFileSync(cacheFile, '{}');
    const c = subscribe(t, { configDir: mnt, credentials: 'none', pollIntervalMs: 100 });
    const entries = {};
    const SAVES = 100;
    for (let i = 0; i < SAVES; i++) {
      entries[`s${i}`] = Date.now();
      await w.write(cacheFile, cacheDoc(entries));
      await c.waitFor((e) => e.reason === 'cache-changed' && e.servers.includes(`s${i}`), WAIT_MS, `save ${i}`);
    }
    await sleep(1000); // any late or doubled event would have come by now
    const events = c.items.filter((e) => e.reason === 'cache-changed');
    const named = events.flatMap((e) => e.servers);
    assert.deepEqual(
      named,
      Array.from({ length: SAVES }, (_, i) => `s${i}`),
      'each save reported once, in order',
    );
    assert.equal(events.length, SAVES, 'one event per save');
  });
});

describe('a mount placed over the config dir or the cache file', when, () => {
  it('gives the new answer at once (a private mount namespace)', async (t) => {
    required();
    const root = fs.mkdtempSync(path.join(os.tmpdir(), 'mna-rfs-ns-'));
    t.after(() => fs.rmSync(root, { recursive: true, force: true }));
    const dir = path.join(root, 'config');
    const other = path.join(root, 'other');
    const lone = path.join(root, 'lone.json');
    fs.mkdirSync(dir);
    fs.mkdirSync(other);
    const now = Date.now();
    fs.writeFileSync(path.join(dir, FILE), cacheDoc({ mine: now }));
    fs.writeFileSync(path.join(other, FILE), cacheDoc({ theirs: now }));
    fs.writeFileSync(lone, cacheDoc({ lone: now }));
    // The child checks (and subscribes) before and after each mount, in its own namespace: the
    // mounts vanish with it.
    const script = `
      const addon = require(${JSON.stringify(ADDON_DIR)});
      const { execFileSync } = require('child_process');
      const [dir, other, lone, file] = ${JSON.stringify([dir, other, lone, path.join(dir, FILE)])};
      const opts = { configDir: dir };
      const sub = addon.onAuthChanged(() => {}, { configDir: dir, credentials: 'none' });
      const look = () => ['mine', 'theirs', 'lone'].filter((s) => addon.isNeedsAuthCached(s, opts)).join(',');
      const out = {};
      look(); look(); out.before = look();
      execFileSync('mount', ['--bind', other, dir]);
      out.dirMounted = look(); look(); out.dirMountedAgain = look();
      execFileSync('umount', [dir]);
      out.dirUnmounted = look(); look();
      execFileSync('mount', ['--bind', lone, file]);
      out.fileMounted = look();
      execFileSync('umount', [file]);
      out.fileUnmounted = look();
      sub.close();
      process.stdout.write(JSON.stringify(out));`;
    const r = spawnSync('unshare', ['-m', '--propagation', 'private', process.execPath, '-e', script], {
      timeout: 60_000,
      encoding: 'utf8',
    });
    assert.equal(r.status, 0, `child failed (${r.status} ${r.signal}): ${r.stdout} ${r.stderr}`);
    assert.deepEqual(JSON.parse(r.stdout), {
      before: 'mine',
      dirMounted: 'theirs',
      dirMountedAgain: 'theirs',
      dirUnmounted: 'mine',
      fileMounted: 'lone',
      fileUnmounted: 'mine',
    });
  });
});
