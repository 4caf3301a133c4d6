'use strict';
// onServerStatus against a scripted fake query (the thing under test is our subscription; the
// real sessions: __test__/e2e/server-status.test.js). Changes of other processes are real: a
// child process writes the credentials file or the needs-auth cache in the test's temp config
// dir, and the real addon watches it. Every test has its own temp config dir.
//
//   node --test __test__/unit/server-status.test.js

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawn } = require('node:child_process');

const ROOT = path.resolve(__dirname, '..', '..');
const addon = require(ROOT);
const { onServerStatus, ServerStatusSubscription, reconnectOnAuthChange } = require(path.join(ROOT, 'sdk.js'));
const { tmp } = require('../helpers/tmp.js');
const { collectWarnings, until } = require('../helpers/sdk.js');
const { sessionStatuses } = require(path.join(ROOT, 'lib', 'sdk', 'session.js'));

const SUPPORT = path.join(ROOT, 'support');
const URL_A = 'http://127.0.0.1:9/a/mcp';
const delay = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * A fake Agent SDK Query: `statuses` maps server -> status (or a full entry). An answer is the
 * state when its request was sent; `hold()` holds the answers of requests sent from then on
 * until the function it returns is called (`unhold()` stops holding new ones). Counts requests.
 */
function fakeQuery(statuses) {
  let gate = null;
  const q = {
    statuses: { ...statuses },
    statusCalls: 0,
    ended: false,
    afterCall: null, // (n) => called after the n-th request took its snapshot
    async mcpServerStatus() {
      q.statusCalls++;
      const snapshot = Object.entries(q.statuses).map(([name, s]) =>
        typeof s === 'string' ? { name, status: s } : { name, ...s },
      );
      if (q.afterCall) q.afterCall(q.statusCalls);
      const held = gate;
      if (held) await held;
      if (q.ended) throw new Error('Query closed before response received');
      return snapshot;
    },
    async reconnectMcpServer(name) {
      if (q.ended) throw new Error('ProcessTransport is not ready for writing');
      await delay(10);
      q.statuses[name] = 'connected';
    },
    hold() {
      let release;
      gate = new Promise((r) => {
        release = r;
      });
      return () => {
        gate = null;
        release();
      };
    },
    unhold() {
      gate = null;
    },
  };
  return q;
}

/** onServerStatus with the pushes collected; closed when the test ends. */
function watch(t, q, options) {
  const pushed = [];
  const sub = onServerStatus(q, (e) => pushed.push(e), options);
  t.after(() => sub.close());
  return { sub, pushed };
}

/** The events keep no timer alive on their own (a fake query has no child process). */
function keepAlive(t) {
  const timer = setInterval(() => {}, 1_000);
  t.after(() => clearInterval(timer));
}

/** Runs `code` in another node process (cwd: the repo) and resolves once it exited 0. */
function otherProcess(code) {
  return new Promise((resolve, reject) => {
    const child = spawn(process.execPath, ['-e', code], { cwd: ROOT, stdio: ['ignore', 'ignore', 'pipe'] });
    let err = '';
    child.stderr.on('data', (d) => {
      err += d;
    });
    const timer = setTimeout(() => child.kill('SIGKILL'), 30_000);
    child.on('exit', (c) => {
      clearTimeout(timer);
      if (c === 0) resolve();
      else reject(new Error(`the other process failed (${c}): ${err}`));
    });
  });
}

/** Another process saves a sign-in of `server` (.credentials.json, as Claude Code writes it). */
const saveSignInElsewhere = (dir, server, url) =>
  otherProcess(
    `require(${JSON.stringify(path.join(SUPPORT, 'credentials.js'))}).writeFreshToken(${JSON.stringify(dir)}, ${JSON.stringify(server)}, ${JSON.stringify(url)}, { style: 'rename' })`,
  );

/** Another process writes `server`'s needs-auth entry the way Claude Code does (a 401, or its write-back). */
const writeEntryElsewhere = (dir, server) =>
  otherProcess(
    `require(${JSON.stringify(path.join(SUPPORT, 'claude-code-cache.js'))}).changeCacheLikeClaudeCode(${JSON.stringify(path.join(dir, 'mcp-needs-auth-cache.json'))}, (d) => { d[${JSON.stringify(server)}] = { timestamp: Date.now() }; })`,
  );

