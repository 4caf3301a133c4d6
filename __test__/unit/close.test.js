'use strict';
// close() never waits for a watcher thread that is blocked (issues 17 and 18.3). Here the thread
// waits for the cache's sidecar lock, which a second real process holds (flock(1)), because a
// sign-in made autoInvalidate owe a removal. close(), a host's natural exit and
// worker.terminate() must all be done while that process still holds the lock; nothing is
// delivered after close(), even once the lock is free and the owed removal lands.
//
//   node --test __test__/unit/close.test.js

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');

const {
  ADDON_DIR,
  CACHE_FILE,
  sleep,
  tmpDir,
  deferClose,
  secret,
  urlOf,
  writeCacheLikeClaude,
  readCacheFile,
  runWriter,
  collector,
} = require('../fixtures/creds-common.js');

const addon = require(ADDON_DIR);
const { until } = require('../helpers/wait.js');

const WAIT_MS = 10_000;
/** How long the other process holds the lock at most: bounds a close() that waits for it. */
const HOLD_S = 20;

/** `until` with this file's bound and poll interval. */
const waitUntil = (pred, what, timeoutMs = WAIT_MS) => until(pred, { what, timeoutMs });

/**
 * A second process takes `<cache>.lock` (flock(1), as this library's writers lock it) and holds
 * it for HOLD_S seconds at most, or until `release()` kills it.
 */
async function holdLock(t, dir) {
  const lock = path.join(dir, `${CACHE_FILE}.lock`);
  const child = spawn('flock', [lock, 'sh', '-c', `echo held; exec sleep ${HOLD_S}`], {
    stdio: ['ignore', 'pipe', 'inherit'],
    detached: true, // its own group: flock and its sleep go together
  });
  let gone = false;
  child.on('exit', () => {
    gone = true;
  });
  const release = () => {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {}
  };
  deferClose(t, release);
  await new Promise((resolve, reject) => {
    child.stdout.once('data', resolve);
    child.once('error', reject);
  });
  assert.ok(isHeld(lock), 'the other process holds the lock');
  return { lock, release, gone: () => gone };
}

/** Whether some process holds `lock`: a third process's non-blocking flock says so. */
function isHeld(lock) {
  const r = spawnSync('flock', ['-n', lock, 'true'], { timeout: 10_000 });
  assert.ok(r.status === 0 || r.status === 1, `flock -n: ${r.status} ${r.signal} ${r.error}`);
  return r.status === 1;
}

/**
 * Whether process `pid` waits for `lock`, which another process holds: it has the lock file open.
 * The library polls the lock (a bounded wait), so a wait shows as an open file, not as a blocked
 * flock in /proc/locks; nothing of the library keeps the lock file open otherwise.
 */
function waitsForLock(pid, lock) {
  const dir = `/proc/${pid}/fd`;
  let fds = [];
  try {
    fds = fs.readdirSync(dir);
  } catch {
    return false; // the process is gone
  }
  return fds.some((fd) => {
    try {
      return fs.readlinkSync(path.join(dir, fd)) === lock;
    } catch {
      return false; // closed meanwhile
    }
  });
}

/** A sign-in of `server` saved by another process, as Claude Code saves it. */
async function signIn(dir, server) {
  await runWriter(dir, [{ fn: 'writeFreshToken', server, url: urlOf(server), opts: { token: secret(server) } }]);
}

const subscribeCode = (dir) => `
  m.onAuthChanged(() => {}, { configDir: ${JSON.stringify(dir)}, credentials: 'file', autoInvalidate: true });`;

describe('close() while the watcher waits for another process', { skip: process.platform !== 'linux' }, () => {
  it('close() returns while another process holds the cache lock; nothing is delivered after it', async (t) => {
    const dir = tmpDir(t, 'mna-close-');
    writeCacheLikeClaude(dir, { gh: Date.now() - 60_000 });
    const c = collector();
    const sub = addon.onAuthChanged((e) => c.push(e), { configDir: dir, credentials: 'file', autoInvalidate: true });
    deferClose(t, () => sub.close());
    const holder = await holdLock(t, dir);
    await signIn(dir, 'gh');
    // The sign-in owes a removal of gh's entry: the watcher now waits for the lock.
    await waitUntil(() => waitsForLock(process.pid, holder.lock), 'the watcher to wait for the lock');
    sub.close();
    const heldAfterClose = isHeld(holder.lock) && !holder.gone();
    assert.ok(heldAfterClose, 'close() returned only after the other process let go of the lock');
    holder.release();
    // The removal under way lands once the lock is free, and is not announced.
    await waitUntil(() => !('gh' in readCacheFile(dir)), 'the owed removal');
    await waitUntil(() => !waitsForLock(process.pid, holder.lock), 'no thread of ours waiting any more');
    await sleep(300);
    assert.deepEqual(c.items, [], 'an event was delivered after close()');
  });

  it("a host's natural exit is not held up by a watcher waiting for the lock", async (t) => {
    const dir = tmpDir(t, 'mna-close-');
    writeCacheLikeClaude(dir, { gh: Date.now() - 60_000 });
    const host = spawn(
      process.execPath,
      [
        '-e',
        `const m = require(${JSON.stringify(ADDON_DIR)});${subscribeCode(dir)}
        const alive = setInterval(() => {}, 1000);
        process.stdin.on('end', () => clearInterval(alive)); process.stdin.resume();
        process.stdout.write('subscribed\\n');`,
      ],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    deferClose(t, () => host.kill('SIGKILL'));
    const exited = new Promise((resolve) => host.on('exit', (code, signal) => resolve({ code, signal })));
    await new Promise((resolve) => host.stdout.once('data', resolve));
    const holder = await holdLock(t, dir);
    await signIn(dir, 'gh');
    await waitUntil(() => waitsForLock(host.pid, holder.lock), "the host's watcher to wait for the lock");
    host.stdin.end(); // nothing keeps its event loop alive now: it exits by itself
    assert.deepEqual(await exited, { code: 0, signal: null });
    assert.ok(isHeld(holder.lock) && !holder.gone(), 'the host exited only after the other process let go of the lock');
  });

  it('worker.terminate() is not held up by a watcher waiting for the lock', async (t) => {
    const dir = tmpDir(t, 'mna-close-');
    writeCacheLikeClaude(dir, { gh: Date.now() - 60_000 });
    const { Worker } = require('node:worker_threads');
    const w = new Worker(
      `const { parentPort } = require('node:worker_threads');
      const m = require(${JSON.stringify(ADDON_DIR)});${subscribeCode(dir)}
      setInterval(() => {}, 1000);
      parentPort.postMessage('subscribed');`,
      { eval: true },
    );
    deferClose(t, () => w.terminate());
    await new Promise((resolve) => w.once('message', resolve));
    const holder = await holdLock(t, dir);
    await signIn(dir, 'gh');
    await waitUntil(() => waitsForLock(process.pid, holder.lock), "the worker's watcher to wait for the lock");
    await w.terminate();
    assert.ok(isHeld(holder.lock) && !holder.gone(), 'terminate() resolved only after the other process let go');
    // The removal under way is finished by its thread once the lock is free: let it land before
    // the directory is removed (it writes a temp file there).
    holder.release();
    await waitUntil(() => !('gh' in readCacheFile(dir)), 'the owed removal');
    await waitUntil(() => !waitsForLock(process.pid, holder.lock), 'no thread of ours waiting any more');
  });
});
