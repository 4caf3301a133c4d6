'use strict';
// onAuthChanged, in-process: what invalidateNeedsAuth delivers, when, to whom, and how a
// Subscription ends. Most tests use { watch: false } (in-process signals only); one uses the
// default watcher. Subscriptions hold a weak threadsafe function, so while waiting for an
// event the test keeps itself alive with timers (waitFor / sleep below).
//
//   cd /work/main && node --test __test__/unit/subscription.test.js

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const ADDON = path.resolve(__dirname, '..', '..');
const { onAuthChanged, invalidateNeedsAuth, markNeedsAuth, Subscription } = require(ADDON);
const { tmp } = require('../helpers/tmp.js');

const FILE = 'mcp-needs-auth-cache.json';

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Polls `pred` on a timer (which also keeps the process alive) until true or `ms` passed. */
async function waitFor(pred, what, ms = 3000) {
  const end = Date.now() + ms;
  while (!pred()) {
    if (Date.now() > end) throw new Error(`timed out after ${ms} ms waiting for ${what}`);
    await sleep(5);
  }
}

/** A callback that records its events; close subscriptions made with it at the end of the test. */
/** Collects process warnings until the test ends. */
function captureWarnings(t) {
  const warnings = [];
  const onWarning = (w) => warnings.push(w);
  process.on('warning', onWarning);
  t.after(() => process.off('warning', onWarning));
  return warnings;
}

function subscribe(t, options, onEvent) {
  const events = [];
  const sub = onAuthChanged((e) => {
    events.push(e);
    if (onEvent) onEvent(e);
  }, options);
  t.after(() => sub.close());
  return { sub, events };
}

