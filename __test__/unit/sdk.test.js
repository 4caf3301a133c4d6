'use strict';
// Unit-level tests of mcp-needs-auth/sdk and mcp-needs-auth/register. The SDK is not involved:
// reconnectOnAuthChange and the needsAuthHooks hook are driven against a fake query object (the
// thing under test is our helper; __test__/e2e/sdk.test.js runs reconnectOnAuthChange against the
// SDK's own Query, __test__/e2e/e2e.test.js against real sessions).
// Every test uses its own temp config dir; nothing touches the real ~/.claude.
//
//   node --test __test__/unit/sdk.test.js

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');

const ROOT = path.resolve(__dirname, '..', '..');
const addon = require(ROOT);
const sdk = require(path.join(ROOT, 'sdk.js'));
const { writeFreshToken } = require('../../support/credentials.js');
const { tmp } = require('../helpers/tmp.js');
const { opts, collectWarnings, until } = require('../helpers/sdk.js');
const { configDirFor, prepareQuery, needsAuthHooks, reconnectOnAuthChange } = sdk;

const FILE = 'mcp-needs-auth-cache.json';

const delay = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * `sub.settled()`, with the event loop kept alive meanwhile: the subscription's own timers never
 * keep a process alive (a real session's Claude Code child does; a fake query has none).
 */
async function settledAlive(sub) {
  const alive = setInterval(() => {}, 1_000);
  try {
    await sub.settled();
  } finally {
    clearInterval(alive);
  }
}

/**
 * A fake Agent SDK Query: `statuses` maps server -> status; `failures` maps server -> how many
 * reconnects fail before one succeeds (Infinity: always). Records calls and max concurrency.
 */
function fakeQuery({ statuses = {}, failures = {}, reconnectMs = 20 } = {}) {
  const q = {
    statuses: { ...statuses },
    calls: [],
    statusCalls: 0,
    active: 0,
    maxActive: 0,
    ended: false,
    closeCalls: 0,
    async mcpServerStatus() {
      q.statusCalls++;
      if (q.ended) throw new Error('Query closed before response received');
      return Object.entries(q.statuses).map(([name, status]) => ({ name, status }));
    },
    async reconnectMcpServer(name) {
      if (q.ended) throw new Error('ProcessTransport is not ready for writing');
      q.calls.push(name);
      q.active++;
      q.maxActive = Math.max(q.maxActive, q.active);
      try {
        await delay(reconnectMs);
        if ((failures[name] ?? 0) > 0) {
          failures[name]--;
          throw new Error(`Server status: needs-auth (${name})`);
        }
        q.statuses[name] = 'connected';
      } finally {
        q.active--;
      }
    },
    close() {
      q.closeCalls++;
      q.ended = true;
    },
  };
  return q;
}

/**
 * reconnectOnAuthChange(q, options), and `deliver(event)`: hands the subscription an event through
 * the very listener it gave onAuthChanged, for events that no call in this process produces
 * (another process's cache write, a credentials save) with the exact servers a test needs.
 */
function reconnectWithDeliver(t, q, options) {
  const orig = addon.onAuthChanged;
  let deliver;
  addon.onAuthChanged = function spied(listener, o) {
    deliver = listener;
    return orig.call(this, listener, o);
  };
  let sub;
  try {
    sub = reconnectOnAuthChange(q, options);
  } finally {
    addon.onAuthChanged = orig;
  }
  t.after(() => sub.close());
  assert.equal(typeof deliver, 'function', 'the subscription listens through onAuthChanged');
  return { sub, deliver };
}

describe('configDirFor', () => {
  it('uses options.env, not process.env, when env is given', () => {
    assert.equal(configDirFor({ env: { HOME: '/h/one' } }), path.join('/h/one', '.claude'));
    assert.equal(configDirFor({ env: { HOME: '/h/one', CLAUDE_CONFIG_DIR: '/cfg/x' } }), '/cfg/x');
  });

  it('falls back to process.env without options.env', (t) => {
    const saved = process.env.CLAUDE_CONFIG_DIR;
    t.after(() => {
      if (saved === undefined) delete process.env.CLAUDE_CONFIG_DIR;
      else process.env.CLAUDE_CONFIG_DIR = saved;
    });
    process.env.CLAUDE_CONFIG_DIR = '/from/process/env';
    assert.equal(configDirFor({}), '/from/process/env');
    assert.equal(configDirFor(undefined), '/from/process/env');
    assert.equal(configDirFor({ env: undefined }), '/from/process/env');
    assert.equal(configDirFor({ env: null }), '/from/process/env', 'null env falls back like ??');
    delete process.env.CLAUDE_CONFIG_DIR;
    assert.equal(configDirFor({}), path.join(os.homedir(), '.claude'));
  });

  it("keeps a set but empty CLAUDE_CONFIG_DIR ('' ?? x is '')", () => {
    assert.equal(configDirFor({ env: { HOME: '/h', CLAUDE_CONFIG_DIR: '' } }), '');
  });

  it('uses os.homedir() when the env has no HOME', { skip: process.platform === 'win32' }, () => {
    assert.equal(configDirFor({ env: { PATH: '/bin' } }), path.join(os.homedir(), '.claude'));
  });

  it('NFC-normalises', () => {
    const nfd = '/tmp/cafe\u0301';
    assert.equal(configDirFor({ env: { CLAUDE_CONFIG_DIR: nfd } }), '/tmp/caf\u00e9');
    assert.equal(configDirFor({ env: { HOME: nfd } }), path.join('/tmp/caf\u00e9', '.claude'));
  });
});

describe('prepareQuery', () => {
  it('returns the same object, appends to SessionStart and UserPromptSubmit and keeps every caller hook', (t) => {
    const dir = tmp(t);
    const mine = { hooks: [async () => ({ continue: true })] };
    const pre = { matcher: 'Bash', hooks: [async () => ({})] };
    const callerHooks = { SessionStart: [mine], PreToolUse: [pre] };
    const opts = { env: { HOME: dir, CLAUDE_CONFIG_DIR: dir }, hooks: callerHooks, model: 'x' };
    const out = prepareQuery(opts);
    assert.equal(out, opts, 'same object');
    assert.equal(out.model, 'x');
    assert.equal(out.hooks.SessionStart.length, 2);
    assert.equal(out.hooks.SessionStart[0], mine, "caller's SessionStart matcher first");
    assert.equal(typeof out.hooks.SessionStart[1].hooks[0], 'function');
    assert.equal(out.hooks.UserPromptSubmit.length, 1);
    assert.equal(out.hooks.UserPromptSubmit[0].hooks[0], out.hooks.SessionStart[1].hooks[0], 'one hook, two events');
    assert.deepEqual(out.hooks.PreToolUse, [pre]);
    assert.deepEqual(callerHooks.SessionStart, [mine], "the caller's hooks object is not mutated");
    assert.equal(callerHooks.UserPromptSubmit, undefined, "the caller's hooks object is not mutated");
    // A second call adds nothing.
    prepareQuery(opts);
    assert.equal(opts.hooks.SessionStart.length, 2);
    assert.equal(opts.hooks.UserPromptSubmit.length, 1);
  });

  it('creates hooks when there are none', (t) => {
    const dir = tmp(t);
    const opts = prepareQuery({ env: { CLAUDE_CONFIG_DIR: dir } });
    assert.deepEqual(Object.keys(opts.hooks), ['SessionStart', 'UserPromptSubmit']);
    assert.equal(opts.hooks.SessionStart.length, 1);
    assert.equal(opts.hooks.UserPromptSubmit.length, 1);
  });

  it("purges stale entries of the env's config dir (not process.env's)", (t) => {
    const dir = tmp(t);
    const now = Date.now();
    fs.writeFileSync(
      path.join(dir, FILE),
      JSON.stringify({
        old: { timestamp: now - 3_600_000 },
        live: { timestamp: now },
      }),
    );
    prepareQuery({ env: { HOME: '/nonexistent-home', CLAUDE_CONFIG_DIR: dir } });
    assert.deepEqual(Object.keys(JSON.parse(fs.readFileSync(path.join(dir, FILE), 'utf8'))), ['live']);
  });

  it("never throws for CLAUDE_CONFIG_DIR '' (warns, purges nothing)", async () => {
    const warnings = [];
    const onWarn = (w) => warnings.push(w);
    process.on('warning', onWarn);
    try {
      const opts = prepareQuery({ env: { CLAUDE_CONFIG_DIR: '' } });
      assert.ok(opts.hooks.SessionStart.length === 1);
      await delay(20);
    } finally {
      process.off('warning', onWarn);
    }
    assert.ok(
      warnings.some((w) => /empty/.test(w.message)),
      warnings.map((w) => w.message).join('\n'),
    );
  });
});

describe('needsAuthHooks', () => {
  it('has the SDK HookCallbackMatcher shape and resolves { continue: true } without awaiting the query', async (t) => {
    const dir = tmp(t);
    const never = { mcpServerStatus: () => new Promise(() => {}), reconnectMcpServer: async () => {} };
    const h = needsAuthHooks({ configDir: dir, query: never });
    assert.deepEqual(Object.keys(h), ['SessionStart', 'UserPromptSubmit']);
    assert.equal(h.SessionStart.length, 1);
    assert.ok(Array.isArray(h.SessionStart[0].hooks));
    assert.equal(h.UserPromptSubmit[0].hooks[0], h.SessionStart[0].hooks[0]);
    const ac = new AbortController();
    const out = await h.SessionStart[0].hooks[0]({ hook_event_name: 'SessionStart', source: 'startup' }, undefined, {
      signal: ac.signal,
    });
    assert.deepEqual(out, { continue: true });
  });

  it('purges, then schedules reconnects of needs-auth servers a new process would dial (query getter)', async (t) => {
    const dir = tmp(t);
    const now = Date.now();
    fs.writeFileSync(
      path.join(dir, FILE),
      JSON.stringify({
        stale: { timestamp: now - 3_600_000 },
        blocked: { timestamp: now },
      }),
    );
    const q = fakeQuery({ statuses: { stale: 'needs-auth', blocked: 'needs-auth', ok: 'connected' } });
    let current;
    const outcomes = [];
    const h = needsAuthHooks({ configDir: dir, query: () => current, onReconnect: (o) => outcomes.push(o) });
    current = q; // the query exists by the time the hook runs
    const out = await h.SessionStart[0].hooks[0]({}, undefined, { signal: new AbortController().signal });
    assert.deepEqual(out, { continue: true });
    assert.equal(q.calls.length, 0, 'nothing awaited inside the hook');
    await until(() => outcomes.length === 1, { what: 'the scheduled reconnect' });
    assert.deepEqual(q.calls, ['stale'], 'only the server whose entry is gone; blocked is still cached');
    assert.deepEqual(
      outcomes.map(({ server, ok }) => ({ server, ok })),
      [{ server: 'stale', ok: true }],
    );
    assert.deepEqual(Object.keys(JSON.parse(fs.readFileSync(path.join(dir, FILE), 'utf8'))), ['blocked']);
  });

  it('fires per prompt: triggers while a reconcile runs make one more run, never a second reconnect at once', async (t) => {
    const dir = tmp(t);
    const q = fakeQuery({ statuses: { a: 'needs-auth', b: 'connected' }, reconnectMs: 100 });
    const outcomes = [];
    const h = needsAuthHooks({ configDir: dir, query: () => q, onReconnect: (o) => outcomes.push(o) });
    const fire = (event) =>
      h[event][0].hooks[0]({ hook_event_name: event }, undefined, { signal: new AbortController().signal });
    // SessionStart (where it fires) and every prompt's UserPromptSubmit, in quick succession.
    for (const event of ['SessionStart', 'UserPromptSubmit', 'UserPromptSubmit', 'UserPromptSubmit']) {
      assert.deepEqual(await fire(event), { continue: true });
    }
    await until(() => outcomes.length === 1 && q.active === 0, { what: 'the reconnect' });
    await until(() => q.statusCalls >= 2, { what: 'the run the later triggers asked for' });
    assert.deepEqual(q.calls, ['a'], 'one reconnect of a; the run after it finds a connected');
    assert.equal(q.maxActive, 1);
    // A later prompt, everything connected: it asks for the statuses and reconnects nothing.
    const before = q.statusCalls;
    await fire('UserPromptSubmit');
    await until(() => q.statusCalls > before, { what: "the next prompt's look" });
    q.statuses.a = 'needs-auth'; // dropped again, after a sign-in elsewhere: the next prompt reconnects it
    await fire('UserPromptSubmit');
    await until(() => outcomes.length === 2, { what: 'the second reconnect' });
    assert.deepEqual(q.calls, ['a', 'a']);
  });

  it('without a query it only purges', async (t) => {
    const dir = tmp(t);
    fs.writeFileSync(path.join(dir, FILE), JSON.stringify({ a: { timestamp: 1 } }));
    const h = needsAuthHooks({ configDir: dir });
    assert.deepEqual(await h.SessionStart[0].hooks[0]({}, undefined, { signal: new AbortController().signal }), {
      continue: true,
    });
    assert.deepEqual(JSON.parse(fs.readFileSync(path.join(dir, FILE), 'utf8')), {});
  });
});

describe('reconnectOnAuthChange (fake query)', () => {
  it('reconnects affected needs-auth/failed servers one at a time and reports outcomes', async (t) => {
    const dir = tmp(t);
    const q = fakeQuery({ statuses: { a: 'needs-auth', b: 'failed', c: 'needs-auth', d: 'connected', e: 'disabled' } });
    const outcomes = [];
    const sub = reconnectOnAuthChange(q, opts(dir, { onReconnect: (o) => outcomes.push(o) }));
    t.after(() => sub.close());
    addon.invalidateNeedsAuth(['a', 'b', 'd'], { configDir: dir });
    await until(() => outcomes.length === 2, { what: 'two outcomes' });
    await sub.settled();
    assert.deepEqual(q.calls, ['a', 'b']);
    assert.equal(q.maxActive, 1, 'serial');
    assert.deepEqual(outcomes, [
      { server: 'a', ok: true, attempts: 1 },
      { server: 'b', ok: true, attempts: 1 },
    ]);
    // An event naming no server means all of them: only c is left needing auth.
    addon.invalidateNeedsAuth(null, { configDir: dir });
    await until(() => outcomes.length === 3, { what: 'the all-servers event' });
    assert.deepEqual(q.calls, ['a', 'b', 'c']);
    assert.equal(q.maxActive, 1);
  });

  it("drops a connected server's needs-auth entry, and keeps it when the session still says needs-auth", async (t) => {
    const dir = tmp(t);
    const q = fakeQuery({ statuses: { up: 'needs-auth', stuck: 'needs-auth' } });
    // A reconnect that resolves without connecting (the session still reports needs-auth).
    const reconnect = q.reconnectMcpServer;
    q.reconnectMcpServer = async (name) => {
      await reconnect(name);
      if (name === 'stuck') q.statuses.stuck = 'needs-auth';
    };
    const outcomes = [];
    const sub = reconnectOnAuthChange(q, opts(dir, { retries: 1, onReconnect: (o) => outcomes.push(o) }));
    t.after(() => sub.close());
    // Entries a new process would ignore (from the future, beyond the clock skew allowed), so
    // that both servers are dialable and reconnected, and only the outcome decides.
    for (const server of ['up', 'stuck']) addon.markNeedsAuth(server, { configDir: dir });
    const file = path.join(dir, 'mcp-needs-auth-cache.json');
    const doc = JSON.parse(fs.readFileSync(file, 'utf8'));
    for (const e of Object.values(doc)) e.timestamp += 3_600_000;
    fs.writeFileSync(file, JSON.stringify(doc));
    addon.invalidateNeedsAuth([], { configDir: dir });
    await until(() => outcomes.length === 2, { what: 'two outcomes' });
    await settledAlive(sub);
    const left = addon.listNeedsAuth({ configDir: dir }).map((e) => e.server);
    assert.deepEqual(left, ['stuck'], 'the connected server has no entry left; the other keeps its own');
  });

  it('stays serial across events that arrive while a reconnect runs', async (t) => {
    const dir = tmp(t);
    const q = fakeQuery({ statuses: { a: 'needs-auth', b: 'needs-auth', c: 'needs-auth' }, reconnectMs: 60 });
    const sub = reconnectOnAuthChange(q, opts(dir));
    t.after(() => sub.close());
    addon.invalidateNeedsAuth('a', { configDir: dir });
    await until(() => q.active === 1);
    addon.invalidateNeedsAuth('b', { configDir: dir });
    addon.invalidateNeedsAuth('c', { configDir: dir });
    await until(() => q.calls.length === 3 && q.active === 0, { what: 'three reconnects' });
    assert.equal(q.maxActive, 1);
    assert.deepEqual([...q.calls].sort(), ['a', 'b', 'c']);
  });

  it('retries a bounded number of times with backoff', async (t) => {
    const dir = tmp(t);
    const q = fakeQuery({
      statuses: { flaky: 'needs-auth', dead: 'needs-auth' },
      failures: { flaky: 1, dead: Infinity },
    });
    const outcomes = [];
    const sub = reconnectOnAuthChange(
      q,
      opts(dir, { retries: 3, backoffMs: 30, onReconnect: (o) => outcomes.push(o) }),
    );
    t.after(() => sub.close());
    const started = Date.now();
    addon.invalidateNeedsAuth(['flaky', 'dead'], { configDir: dir });
    await until(() => outcomes.length === 2, { what: 'both outcomes' });
    const ms = Date.now() - started;
    assert.deepEqual(q.calls, ['flaky', 'flaky', 'dead', 'dead', 'dead']);
    assert.equal(outcomes[0].server, 'flaky');
    assert.equal(outcomes[0].ok, true);
    assert.equal(outcomes[0].attempts, 2);
    assert.equal(outcomes[1].server, 'dead');
    assert.equal(outcomes[1].ok, false);
    assert.equal(outcomes[1].attempts, 3);
    assert.match(String(outcomes[1].error?.message), /Server status: needs-auth/);
    assert.ok(ms >= 30 + 30 + 60, `backoff waited (${ms} ms)`);
  });

  it('does not reconnect a server a new process would still skip (fresh needs-auth entry)', async (t) => {
    const dir = tmp(t);
    addon.markNeedsAuth('blocked', { configDir: dir });
    const q = fakeQuery({ statuses: { blocked: 'needs-auth', free: 'needs-auth' } });
    const { sub, deliver } = reconnectWithDeliver(t, q, opts(dir));
    // A cache change naming both (as another process's 401 write would produce).
    deliver({ reason: 'cache-changed', servers: ['blocked', 'free'] });
    await sub.settled();
    assert.deepEqual(q.calls, ['free']);
  });

  it('waits for a server still pending at the event: reconnects it once it settles in needs-auth', async (t) => {
    const dir = tmp(t);
    // The sign-in arrives while both connect (with the old token): a settles in needs-auth, b connects.
    const q = fakeQuery({ statuses: { a: 'pending', b: 'pending', c: 'connected' } });
    const outcomes = [];
    const sub = reconnectOnAuthChange(q, opts(dir, { onReconnect: (o) => outcomes.push(o) }));
    t.after(() => sub.close());
    addon.invalidateNeedsAuth(['a', 'b'], { configDir: dir });
    await until(() => q.statusCalls >= 1, { what: 'the first status check' });
    q.statuses.b = 'connected';
    q.statuses.a = 'needs-auth';
    await until(() => outcomes.length === 1, { what: "a's reconnect" });
    await settledAlive(sub);
    assert.deepEqual(q.calls, ['a']);
    assert.deepEqual(outcomes, [{ server: 'a', ok: true, attempts: 1 }]);
    assert.equal(sub.closed, false);
  });

  it('does not hold up other servers while one is pending, and stays serial', async (t) => {
    const dir = tmp(t);
    const q = fakeQuery({ statuses: { slow: 'pending', b: 'needs-auth' }, reconnectMs: 40 });
    const sub = reconnectOnAuthChange(q, opts(dir));
    t.after(() => sub.close());
    addon.invalidateNeedsAuth('slow', { configDir: dir });
    await until(() => q.statusCalls >= 1, { what: 'the first status check' });
    addon.invalidateNeedsAuth('b', { configDir: dir });
    await until(() => q.calls.length === 1, { what: "b's reconnect while slow is pending" });
    assert.deepEqual(q.calls, ['b']);
    q.statuses.slow = 'failed';
    await until(() => q.calls.length === 2, { what: "slow's reconnect once it settled" });
    await settledAlive(sub);
    assert.deepEqual(q.calls, ['b', 'slow']);
    assert.equal(q.maxActive, 1, 'serial');
  });

  it('reconnects a server whose connect failed with the old token after a sign-in, despite the entry it wrote', async (t) => {
    const dir = tmp(t);
    // The sign-in saved a token for `a`; `none` has no token. Both were connecting meanwhile.
    writeFreshToken(dir, 'a', 'http://127.0.0.1:9/mcp', { token: 'fresh-token' });
    const q = fakeQuery({ statuses: { a: 'pending', none: 'pending' } });
    const { sub, deliver } = reconnectWithDeliver(t, q, opts(dir));
    deliver({ reason: 'credentials-changed', servers: ['a', 'none'] });
    await until(() => q.statusCalls >= 1, { what: 'the first status check' });
    // Their connects meet a 401 after the sign-in: Claude Code writes the entries, then reports needs-auth.
    await delay(5);
    addon.markNeedsAuth('a', { configDir: dir });
    addon.markNeedsAuth('none', { configDir: dir });
    assert.equal(addon.diagnose('a', { configDir: dir }).skipped, true, 'a new process would skip a (entry kept)');
    q.statuses.a = 'needs-auth';
    q.statuses.none = 'needs-auth';
    await until(() => q.calls.length === 1, { what: "a's reconnect" });
    await settledAlive(sub);
    assert.deepEqual(q.calls, ['a'], 'not `none`: no token in the store');
  });

  it('gives up on a server pending for longer than pendingWaitMs, and does not reconnect one a new process would skip', async (t) => {
    const dir = tmp(t);
    addon.markNeedsAuth('blocked', { configDir: dir }); // a genuine needs-auth entry: no sign-in
    const q = fakeQuery({ statuses: { stuck: 'pending', blocked: 'pending' } });
    const { sub, deliver } = reconnectWithDeliver(t, q, opts(dir, { pendingWaitMs: 300 }));
    deliver({ reason: 'cache-changed', servers: ['stuck', 'blocked'] });
    await until(() => q.statusCalls >= 1, { what: 'the first status check' });
    q.statuses.blocked = 'needs-auth';
    await settledAlive(sub); // resolves: the wait for `stuck` is bounded
    assert.deepEqual(q.calls, []);
    assert.equal(q.statuses.stuck, 'pending');
    const checks = q.statusCalls;
    q.statuses.stuck = 'needs-auth'; // settled after the wait: only a new event looks again
    await delay(300);
    assert.equal(q.statusCalls, checks, 'no status check after giving up');
    assert.deepEqual(q.calls, []);
  });

  it('stops at once on close() or abort while waiting for a pending server', async (t) => {
    for (const how of ['close', 'abort']) {
      const dir = tmp(t);
      const q = fakeQuery({ statuses: { a: 'pending' } });
      const ac = new AbortController();
      const sub = reconnectOnAuthChange(q, opts(dir, { signal: ac.signal, pendingWaitMs: 60_000 }));
      t.after(() => sub.close());
      addon.invalidateNeedsAuth('a', { configDir: dir });
      await until(() => q.statusCalls >= 1, { what: 'the first status check' });
      if (how === 'close') sub.close();
      else ac.abort();
      assert.equal(sub.closed, true, how);
      await settledAlive(sub); // at once, not after pendingWaitMs
      const checks = q.statusCalls;
      q.statuses.a = 'needs-auth';
      await delay(300);
      assert.equal(q.statusCalls, checks, `${how}: no status check after stopping`);
      assert.deepEqual(q.calls, [], how);
    }
  });

  it('stops on close(): no more status checks or reconnects', async (t) => {
    const dir = tmp(t);
    const q = fakeQuery({ statuses: { a: 'needs-auth' } });
    const sub = reconnectOnAuthChange(q, opts(dir));
    assert.equal(sub.closed, false);
    sub.close();
    sub.close();
    assert.equal(sub.closed, true);
    addon.invalidateNeedsAuth('a', { configDir: dir });
    await delay(100);
    assert.equal(q.statusCalls, 0);
    assert.deepEqual(q.calls, []);
    const sub2 = reconnectOnAuthChange(q, opts(dir));
    sub2[Symbol.dispose]();
    assert.equal(sub2.closed, true);
    const ac = new AbortController();
    const sub3 = reconnectOnAuthChange(q, opts(dir, { signal: ac.signal }));
    ac.abort();
    assert.equal(sub3.closed, true);
    t.after(() => sub3.close());
  });

  it('stops when the query ends: mcpServerStatus rejects', async (t) => {
    const dir = tmp(t);
    const q = fakeQuery({ statuses: { a: 'needs-auth' } });
    const sub = reconnectOnAuthChange(q, opts(dir));
    t.after(() => sub.close());
    q.ended = true; // the session's child exited; control requests now reject
    addon.invalidateNeedsAuth('a', { configDir: dir });
    await until(() => sub.closed, { what: 'the subscription to close' });
    assert.equal(q.statusCalls, 1);
    assert.deepEqual(q.calls, []);
  });

  it('leaves the query alone, and stops at the first status check after query.close()', async (t) => {
    const dir = tmp(t);
    const q = fakeQuery({ statuses: { a: 'needs-auth' } });
    const warnings = collectWarnings(t);
    const methods = () => Object.entries(q).filter(([, v]) => typeof v === 'function');
    const before = methods();
    const sub = reconnectOnAuthChange(q, opts(dir));
    t.after(() => sub.close());
    assert.deepEqual(methods(), before, 'no method replaced');
    q.close();
    assert.equal(q.closeCalls, 1);
    addon.invalidateNeedsAuth('a', { configDir: dir });
    await until(() => sub.closed, { what: 'the subscription to close' });
    assert.equal(q.statusCalls, 1);
    assert.deepEqual(q.calls, []);
    assert.deepEqual(warnings, [], 'a session that ended is no warning');
  });

  it('stops when the session ends between two tries (its status check rejects), whatever the error says', async (t) => {
    const dir = tmp(t);
    const q = fakeQuery({ statuses: { a: 'needs-auth' }, failures: { a: Infinity } });
    const reconnect = q.reconnectMcpServer;
    q.reconnectMcpServer = async (name) => {
      await reconnect(name).catch(() => {});
      q.ended = true; // the child exited during the reconnect
      throw new Error('an error text this package never reads');
    };
    const outcomes = [];
    const sub = reconnectOnAuthChange(q, opts(dir, { onReconnect: (o) => outcomes.push(o) }));
    t.after(() => sub.close());
    addon.invalidateNeedsAuth('a', { configDir: dir });
    await until(() => sub.closed, { what: 'the subscription to close' });
    assert.deepEqual(q.calls, ['a'], 'no second try in an ended session');
    assert.equal(q.statusCalls, 2);
    assert.deepEqual(outcomes, []);
  });

  it('warns about and stops on a session that gives no status answer in statusTimeoutMs', async (t) => {
    const dir = tmp(t);
    const q = fakeQuery({ statuses: { a: 'needs-auth' } });
    q.mcpServerStatus = () => new Promise(() => {});
    const warnings = collectWarnings(t);
    const sub = reconnectOnAuthChange(q, opts(dir, { statusTimeoutMs: 50 }));
    t.after(() => sub.close());
    addon.invalidateNeedsAuth('a', { configDir: dir });
    await until(() => sub.closed, { what: 'the subscription to close' });
    assert.deepEqual(q.calls, []);
    const noAnswer = /mcpServerStatus\(\) gave no answer in 50 ms/;
    assert.ok(
      warnings.some((m) => noAnswer.test(m)),
      warnings.join('\n'),
    );
  });

  it('never throws into the host: onReconnect errors become warnings', async (t) => {
    const dir = tmp(t);
    const q = fakeQuery({ statuses: { a: 'needs-auth' } });
    const warnings = [];
    const onWarn = (w) => warnings.push(w);
    process.on('warning', onWarn);
    t.after(() => process.off('warning', onWarn));
    const sub = reconnectOnAuthChange(
      q,
      opts(dir, {
        onReconnect: () => {
          throw new Error('boom');
        },
      }),
    );
    t.after(() => sub.close());
    addon.invalidateNeedsAuth('a', { configDir: dir });
    await until(() => warnings.some((w) => /onReconnect threw: boom/.test(w.message)), { what: 'the warning' });
    assert.deepEqual(q.calls, ['a']);
  });

  it('rejects a value that is not a query at once', () => {
    assert.throws(() => reconnectOnAuthChange({}), TypeError);
    assert.throws(() => reconnectOnAuthChange(null), TypeError);
  });
});

describe('mcp-needs-auth/sdk ESM entry', () => {
  it('re-exports the CommonJS implementation', async () => {
    const esm = await import(path.join(ROOT, 'sdk.mjs'));
    for (const k of ['configDirFor', 'prepareQuery', 'needsAuthHooks', 'reconnectOnAuthChange']) {
      assert.equal(esm[k], sdk[k], k);
    }
  });
});

describe('mcp-needs-auth/register (child process)', () => {
  function runNode(args, env, timeoutMs = 10_000) {
    return new Promise((resolve, reject) => {
      const started = Date.now();
      const child = spawn(process.execPath, args, { env, stdio: ['ignore', 'pipe', 'pipe'] });
      let stdout = '';
      let stderr = '';
      child.stdout.on('data', (d) => {
        stdout += d;
      });
      child.stderr.on('data', (d) => {
        stderr += d;
      });
      const timer = setTimeout(() => {
        child.kill('SIGKILL');
      }, timeoutMs);
      child.on('error', reject);
      child.on('close', (code, signal) => {
        clearTimeout(timer);
        resolve({ code, signal, stdout, stderr, ms: Date.now() - started });
      });
    });
  }

  function childEnv(home, extra = {}) {
    const env = { PATH: process.env.PATH, HOME: home, MCP_NEEDS_AUTH_DEBUG: '1', ...extra };
    if (process.platform === 'win32') env.USERPROFILE = home;
    return env;
  }

  it('purges on load, prints its lines with MCP_NEEDS_AUTH_DEBUG=1, and exits by itself', async (t) => {
    const home = tmp(t, 'mna-reg-');
    const cfg = path.join(home, '.claude');
    fs.mkdirSync(cfg);
    fs.writeFileSync(path.join(cfg, FILE), JSON.stringify({ a: { timestamp: Date.now() - 3_600_000 } }));
    const reg = path.join(ROOT, 'register.js');
    const r = await runNode(
      ['-r', reg, '-r', reg, '-e', "require(process.argv[1]); console.log('host done')", reg],
      childEnv(home),
    );
    assert.equal(r.signal, null, `killed after timeout: ${r.stderr}`);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /host done/);
    assert.match(r.stderr, /^mcp-needs-auth: purged a \(expired\)$/m);
    assert.equal((r.stderr.match(/mcp-needs-auth: watching /g) || []).length, 1, `one subscription:\n${r.stderr}`);
    assert.ok(r.ms < 5000, `exited promptly (${r.ms} ms)`);
    assert.deepEqual(JSON.parse(fs.readFileSync(path.join(cfg, FILE), 'utf8')), {});
  });

  it('is silent without MCP_NEEDS_AUTH_DEBUG and honours CLAUDE_CONFIG_DIR', async (t) => {
    const home = tmp(t, 'mna-reg-');
    const cfg = path.join(home, 'elsewhere');
    fs.mkdirSync(cfg);
    fs.writeFileSync(path.join(cfg, FILE), JSON.stringify({ b: { timestamp: 5 } }));
    const r = await runNode(
      ['-r', path.join(ROOT, 'register.js'), '-e', '0'],
      childEnv(home, { MCP_NEEDS_AUTH_DEBUG: '', CLAUDE_CONFIG_DIR: cfg }),
    );
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stderr, '');
    assert.deepEqual(JSON.parse(fs.readFileSync(path.join(cfg, FILE), 'utf8')), {});
  });

  it('never throws into the host, even when the config dir cannot be resolved', async (t) => {
    const home = tmp(t, 'mna-reg-');
    const r = await runNode(
      ['-r', path.join(ROOT, 'register.js'), '-e', "console.log('alive')"],
      childEnv(home, { CLAUDE_CONFIG_DIR: path.join(home, 'no', 'such', 'dir') }),
    );
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /alive/);
  });
});