const byServer = (pushed, server) => pushed.filter((e) => e.server === server).map((e) => `${e.status}:${e.reason}`);

describe('onServerStatus', () => {
  it('pushes every server once from the first answer, with why (a cached entry) and what the session says of it', async (t) => {
    const dir = tmp(t);
    addon.markNeedsAuth('gh', { configDir: dir });
    const q = fakeQuery({
      gh: { status: 'needs-auth', scope: 'user', config: { type: 'http', url: URL_A } },
      'claude.ai Gmail': { status: 'connected', scope: 'claudeai', config: { type: 'claudeai-proxy' } },
      local: 'failed',
    });
    const { sub, pushed } = watch(t, q, { configDir: dir, watch: false });
    await sub.settled();
    assert.deepEqual(
      pushed.map(({ at, ...e }) => e),
      [
        {
          server: 'gh',
          status: 'needs-auth',
          previous: null,
          reason: 'cached-needs-auth',
          scope: 'user',
          transport: 'http',
        },
        {
          server: 'claude.ai Gmail',
          status: 'connected',
          previous: null,
          reason: 'init',
          scope: 'claudeai',
          transport: 'claudeai-proxy',
        },
        { server: 'local', status: 'failed', previous: null, reason: 'init' },
      ],
    );
    assert.ok(pushed.every((e) => Object.isFrozen(e) && typeof e.at === 'number'));
    assert.deepEqual(
      sub.statuses.map((e) => e.server),
      ['gh', 'claude.ai Gmail', 'local'],
    );
    assert.ok(sub instanceof ServerStatusSubscription);
    assert.equal(q.statusCalls, 1, 'one question: nothing was pending');
  });

  it('a sign-in saved by another process: one check, the connected status pushed; no poll before it', async (t) => {
    keepAlive(t);
    const dir = tmp(t);
    const q = fakeQuery({ a: 'needs-auth', b: 'connected' });
    const { sub, pushed } = watch(t, q, { configDir: dir, watch: true });
    await sub.settled();
    assert.equal(pushed.length, 2);
    const calls = q.statusCalls;
    await delay(300);
    assert.equal(q.statusCalls, calls, 'no question without an event');
    // The session connected it after its own sign-in; nothing tells the host but the save.
    q.statuses.a = 'connected';
    await saveSignInElsewhere(dir, 'a', URL_A);
    await until(() => pushed.length === 3, { timeoutMs: 20_000, what: 'the connected push' });
    await sub.settled();
    assert.deepEqual(byServer(pushed, 'a'), ['needs-auth:init', 'connected:signed-in']);
    assert.equal(pushed[2].previous, 'needs-auth');
    assert.deepEqual(byServer(pushed, 'b'), ['connected:init'], 'b unchanged: not pushed again');
  });

  it('with reconnectOnAuthChange: a sign-in saved elsewhere is reconnected, the push says signed-in-elsewhere', async (t) => {
    keepAlive(t);
    const dir = tmp(t);
    addon.markNeedsAuth('a', { configDir: dir });
    const q = fakeQuery({ a: 'needs-auth' });
    const { sub, pushed } = watch(t, q, { configDir: dir });
    const rec = reconnectOnAuthChange(q, { configDir: dir, backoffMs: 10 });
    t.after(() => rec.close());
    await sub.settled();
    assert.deepEqual(byServer(pushed, 'a'), ['needs-auth:cached-needs-auth']);
    await delay(20); // the save must come after the entry (ms timestamps)
    await saveSignInElsewhere(dir, 'a', URL_A);
    await until(() => pushed.length === 2, { timeoutMs: 20_000, what: 'the connected push' });
    await rec.settled();
    await sub.settled();
    assert.deepEqual(byServer(pushed, 'a'), ['needs-auth:cached-needs-auth', 'connected:signed-in-elsewhere']);
  });

  it('the session connects the server itself a moment after the save (its own sign-in): looked at again, pushed', async (t) => {
    keepAlive(t);
    const dir = tmp(t);
    const q = fakeQuery({ a: 'needs-auth' });
    const { sub, pushed } = watch(t, q, { configDir: dir, watch: true, settleIntervalMs: 20 });
    await sub.settled();
    const calls = q.statusCalls;
    // The first question after the save still finds needs-auth; Claude Code connects right after.
    q.afterCall = (n) => {
      if (n === calls + 1) q.statuses.a = 'connected';
    };
    await saveSignInElsewhere(dir, 'a', URL_A);
    await until(() => pushed.length === 2, { timeoutMs: 20_000, what: 'the connected push' });
    await sub.settled();
    assert.deepEqual(byServer(pushed, 'a'), ['needs-auth:init', 'connected:signed-in']);
    assert.ok(q.statusCalls >= calls + 2, 'asked again without another event');
  });

  it('a reconnect by this package with no credentials change: reason reconnected', async (t) => {
    keepAlive(t);
    const dir = tmp(t);
    const q = fakeQuery({ a: 'needs-auth' });
    const { sub, pushed } = watch(t, q, { configDir: dir, watch: false });
    const rec = reconnectOnAuthChange(q, { configDir: dir, watch: false, backoffMs: 10 });
    t.after(() => rec.close());
    await sub.settled();
    addon.invalidateNeedsAuth('a', { configDir: dir });
    await until(() => pushed.length === 2, { what: 'the connected push' });
    await rec.settled();
    await sub.settled();
    assert.deepEqual(
      byServer(pushed, 'a'),
      ['init', 'reconnected'].map((r, i) => `${i ? 'connected' : 'needs-auth'}:${r}`),
    );
  });

  it('a needs-auth entry written by another process (a write-back): the needs-auth status pushed, once', async (t) => {
    keepAlive(t);
    const dir = tmp(t);
    const q = fakeQuery({ a: 'connected' });
    const { sub, pushed } = watch(t, q, { configDir: dir, watch: true });
    await sub.settled();
    q.statuses.a = 'needs-auth'; // the Claude Code that met the 401 is this session's
    await writeEntryElsewhere(dir, 'a');
    await until(() => pushed.length === 2, { timeoutMs: 20_000, what: 'the needs-auth push' });
    await writeEntryElsewhere(dir, 'a'); // once more: the status is the same, nothing pushed
    await until(() => q.statusCalls >= 3, { timeoutMs: 20_000, what: 'the second check' });
    await sub.settled();
    assert.deepEqual(byServer(pushed, 'a'), ['connected:init', 'needs-auth:write-back']);
  });

  it('no duplicate pushes: events and other helpers answers with the same statuses push nothing', async (t) => {
    keepAlive(t);
    const dir = tmp(t);
    const q = fakeQuery({ a: 'needs-auth', b: 'connected' });
    const { sub, pushed } = watch(t, q, { configDir: dir, watch: false });
    await sub.settled();
    for (let i = 0; i < 5; i++) addon.invalidateNeedsAuth(undefined, { configDir: dir });
    await until(() => q.statusCalls >= 2, { what: 'a check after the events' });
    await sub.settled();
    assert.equal(pushed.length, 2);
    assert.ok(q.statusCalls <= 1 + 5, `at most one check per event (${q.statusCalls} checks)`);
    // A change, then many events: one push.
    q.statuses.b = 'failed';
    for (let i = 0; i < 5; i++) addon.invalidateNeedsAuth('b', { configDir: dir });
    await until(() => pushed.length === 3, { what: 'the failed push' });
    await delay(50);
    await sub.settled();
    assert.deepEqual(byServer(pushed, 'b'), ['connected:init', 'failed:invalidated']);
  });

  it('an older answer arriving after a newer one does not undo it', async (t) => {
    keepAlive(t);
    const dir = tmp(t);
    const q = fakeQuery({ a: 'needs-auth' });
    const { sub, pushed } = watch(t, q, { configDir: dir, watch: false });
    await sub.settled();
    const release = q.hold();
    addon.invalidateNeedsAuth('a', { configDir: dir }); // our check: sent now, answered last
    await until(() => q.statusCalls === 2, { what: 'the held check' });
    q.unhold();
    q.statuses.a = 'connected';
    // Another helper of this package asks the same session and gets the newer state first.
    assert.equal((await sessionStatuses(q, 5_000, 'test'))[0].status, 'connected');
    assert.deepEqual(byServer(pushed, 'a'), ['needs-auth:init', 'connected:invalidated'], 'applied without asking');
    release();
    await sub.settled();
    assert.deepEqual(
      byServer(pushed, 'a'),
      ['needs-auth:init', 'connected:invalidated'],
      'the older answer is dropped',
    );
  });

  it('bounded settle: a server stuck pending is asked about settleChecks more times, then left until the next event', async (t) => {
    keepAlive(t);
    const dir = tmp(t);
    const q = fakeQuery({ a: 'pending', b: 'connected' });
    const { sub, pushed } = watch(t, q, { configDir: dir, watch: false, settleIntervalMs: 5, settleChecks: 4 });
    await sub.settled();
    assert.equal(q.statusCalls, 1 + 4, 'the first check and 4 settle checks');
    await delay(100);
    assert.equal(q.statusCalls, 5, 'then nothing until an event');
    q.statuses.a = 'connected';
    addon.invalidateNeedsAuth('b', { configDir: dir });
    await until(() => pushed.length === 3, { what: 'the settled push' });
    await sub.settled();
    assert.deepEqual(byServer(pushed, 'a'), ['pending:init', 'connected:settled']);
    assert.equal(q.statusCalls, 6, 'one check: nothing pending any more');
  });

  it('bounded settle in time: settleTimeoutMs ends the loop before settleChecks', async (t) => {
    keepAlive(t);
    const dir = tmp(t);
    const q = fakeQuery({ a: 'pending' });
    const { sub } = watch(t, q, {
      configDir: dir,
      watch: false,
      settleIntervalMs: 20,
      settleChecks: 100_000,
      settleTimeoutMs: 200,
    });
    await sub.settled();
    assert.ok(q.statusCalls > 1 && q.statusCalls < 100_000, `${q.statusCalls} checks`);
    const calls = q.statusCalls;
    await delay(100);
    assert.equal(q.statusCalls, calls);
  });

  it('a pending server that settles is pushed as it lands', async (t) => {
    keepAlive(t);
    const dir = tmp(t);
    const q = fakeQuery({ a: 'pending' });
    const { sub, pushed } = watch(t, q, { configDir: dir, watch: false, settleIntervalMs: 5 });
    await until(() => q.statusCalls >= 3, { what: 'settle checks' });
    q.statuses.a = 'connected';
    await until(() => pushed.length === 2, { what: 'the settled push' });
    await sub.settled();
    assert.deepEqual(byServer(pushed, 'a'), ['pending:init', 'connected:settled']);
  });

  it('closed by options.signal: no push after, not even of an answer already on its way', async (t) => {
    keepAlive(t);
    const dir = tmp(t);
    const ac = new AbortController();
    const q = fakeQuery({ a: 'needs-auth' });
    const { sub, pushed } = watch(t, q, { configDir: dir, watch: false, signal: ac.signal });
    await sub.settled();
    const release = q.hold();
    q.statuses.a = 'connected';
    addon.invalidateNeedsAuth('a', { configDir: dir });
    await until(() => q.statusCalls === 2, { what: 'the held check' });
    ac.abort();
    assert.equal(sub.closed, true);
    release();
    await sub.settled();
    addon.invalidateNeedsAuth('a', { configDir: dir });
    await delay(50);
    assert.deepEqual(byServer(pushed, 'a'), ['needs-auth:init']);
    assert.equal(q.statusCalls, 2, 'no check after the abort');
  });

  it('closed by [Symbol.dispose] (using): no push after; an aborted signal gives a closed subscription', async (t) => {
    keepAlive(t);
    const dir = tmp(t);
    const q = fakeQuery({ a: 'needs-auth' });
    const { sub, pushed } = watch(t, q, { configDir: dir, watch: false });
    await sub.settled();
    const release = q.hold();
    q.statuses.a = 'connected';
    addon.invalidateNeedsAuth('a', { configDir: dir });
    await until(() => q.statusCalls === 2, { what: 'the held check' });
    sub[Symbol.dispose]();
    assert.equal(sub.closed, true);
    release();
    await sub.settled();
    await delay(50);
    assert.deepEqual(byServer(pushed, 'a'), ['needs-auth:init']);
    sub.close(); // idempotent

    const ac = new AbortController();
    ac.abort();
    const q2 = fakeQuery({ a: 'connected' });
    const { sub: sub2, pushed: pushed2 } = watch(t, q2, { configDir: dir, signal: ac.signal });
    assert.equal(sub2.closed, true);
    await delay(20);
    assert.equal(q2.statusCalls, 0);
    assert.deepEqual(pushed2, []);
  });

  it('closes itself when the session ends (its mcpServerStatus() rejects), without a warning', async (t) => {
    const dir = tmp(t);
    const warnings = collectWarnings(t);
    const q = fakeQuery({ a: 'connected' });
    const { sub } = watch(t, q, { configDir: dir, watch: false });
    await sub.settled();
    q.ended = true;
    addon.invalidateNeedsAuth('a', { configDir: dir });
    await until(() => sub.closed, { what: 'the subscription to close' });
    assert.deepEqual(warnings, []);
  });

  it('a callback that throws becomes a warning; the other servers are still pushed', async (t) => {
    const dir = tmp(t);
    const warnings = collectWarnings(t);
    const q = fakeQuery({ a: 'connected', b: 'failed' });
    const seen = [];
    const sub = onServerStatus(
      q,
      (e) => {
        seen.push(e.server);
        if (e.server === 'a') throw new Error('host bug');
      },
      { configDir: dir, watch: false },
    );
    t.after(() => sub.close());
    await sub.settled();
    await until(() => warnings.length === 1, { what: 'the warning' });
    assert.deepEqual(seen, ['a', 'b']);
    assert.match(warnings[0], /the callback threw: host bug/);
  });

  it('refresh() asks at once, for a change this package cannot see', async (t) => {
    const dir = tmp(t);
    const q = fakeQuery({ a: 'needs-auth' });
    const { sub, pushed } = watch(t, q, { configDir: dir, watch: false });
    await sub.settled();
    q.statuses.a = 'disabled';
    q.statuses.n = 'connected';
    await sub.refresh();
    assert.deepEqual(
      pushed.slice(1).map((e) => `${e.server}:${e.status}:${e.reason}`),
      ['a:disabled:changed', 'n:connected:added'],
    );
    delete q.statuses.n;
    await sub.refresh();
    assert.deepEqual(
      pushed.slice(3).map((e) => `${e.server}:${e.status}:${e.previous}`),
      ['n:removed:connected'],
    );
  });

  it('bad arguments: ERR_INVALID_ARGUMENT naming the argument or option', () => {
    const q = fakeQuery({});
    const bad = (args, what) =>
      assert.throws(
        () => onServerStatus(...args),
        (err) => err.code === 'ERR_INVALID_ARGUMENT' && err.message.includes(what),
        what,
      );
    bad([{}, () => {}], 'mcpServerStatus');
    bad([null, () => {}], 'query');
    bad([q, undefined], 'callback');
    bad([q, () => {}, 5], 'options');
    bad([q, () => {}, { configDir: 5 }], 'options.configDir');
    bad([q, () => {}, { env: 'x' }], 'options.env');
    bad([q, () => {}, { credentials: 'disk' }], 'options.credentials');
    bad([q, () => {}, { signal: {} }], 'options.signal');
    bad([q, () => {}, { watch: 'yes' }], 'options.watch');
    bad([q, () => {}, { pollIntervalMs: '3' }], 'options.pollIntervalMs');
    bad([q, () => {}, { statusTimeoutMs: 0 }], 'options.statusTimeoutMs');
    bad([q, () => {}, { settleIntervalMs: -1 }], 'options.settleIntervalMs');
    bad([q, () => {}, { settleChecks: 1.5 }], 'options.settleChecks');
    bad([q, () => {}, { settleChecks: '3' }], 'options.settleChecks');
    bad([q, () => {}, { settleTimeoutMs: Number.NaN }], 'options.settleTimeoutMs');
    bad([q, () => {}, { serverConfigs: 'x' }], 'options.serverConfigs');
    bad([q, () => {}, { env: { CLAUDE_CONFIG_DIR: '' } }], "config dir is ''");
    assert.equal(q.statusCalls, 0);
  });
});