describe('onAuthChanged: what invalidateNeedsAuth delivers', () => {
  it('one event per call: {reason, servers, source, at, configDir}', async (t) => {
    const dir = tmp(t);
    const opts = { configDir: dir, watch: false };
    markNeedsAuth('a', opts);
    const { sub, events } = subscribe(t, opts);
    assert.ok(sub instanceof Subscription);
    assert.equal(sub.closed, false);

    const before = Date.now();
    assert.deepEqual(invalidateNeedsAuth('a', opts), ['a']);
    assert.deepEqual(invalidateNeedsAuth(['x', 'y', 'x'], opts), []);
    assert.deepEqual(invalidateNeedsAuth(undefined, opts), []);
    assert.deepEqual(invalidateNeedsAuth(null, opts), []);
    const after = Date.now();
    await waitFor(() => events.length >= 4, '4 events');
    await sleep(50);
    assert.equal(events.length, 4, 'exactly one event per call');
    const base = { reason: 'invalidated', source: 'this-process', configDir: dir };
    assert.deepEqual(
      events.map(({ at, ...rest }) => rest),
      [
        { ...base, servers: ['a'] },
        { ...base, servers: ['x', 'y', 'x'] }, // the names asked for, not the names removed
        { ...base, servers: [] },
        { ...base, servers: [] },
      ],
    );
    for (const e of events) {
      assert.equal(typeof e.at, 'number');
      assert.ok(e.at >= before && e.at <= after, `at ${e.at} not in [${before}, ${after}]`);
    }
    assert.deepEqual(Object.keys(events[0]).sort(), ['at', 'configDir', 'reason', 'servers', 'source']);
  });

  it('fires even when nothing was removed (missing file, missing dir)', async (t) => {
    const dir = path.join(tmp(t), 'not-yet');
    const opts = { configDir: dir, watch: false };
    const { events } = subscribe(t, opts);
    assert.deepEqual(invalidateNeedsAuth('ghost', opts), []);
    await waitFor(() => events.length === 1, 'the event');
    assert.deepEqual(events[0].servers, ['ghost']);
    assert.equal(fs.existsSync(dir), false, 'with watch:false subscribing creates nothing');
  });

  it('never synchronously: not inside invalidateNeedsAuth, not inside another callback', async (t) => {
    const dir = tmp(t);
    const opts = { configDir: dir, watch: false };
    let inCallback = false;
    const nested = [];
    const { events } = subscribe(t, opts, (e) => {
      assert.equal(inCallback, false, 'callbacks do not nest');
      inCallback = true;
      try {
        if (e.servers[0] === 'first') {
          invalidateNeedsAuth('second', opts);
          nested.push(events.length); // the 'second' event must not have arrived yet
        }
      } finally {
        inCallback = false;
      }
    });
    invalidateNeedsAuth('first', opts);
    assert.equal(events.length, 0, 'delivered synchronously inside invalidateNeedsAuth');
    await Promise.resolve();
    assert.equal(events.length, 0, 'delivered before the current job finished');
    await waitFor(() => events.length === 2, 'both events');
    assert.deepEqual(
      events.map((e) => e.servers[0]),
      ['first', 'second'],
    );
    assert.deepEqual(nested, [1]);
  });

  it('reaches only subscribers of the same config dir (NFD and NFC spellings are one dir)', async (t) => {
    const base = tmp(t);
    const dirA = path.join(base, 'caf\u00e9');
    const dirB = path.join(base, 'other');
    const a = subscribe(t, { configDir: dirA, watch: false });
    const aNfd = subscribe(t, { configDir: path.join(base, 'cafe\u0301'), watch: false });
    const b = subscribe(t, { configDir: dirB, watch: false });

    invalidateNeedsAuth('for-a', { configDir: path.join(base, 'cafe\u0301') });
    invalidateNeedsAuth('for-b', { configDir: dirB });
    await waitFor(() => a.events.length === 1 && aNfd.events.length === 1 && b.events.length === 1, 'one event each');
    await sleep(50);
    assert.deepEqual(
      a.events.map((e) => [e.servers, e.configDir]),
      [[['for-a'], dirA]],
    );
    assert.deepEqual(
      aNfd.events.map((e) => [e.servers, e.configDir]),
      [[['for-a'], dirA]],
      'configDir is NFC',
    );
    assert.deepEqual(
      b.events.map((e) => [e.servers, e.configDir]),
      [[['for-b'], dirB]],
    );
  });

  it('a listener that throws does not stop the others and becomes a warning', async (t) => {
    const dir = tmp(t);
    const opts = { configDir: dir, watch: false };
    const warnings = captureWarnings(t);
    let thrown = 0;
    const bad = onAuthChanged(() => {
      thrown++;
      throw new Error('listener boom');
    }, opts);
    t.after(() => bad.close());
    const good = subscribe(t, opts);
    const later = subscribe(t, opts);

    invalidateNeedsAuth('s1', opts);
    invalidateNeedsAuth('s2', opts);
    await waitFor(() => good.events.length === 2 && later.events.length === 2, 'the other listeners');
    await waitFor(
      () => warnings.filter((w) => w.code === 'MCP_NEEDS_AUTH_LISTENER_THREW').length === 2,
      'two warnings',
    );
    assert.equal(thrown, 2, 'the throwing listener is still called for later events');
    const w = warnings.find((x) => x.code === 'MCP_NEEDS_AUTH_LISTENER_THREW');
    assert.equal(w.name, 'McpNeedsAuthWarning');
    assert.match(w.message, /listener boom/);
    assert.equal(bad.closed, false, 'a throw does not close the subscription');
  });

  it('the warning for a listener that throws a non-Error names what it threw', async (t) => {
    const dir = tmp(t);
    const opts = { configDir: dir, watch: false };
    const warnings = captureWarnings(t);
    const bad = onAuthChanged(() => {
      throw 'plain string thrown';
    }, opts); // eslint-disable-line no-throw-literal
    t.after(() => bad.close());
    invalidateNeedsAuth('s', opts);
    await waitFor(() => warnings.some((x) => x.code === 'MCP_NEEDS_AUTH_LISTENER_THREW'), 'the warning');
    const w = warnings.find((x) => x.code === 'MCP_NEEDS_AUTH_LISTENER_THREW');
    assert.match(w.message, /plain string thrown/, `the warning hides what was thrown: ${w.message}`);
  });
});

