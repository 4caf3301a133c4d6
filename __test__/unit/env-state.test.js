'use strict';
// Per-environment state (crates/node/src/env_state.rs): each JS environment (the main thread,
// each worker) has its own options sorter and subscription hub, and a worker's teardown ends its
// own subscriptions only. Workers are made one after another, so a later one may well get the
// address of an earlier one's environment: it must still start afresh.
//
//   node --test __test__/unit/env-state.test.js

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { Worker } = require('node:worker_threads');

const ADDON = path.resolve(__dirname, '..', '..');
const { onAuthChanged, invalidateNeedsAuth, isNeedsAuthCached, markNeedsAuth } = require(ADDON);

function tmp(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mna-env-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(pred, what, ms = 10_000) {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(5);
  }
}

// A worker that subscribes to `dir` (in-process signals only), reports each event it gets, and
// answers `check` messages with isNeedsAuthCached for its own dirs.
const WORKER = `
const { parentPort, workerData } = require('node:worker_threads');
const m = require(workerData.addon);
m.onAuthChanged((e) => parentPort.postMessage({ event: e.servers }), { configDir: workerData.dir, watch: false });
parentPort.on('message', ({ server, dir }) => {
  if (server === 'invalidate') m.invalidateNeedsAuth('from-worker', { configDir: dir });
  else parentPort.postMessage({ cached: m.isNeedsAuthCached(server, { configDir: dir }) });
});
parentPort.postMessage('subscribed');
`;

function startWorker(t, dir) {
  const worker = new Worker(WORKER, { eval: true, workerData: { addon: ADDON, dir } });
  const messages = [];
  worker.on('message', (m) => messages.push(m));
  t.after(() => worker.terminate());
  return { worker, messages };
}

describe('per-environment state', () => {
  it("a worker's teardown closes its subscriptions only; a later worker starts afresh", async (t) => {
    const dir = tmp(t);
    const events = [];
    const main = onAuthChanged((e) => events.push(e.servers), { configDir: dir, watch: false });
    t.after(() => main.close());

    for (let round = 0; round < 3; round++) {
      const w = startWorker(t, dir);
      await waitFor(() => w.messages.includes('subscribed'), `worker ${round} to subscribe`);
      // An invalidation in the main thread reaches the worker's subscription (same dir) and ours.
      invalidateNeedsAuth(`main-${round}`, { configDir: dir });
      await waitFor(() => w.messages.some((m) => m.event?.[0] === `main-${round}`), `worker ${round}'s event`);
      await waitFor(() => events.some((s) => s[0] === `main-${round}`), `main's event, round ${round}`);
      // The worker's own invalidation reaches us too.
      w.worker.postMessage({ server: 'invalidate', dir });
      await waitFor(() => events.filter((s) => s[0] === 'from-worker').length === round + 1, 'the worker invalidation');
      await w.worker.terminate();
    }
    // Every worker is gone: the main thread's subscription still hears every invalidation.
    invalidateNeedsAuth('after', { configDir: dir });
    await waitFor(() => events.some((s) => s[0] === 'after'), "main's event after the workers exited");
    assert.equal(main.closed, false);
  });

  it("each environment's options sorter remembers its own config dir", async (t) => {
    const [a, b] = [tmp(t), tmp(t)];
    markNeedsAuth('only-in-a', { configDir: a });
    const w = startWorker(t, b);
    await waitFor(() => w.messages.includes('subscribed'), 'the worker to subscribe');
    const ask = async (dir) => {
      const before = w.messages.length;
      w.worker.postMessage({ server: 'only-in-a', dir });
      await waitFor(() => w.messages.length > before, 'the worker to answer');
      return w.messages.at(-1).cached;
    };
    for (let i = 0; i < 4; i++) {
      // The main thread's last dir is `a` while the worker's is `b`, and the other way round.
      assert.equal(isNeedsAuthCached('only-in-a', { configDir: i % 2 ? a : b }), i % 2 === 1);
      assert.equal(await ask(i % 2 ? b : a), i % 2 === 0);
      assert.equal(isNeedsAuthCached('only-in-a', { configDir: i % 2 ? a : b }), i % 2 === 1);
    }
  });
});
