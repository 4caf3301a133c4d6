'use strict';
// End to end, against the REAL Claude Code 2.1.108 CLI and Agent SDK 0.2.104, fully offline on
// 127.0.0.1: the bug (a sign-in does not un-skip a server with a needs-auth entry) and each way
// this package fixes it. Every test has its own temp HOME and its own protected MCP server, and
// stops everything it started. The fixture server's request log is the ground truth.
//
//   node --test __test__/e2e.test.js

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');

const ROOT = path.resolve(__dirname, '..');
const addon = require(ROOT);
const sdk = require(path.join(ROOT, 'sdk.js'));
const { startMcpServer } = require('./fixtures/mcp-server.js');
const { makeHome, mcpAdd, mcpList, runPrint, claudeBin, killAll } = require('./helpers/claude.js');
const { writeFreshToken } = require('./helpers/credentials.js');

const NAME = 'protected';
const TOKEN = 'e2e-signed-in-token';
const isMcp = (r) => r.path === '/mcp';
const delay = (ms) => new Promise((r) => setTimeout(r, ms));

/** A protected server + temp HOME where `claude mcp list` has written the needs-auth entry. */
async function setup(t, homeOpts) {
  const srv = await startMcpServer();
  const h = makeHome(homeOpts);
  t.after(async () => {
    await srv.close();
    h.cleanup();
  });
  const add = await mcpAdd(h.env, NAME, srv.url);
  assert.equal(add.code, 0, add.stderr);
  const list = await mcpList(h.env);
  assert.equal(list.code, 0, list.stderr);
  assert.match(list.stdout, new RegExp(`${NAME}: .*Needs authentication`));
  const cache = JSON.parse(fs.readFileSync(h.cachePath, 'utf8'));
  assert.equal(typeof cache[NAME].timestamp, 'number', 'claude mcp list wrote the needs-auth entry');
  assert.equal(addon.isNeedsAuthCached(NAME, { configDir: h.configDir }), true);
  return { srv, h };
}

/** The sign-in as /mcp does it: the server now accepts the token, the credentials hold it. */
async function signIn(srv, h) {
  await delay(20); // the credentials must be saved after the entry (ms timestamps)
  srv.signIn(TOKEN);
  writeFreshToken(h.configDir, NAME, srv.url, { token: TOKEN });
}

function assertSkipped(r, srv, before, what) {
  assert.equal(r.timedOut, false, `${what}: timed out`);
  assert.equal(r.skipped, true, `${what}: debug log shows Skipping connection (cached needs-auth)`);
  assert.equal(r.connected, false, what);
  assert.equal(srv.count(isMcp) - before, 0, `${what}: zero /mcp requests`);
}

function assertConnected(r, srv, start, what) {
  assert.equal(r.timedOut, false, `${what}: timed out`);
  assert.equal(r.skipped, false, what);
  assert.equal(r.connected, true, `${what}: debug log shows Successfully connected`);
  const seen = srv.requests.slice(start).filter(isMcp);
  assert.ok(seen.some((x) => x.auth && x.rpc === 'initialize'), `${what}: initialize with the bearer`);
  assert.ok(seen.some((x) => x.auth && x.rpc === 'tools/list'), `${what}: tools/list with the bearer`);
  return seen.length;
}

/** A long-running node child; stdout/stderr collected by line. Closed by closing its stdin. */
function startHost(t, nodeArgs, env) {
  const child = spawn(process.execPath, nodeArgs, { env, cwd: env.HOME, stdio: ['pipe', 'pipe', 'pipe'] });
  const out = [];
  const err = [];
  const collect = (arr) => {
    let buf = '';
    return (d) => {
      buf += d;
      let i;
      while ((i = buf.indexOf('\n')) >= 0) { arr.push(buf.slice(0, i)); buf = buf.slice(i + 1); }
    };
  };
  child.stdout.on('data', collect(out));
  child.stderr.on('data', collect(err));
  const exited = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  const host = {
    child, out, err, exited,
    async waitFor(pred, what, timeoutMs = 15_000) {
      const end = Date.now() + timeoutMs;
      while (Date.now() < end) {
        const hit = pred();
        if (hit) return hit;
        if (child.exitCode !== null) break;
        await delay(25);
      }
      assert.fail(`host: timed out waiting for ${what}\nstdout:\n${out.join('\n')}\nstderr:\n${err.join('\n')}`);
    },
    async stop() {
      if (child.exitCode === null && child.signalCode === null) {
        child.stdin.end();
        const timer = setTimeout(() => { try { child.kill('SIGKILL'); } catch { /* gone */ } }, 3000);
        await exited;
        clearTimeout(timer);
      }
      return exited;
    },
  };
  t.after(() => host.stop());
  return host;
}