describe('Subscription lifetime', () => {
  it('close() is idempotent, flips closed, and drops an event queued just before', async (t) => {
    const dir = tmp(t);
    const opts = { configDir: dir, watch: false };
    const closing = subscribe(t, opts);
    const witness = subscribe(t, opts);
    invalidateNeedsAuth('queued', opts);
    closing.sub.close(); // synchronously after the call: the event is queued but not delivered
    assert.equal(closing.sub.closed, true);
    closing.sub.close();
    assert.equal(closing.sub.closed, true);
    await waitFor(() => witness.events.length === 1, 'the witness event');
    invalidateNeedsAuth('after', opts);
    await waitFor(() => witness.events.length === 2, 'the second witness event');
    await sleep(100);
    assert.deepEqual(closing.events, [], 'a closed subscription got an event');
  });

  it('close() from inside its own callback stops later deliveries', async (t) => {
    const dir = tmp(t);
    const opts = { configDir: dir, watch: false };
    const got = [];
    const sub = onAuthChanged((e) => {
      got.push(e.servers[0]);
      sub.close();
    }, opts);
    t.after(() => sub.close());
    const witness = subscribe(t, opts);
    invalidateNeedsAuth('one', opts);
    invalidateNeedsAuth('two', opts);
    await waitFor(() => witness.events.length === 2, 'the witness events');
    await sleep(50);
    assert.deepEqual(got, ['one']);
    assert.equal(sub.closed, true);
  });

  it("one callback closes another subscription's queued event and subscribes a new one", async (t) => {
    const dir = tmp(t);
    const opts = { configDir: dir, watch: false };
    let late = null;
    const victim = subscribe(t, opts);
    const first = subscribe(t, opts, (e) => {
      if (e.servers[0] !== 'one') return;
      victim.sub.close();
      late = subscribe(t, opts);
    });
    // `first` was made after `victim`, but the events of one call are queued in subscription
    // order: move `first` ahead by closing and remaking `victim` after it.
    victim.sub.close();
    victim.sub = onAuthChanged((e) => victim.events.push(e), opts);
    t.after(() => victim.sub.close());
    invalidateNeedsAuth('one', opts);
    await waitFor(() => late !== null, 'the first callback');
    invalidateNeedsAuth('two', opts);
    await waitFor(() => late.events.length === 1, 'the event of the subscription made in a callback');
    await sleep(50);
    assert.deepEqual(
      first.events.map((e) => e.servers[0]),
      ['one', 'two'],
    );
    assert.deepEqual(victim.events, [], 'closed by another callback before its queued event ran');
    assert.deepEqual(
      late.events.map((e) => e.servers[0]),
      ['two'],
      'only events after it was made',
    );
  });

  it('[Symbol.dispose] exists and closes', async (t) => {
    const dir = tmp(t);
    const opts = { configDir: dir, watch: false };
    const { sub, events } = subscribe(t, opts);
    assert.equal(typeof Symbol.dispose, 'symbol');
    assert.equal(typeof sub[Symbol.dispose], 'function');
    sub[Symbol.dispose]();
    assert.equal(sub.closed, true);
    sub[Symbol.dispose]();
    sub.close();
    const witness = subscribe(t, opts);
    invalidateNeedsAuth('x', opts);
    await waitFor(() => witness.events.length === 1, 'the witness event');
    await sleep(50);
    assert.deepEqual(events, []);
  });

  it('options.signal: aborting closes; an already-aborted signal gives a closed subscription', async (t) => {
    const dir = tmp(t);
    const opts = { configDir: dir, watch: false };
    const ac = new AbortController();
    const live = subscribe(t, { ...opts, signal: ac.signal });
    const dead = subscribe(t, { ...opts, signal: AbortSignal.abort() });
    assert.equal(dead.sub.closed, true);
    assert.equal(live.sub.closed, false);

    invalidateNeedsAuth('before-abort', opts);
    await waitFor(() => live.events.length === 1, 'the event before abort');
    ac.abort();
    assert.equal(live.sub.closed, true);
    live.sub.close(); // still idempotent

    const witness = subscribe(t, opts);
    invalidateNeedsAuth('after-abort', opts);
    await waitFor(() => witness.events.length === 1, 'the witness event');
    await sleep(50);
    assert.deepEqual(
      live.events.map((e) => e.servers),
      [['before-abort']],
    );
    assert.deepEqual(dead.events, []);
  });

  it('aborting right after an invalidate drops the queued event', async (t) => {
    const dir = tmp(t);
    const opts = { configDir: dir, watch: false };
    const ac = new AbortController();
    const s = subscribe(t, { ...opts, signal: ac.signal });
    const witness = subscribe(t, opts);
    invalidateNeedsAuth('x', opts);
    ac.abort();
    await waitFor(() => witness.events.length === 1, 'the witness event');
    await sleep(50);
    assert.deepEqual(s.events, []);
  });

  it('bad arguments throw ERR_INVALID_ARGUMENT', (t) => {
    const dir = tmp(t);
    const cases = [
      [() => onAuthChanged(() => {}, 'x'), 'options a string'],
      [() => onAuthChanged(() => {}, { configDir: dir, watch: false, signal: 'x' }), 'signal a string'],
      [() => onAuthChanged(() => {}, { configDir: dir, watch: false, defaultTtlMs: -1 }), 'negative defaultTtlMs'],
      [() => onAuthChanged(() => {}, { configDir: 5, watch: false }), 'configDir a number'],
      [() => onAuthChanged(() => {}, { configDir: dir, watch: 'yes' }), 'watch a string'],
    ];
    for (const [fn, label] of cases) {
      let err;
      try {
        const sub = fn();
        sub.close();
      } catch (e) {
        err = e;
      }
      assert.ok(err, `${label}: no throw`);
      assert.equal(err.code, 'ERR_INVALID_ARGUMENT', `${label}: ${err.code} ${err.message}`);
    }
  });
});

describe('onAuthChanged: a callback that is not a function', () => {
  it('throws ERR_INVALID_ARGUMENT', (t) => {
    const dir = tmp(t);
    for (const cb of ['not a function', 5, null, undefined, {}]) {
      let err;
      try {
        onAuthChanged(cb, { configDir: dir, watch: false }).close();
      } catch (e) {
        err = e;
      }
      assert.ok(err, `${String(cb)}: no throw`);
      assert.equal(
        err.code,
        'ERR_INVALID_ARGUMENT',
        `callback ${String(cb)}: code ${err.code}, message ${JSON.stringify(err.message)}`,
      );
    }
  });
});

describe('onAuthChanged with the default watcher', () => {
  it("delivers this process's invalidations once and reports outside writes as cache-changed", async (t) => {
    const dir = tmp(t);
    const file = path.join(dir, FILE);
    const opts = { configDir: dir, credentials: 'file' };
    markNeedsAuth('a', opts);
    markNeedsAuth('b', opts);
    const { sub, events } = subscribe(t, opts);
    assert.equal(sub.closed, false);

    assert.deepEqual(invalidateNeedsAuth('a', opts), ['a']);
    await waitFor(() => events.length >= 1, 'the invalidated event');
    await sleep(300);
    assert.deepEqual(events[0], {
      ...events[0],
      reason: 'invalidated',
      source: 'this-process',
      servers: ['a'],
      configDir: dir,
    });
    assert.equal(events.filter((e) => e.reason === 'invalidated').length, 1, 'the watcher does not repeat it');

    // A write that did not come through this library (Claude Code's plain writeFile) is
    // another process's change.
    const n = events.length;
    const doc = JSON.parse(fs.readFileSync(file, 'utf8'));
    doc.outside = { timestamp: Date.now() };
    fs.writeFileSync(file, JSON.stringify(doc));
    await waitFor(() => events.length > n, 'the cache-changed event');
    assert.deepEqual(
      events.slice(n).map((e) => [e.reason, e.source, e.servers, e.configDir]),
      [['cache-changed', 'other-process', ['outside'], dir]],
    );

    sub.close();
    assert.equal(sub.closed, true);
    const m = events.length;
    fs.writeFileSync(file, '{}');
    invalidateNeedsAuth(undefined, opts);
    await sleep(200);
    assert.equal(events.length, m, 'nothing after close()');
  });

  it("never reports this process's own writes as other-process changes", async (t) => {
    const dir = tmp(t);
    const opts = { configDir: dir, credentials: 'file' };
    markNeedsAuth('seed', opts);
    const { events } = subscribe(t, opts);
    // A synchronous burst (the watcher works while the writes go on), then spaced writes.
    for (let i = 0; i < 200; i++) markNeedsAuth(`s${i % 10}`, opts);
    for (let i = 0; i < 100; i++) {
      markNeedsAuth(`s${i % 10}`, opts);
      await sleep(i % 7);
    }
    await sleep(300);
    assert.deepEqual(
      events.map((e) => `${e.reason}/${e.source}/${e.servers}`),
      [],
      "own markNeedsAuth writes were reported as another process's changes",
    );
  });

  it('an outside write followed at once by an own write is still reported', async (t) => {
    const dir = tmp(t);
    const file = path.join(dir, FILE);
    const opts = { configDir: dir, credentials: 'file' };
    markNeedsAuth('seed', opts);
    const { events } = subscribe(t, opts);
    await sleep(100);
    // Claude Code (a plain writeFile) adds an entry; this process marks another right after.
    const doc = JSON.parse(fs.readFileSync(file, 'utf8'));
    doc.external = { timestamp: Date.now() };
    fs.writeFileSync(file, JSON.stringify(doc));
    markNeedsAuth('own', opts);
    assert.deepEqual(Object.keys(JSON.parse(fs.readFileSync(file, 'utf8'))), ['seed', 'external', 'own']);
    await waitFor(
      () => events.some((e) => e.reason === 'cache-changed' && e.servers.includes('external')),
      'a cache-changed event naming the external entry',
      1500,
    ).catch((e) => {
      throw new Error(`${e.message}; events: ${JSON.stringify(events.map((x) => [x.reason, x.source, x.servers]))}`);
    });
  });
});

describe('a subscription never keeps the process alive', () => {
  for (const [label, extra] of [
    ['watch: false', '{ watch: false }'],
    ['default watch', '{}'],
    ['default watch + signal', '{ signal: new AbortController().signal }'],
  ]) {
    it(`${label}: a process that only subscribes exits by itself`, (t) => {
      const dir = tmp(t);
      const code = `const m = require(${JSON.stringify(ADDON)});
        const sub = m.onAuthChanged(() => {}, { configDir: ${JSON.stringify(dir)}, ...${extra} });
        if (sub.closed) process.exit(3);
        process.stdout.write('subscribed');`;
      const t0 = Date.now();
      const r = spawnSync(process.execPath, ['-e', code], {
        env: { PATH: process.env.PATH, HOME: dir },
        encoding: 'utf8',
        timeout: 10000,
        killSignal: 'SIGKILL',
      });
      const ms = Date.now() - t0;
      assert.equal(r.signal, null, `killed after ${ms} ms: the subscription kept the process alive`);
      assert.equal(r.status, 0, `exit ${r.status}: ${r.stderr}`);
      assert.equal(r.stdout, 'subscribed');
      assert.ok(ms < 5000, `took ${ms} ms to exit`);
    });
  }
});