describe('end to end: Claude Code 2.1.108 + Agent SDK 0.2.104, offline', { timeout: 150_000 }, () => {
  it('1. the bug: after a sign-in, claude -p still skips the server and never dials it', async (t) => {
    const { srv, h } = await setup(t);
    await signIn(srv, h);
    const before = srv.count(isMcp);
    const r = await runPrint(h.env, NAME);
    assertSkipped(r, srv, before, 'claude -p after sign-in');
    t.diagnostic(`claude -p ${r.ms} ms; /mcp requests: 0`);
  });

  it('2a. the fix, new process: purgeStale() then claude -p connects', async (t) => {
    const { srv, h } = await setup(t);
    await signIn(srv, h);
    const purged = addon.purgeStale({ configDir: h.configDir });
    assert.deepEqual(purged, [{ server: NAME, reason: 'superseded' }]);
    const start = srv.requests.length;
    const r = await runPrint(h.env, NAME);
    const n = assertConnected(r, srv, start, 'claude -p after purgeStale');
    t.diagnostic(`connected; /mcp requests: ${n}`);
  });

  it('2b. the fix, new process: prepareQuery(options with env) then claude -p connects', async (t) => {
    const { srv, h } = await setup(t, { configDir: true }); // CLAUDE_CONFIG_DIR set in the env
    await signIn(srv, h);
    const queryOptions = { env: h.env, hooks: { PreToolUse: [] } };
    assert.equal(sdk.configDirFor(queryOptions), h.configDir);
    assert.equal(sdk.prepareQuery(queryOptions), queryOptions);
    assert.equal(fs.existsSync(h.cachePath) && NAME in JSON.parse(fs.readFileSync(h.cachePath, 'utf8')), false,
      'the superseded entry is gone');
    const start = srv.requests.length;
    const r = await runPrint(h.env, NAME);
    const n = assertConnected(r, srv, start, 'claude -p after prepareQuery');
    t.diagnostic(`connected; /mcp requests: ${n}`);
  });

  it('3. the fix, automatic: a running host subscribed with onAuthChanged; the next claude -p connects', async (t) => {
    const { srv, h } = await setup(t);
    const host = startHost(t, [path.join(__dirname, 'fixtures', 'e2e-host.js'), 'subscribe'], h.env);
    const sub = JSON.parse(await host.waitFor(() => host.out.find((l) => l.includes('"subscribed"')), 'subscribed'));
    assert.equal(sub.configDir, h.configDir);
    await signIn(srv, h);
    const ev = JSON.parse(await host.waitFor(
      () => host.out.find((l) => l.includes('"credentials-changed"')), 'the credentials-changed event'));
    assert.deepEqual(ev.servers, [NAME]);
    assert.deepEqual(ev.cached, [], 'the entry was removed before the callback ran');
    const start = srv.requests.length;
    const r = await runPrint(h.env, NAME);
    const n = assertConnected(r, srv, start, 'claude -p with a subscribed host');
    t.diagnostic(`connected; /mcp requests: ${n}`);
  });

  it('4. the fix, live session: reconnectOnAuthChange brings a needs-auth SDK session to connected', async (t) => {
    const { srv, h } = await setup(t);
    const { query } = await import(path.join(ROOT, 'node_modules', '@anthropic-ai', 'claude-agent-sdk', 'sdk.mjs'));
    let release;
    const hold = new Promise((r) => { release = r; });
    async function* input() { await hold; } // keeps the session open with no model call
    const q = query({
      prompt: input(),
      options: { env: h.env, cwd: h.home, pathToClaudeCodeExecutable: claudeBin(), executable: 'node' },
    });
    let drained = null;
    const drain = async () => {
      if (!drained) drained = (async () => { try { for await (const _ of q) { /* drain */ } } catch { /* model call fails offline */ } })();
      return drained;
    };
    t.after(async () => { release(); await Promise.race([drain(), delay(10_000)]); });

    const status = async () => (await q.mcpServerStatus()).find((s) => s.name === NAME);
    let s = await status();
    for (let i = 0; i < 40 && s && s.status === 'pending'; i++) { await delay(250); s = await status(); }
    assert.equal(s && s.status, 'needs-auth', 'the session skipped the server');
    const before = srv.count(isMcp);

    const outcomes = [];
    const sub = reconnectOnAuthChangeFor(q, h, outcomes);
    t.after(() => sub.close());
    await signIn(srv, h);
    const end = Date.now() + 20_000;
    while (outcomes.length === 0 && Date.now() < end) await delay(50);
    assert.equal(outcomes.length, 1, 'one reconnect outcome');
    assert.equal(outcomes[0].server, NAME);
    assert.equal(outcomes[0].ok, true, String(outcomes[0].error));
    s = await status();
    assert.equal(s.status, 'connected', 'same session, now connected');
    assert.deepEqual(s.tools.map((x) => x.name), ['echo']);
    const seen = srv.requests.slice(0).filter(isMcp).slice(before);
    assert.ok(seen.some((x) => x.auth && x.rpc === 'tools/list'), 'the session dialled with the bearer');
    t.diagnostic(`reconnected after ${outcomes[0].attempts} attempt(s); /mcp requests: ${seen.length}`);

    // When the session ends, the subscription closes itself on the next event.
    release();
    await drain();
    addon.invalidateNeedsAuth(NAME, { configDir: h.configDir });
    const end2 = Date.now() + 10_000;
    while (!sub.closed && Date.now() < end2) await delay(25);
    assert.equal(sub.closed, true, 'closed once the query ended');
  });

  it('5. negative: with no sign-in, purgeStale removes nothing and the server stays skipped', async (t) => {
    const { srv, h } = await setup(t);
    assert.deepEqual(addon.purgeStale({ configDir: h.configDir }), []);
    assert.equal(addon.isNeedsAuthCached(NAME, { configDir: h.configDir }), true);
    const before = srv.count(isMcp);
    const r = await runPrint(h.env, NAME);
    assertSkipped(r, srv, before, 'claude -p without sign-in');
  });

  it('6. the preload: a host started with node -r register.js; the Claude Code process it starts connects', async (t) => {
    const { srv, h } = await setup(t);
    const env = { ...h.env, MCP_NEEDS_AUTH_DEBUG: '1' };
    const host = startHost(t, ['-r', path.join(ROOT, 'register.js'), path.join(__dirname, 'fixtures', 'e2e-host.js'), 'idle'], env);
    await host.waitFor(() => host.out.find((l) => l.includes('"ready"')), 'ready');
    await host.waitFor(() => host.err.find((l) => l.startsWith('mcp-needs-auth: watching ')), 'the register subscription');
    assert.ok(host.err.includes('mcp-needs-auth: purged nothing (' + h.configDir + ')'), host.err.join('\n'));
    await signIn(srv, h);
    await host.waitFor(() => host.err.find((l) => l === `mcp-needs-auth: credentials changed: ${NAME}; entries removed`),
      'the credentials-changed line');
    host.child.stdin.write('run\n');
    const line = await host.waitFor(() => host.out.find((l) => l.includes('"ran"')), 'the host to run claude -p', 60_000);
    const ran = JSON.parse(line);
    assert.equal(ran.connected, true, `the child connected:\n${ran.debugTail}`);
    assert.equal(ran.skipped, false);
    const seen = srv.requests.filter(isMcp).filter((x) => x.auth);
    assert.ok(seen.some((x) => x.rpc === 'tools/list'), 'tools/list with the bearer');
    t.diagnostic(`connected; authorised /mcp requests: ${seen.length}`);
  });
});

function reconnectOnAuthChangeFor(q, h, outcomes) {
  return sdk.reconnectOnAuthChange(q, { env: h.env, onReconnect: (o) => outcomes.push(o) });
}

process.on('exit', killAll);
