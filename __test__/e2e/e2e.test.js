'use strict';
// End to end, against the REAL Claude Code of both stacks (support/stacks.js), fully offline on
// 127.0.0.1: the seed's (Claude Code 2.1.108 cli.js, Agent SDK 0.2.104, claude-agent-acp 0.29.2)
// and today's (the npm CLI Claude Code 2.1.332; Agent SDK 0.3.334, whose sessions run its own
// Claude Code 2.1.334; claude-agent-acp 0.101.0). The stacks are fetched on first use.
// The bug (a sign-in does not un-skip a server with a needs-auth entry), Claude Code's second skip
// rule (the token-less stub), and each way this package fixes it, on each stack. Every test has
// its own temp HOME and its own protected MCP server, and stops everything it started. The
// fixture server's request log is the ground truth.
//
//   node --test __test__/e2e/e2e.test.js
//   node --test --test-name-pattern=0.3.334 __test__/e2e/e2e.test.js     (one stack)

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');

const ROOT = path.resolve(__dirname, '..', '..');
const addon = require(ROOT);
const sdk = require(path.join(ROOT, 'sdk.js'));
const { startMcpServer } = require('../../support/mcp-server.js');
const { makeHome, leftoverHomes, mcpAdd, mcpList, mcpStartup, runPrint, killAll } = require('../../support/claude.js');
const { openSession } = require('../../support/session.js');
const { STACKS, stackProblems, ensureStacks, stacksEnv, STACK_HOOK_TIMEOUT_MS } = require('../../support/stacks.js');
const { startAcp } = require('../helpers/acp.js');
const { credentialKey, credentialsPath, readCredentials, writeFreshToken } = require('../../support/credentials.js');
const { until } = require('../helpers/wait.js');

const NAME = 'protected';
const TOKEN = 'e2e-signed-in-token';
const isMcp = (r) => r.path === '/mcp';
const delay = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * A protected server + temp HOME where the stack's `claude mcp add -s user` registered it (unless
 * `add` is false: the server then only exists where a caller passes it, as an ACP client does).
 * `server`: startMcpServer's options.
 * `stops`: what the test starts later (hosts, agents, sessions) is stopped, last first, before
 * the server closes and the HOME those processes write into is removed.
 */
async function prepare(t, stack, homeOpts, { add = true, server } = {}) {
  const srv = await startMcpServer(server);
  const h = makeHome(homeOpts);
  const stops = [];
  t.after(async () => {
    try {
      for (const stop of stops.reverse()) await stop();
    } finally {
      await srv.close();
      h.cleanup();
    }
  });
  if (add) {
    const r = await mcpAdd(h.env, NAME, srv.url, { stack });
    assert.equal(r.code, 0, r.stderr);
  }
  return { srv, h, stops };
}

/**
 * prepare(), then a `claude -p` whose start-up loop dialled the server and met its 401: Claude
 * Code wrote the needs-auth entry (and a token-less credentials stub), as for the seed's SDK
 * sessions. (`claude mcp list` writes the same, but 2.1.108 does not await that write before it
 * exits, so on a loaded machine the entry can be missing: __test__/e2e/e2e-harness.test.js.)
 */
async function setup(t, stack, homeOpts, { fromClient = false } = {}) {
  const ctx = await prepare(t, stack, homeOpts, { add: !fromClient });
  const extraArgs = fromClient
    ? ['--mcp-config', JSON.stringify({ mcpServers: { [NAME]: { type: 'http', url: ctx.srv.url } } })]
    : [];
  const r = await runPrint(ctx.h.env, NAME, { stack, extraArgs });
  assert.equal(r.timedOut, false, 'claude -p timed out');
  assert.equal(
    r.needsAuth,
    true,
    `claude -p: the server needs auth\n${r.debug
      .split('\n')
      .filter((l) => l.includes(NAME))
      .join('\n')}`,
  );
  const cache = JSON.parse(fs.readFileSync(ctx.h.cachePath, 'utf8'));
  assert.equal(typeof cache[NAME].timestamp, 'number', 'Claude Code wrote the needs-auth entry');
  assert.equal(addon.isNeedsAuthCached(NAME, { configDir: ctx.h.configDir }), true);
  return ctx;
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
  assert.ok(
    seen.some((x) => x.auth && x.rpc === 'initialize'),
    `${what}: initialize with the bearer`,
  );
  assert.ok(
    seen.some((x) => x.auth && x.rpc === 'tools/list'),
    `${what}: tools/list with the bearer`,
  );
  return seen.length;
}

/** `until` with this file's bound and poll interval. */
const waitUntil = (pred, what, timeoutMs = 30_000) => until(pred, { what, timeoutMs, stepMs: 50 });

/** What the start-up loop of the Claude Code writing `debugFile` did with NAME, once it says. */
function startupOutcome(debugFile) {
  let text = '';
  try {
    text = fs.readFileSync(debugFile, 'utf8');
  } catch {
    return null;
  }
  const o = mcpStartup(text, NAME);
  return o.skipped ? 'skipped' : o.connected ? 'connected' : null;
}

/** A long-running node child; stdout/stderr collected by line. Closed by closing its stdin. */
function startHost(stops, nodeArgs, env) {
  const child = spawn(process.execPath, nodeArgs, { env, cwd: env.HOME, stdio: ['pipe', 'pipe', 'pipe'] });
  const out = [];
  const err = [];
  const collect = (arr) => {
    let buf = '';
    return (d) => {
      buf += d;
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        arr.push(buf.slice(0, i));
        buf = buf.slice(i + 1);
      }
    };
  };
  child.stdout.on('data', collect(out));
  child.stderr.on('data', collect(err));
  const exited = new Promise((resolve) => child.on('close', (code, signal) => resolve({ code, signal })));
  const host = {
    child,
    out,
    err,
    exited,
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
        const timer = setTimeout(() => {
          try {
            child.kill('SIGKILL');
          } catch {
            /* gone */
          }
        }, 3000);
        await exited;
        clearTimeout(timer);
      }
      return exited;
    },
  };
  stops.push(() => host.stop());
  return host;
}

// Both stacks, fetched on first use (exact pins, into the cache outside the repo).
before(() => ensureStacks(), { timeout: STACK_HOOK_TIMEOUT_MS });
// Every HOME is removed once its test ran, and stays removed: no Claude Code outlived its test.
after(() => assert.deepEqual(leftoverHomes(), [], 'temp HOMEs left behind'));

for (const stack of STACKS) {
  describe(`end to end: ${stack.title}, offline`, { timeout: 360_000 }, () => {
    const print = (env, opts) => runPrint(env, NAME, { stack, ...opts });
    /** A new `claude -p` of this stack dials the server with the bearer and connects. */
    const printConnects = async (t, srv, h, what) => {
      const start = srv.requests.length;
      const r = await print(h.env);
      const n = assertConnected(r, srv, start, what);
      t.diagnostic(`connected; /mcp requests: ${n}`);
    };

    before(() => {
      assert.deepEqual(stackProblems(stack), [], `the ${stack.name} stack is installed as pinned`);
    });

    it('1. the bug: after a sign-in, claude -p still skips the server and never dials it', async (t) => {
      const { srv, h } = await setup(t, stack);
      await signIn(srv, h);
      const before = srv.count(isMcp);
      const r = await print(h.env);
      assertSkipped(r, srv, before, 'claude -p after sign-in');
      t.diagnostic(`claude -p ${r.ms} ms; /mcp requests: 0`);
    });

    it('2a. the fix, new process: purgeStale() then claude -p connects', async (t) => {
      const { srv, h } = await setup(t, stack);
      await signIn(srv, h);
      const purged = addon.purgeStale({ configDir: h.configDir });
      assert.deepEqual(purged, [{ server: NAME, reason: 'superseded' }]);
      await printConnects(t, srv, h, 'claude -p after purgeStale');
    });

    it('2b. the fix, new process: prepareQuery(options with env) then claude -p connects', async (t) => {
      const { srv, h } = await setup(t, stack, { configDir: true }); // CLAUDE_CONFIG_DIR set in the env
      await signIn(srv, h);
      const queryOptions = { env: h.env, hooks: { PreToolUse: [] } };
      assert.equal(sdk.configDirFor(queryOptions), h.configDir);
      assert.equal(sdk.prepareQuery(queryOptions), queryOptions);
      assert.equal(
        fs.existsSync(h.cachePath) && NAME in JSON.parse(fs.readFileSync(h.cachePath, 'utf8')),
        false,
        'the superseded entry is gone',
      );
      await printConnects(t, srv, h, 'claude -p after prepareQuery');
    });

    it('3. the fix, automatic: a running host subscribed with onAuthChanged; the next claude -p connects', async (t) => {
      const { srv, h, stops } = await setup(t, stack);
      const host = startHost(stops, [path.join(__dirname, '..', 'fixtures', 'e2e-host.js'), 'subscribe'], h.env);
      const sub = JSON.parse(await host.waitFor(() => host.out.find((l) => l.includes('"subscribed"')), 'subscribed'));
      assert.equal(sub.configDir, h.configDir);
      await signIn(srv, h);
      const ev = JSON.parse(
        await host.waitFor(
          () => host.out.find((l) => l.includes('"credentials-changed"')),
          'the credentials-changed event',
        ),
      );
      assert.deepEqual(ev.servers, [NAME]);
      assert.deepEqual(ev.cached, [], 'the entry was removed before the callback ran');
      await printConnects(t, srv, h, 'claude -p with a subscribed host');
    });

    it('4. the fix, live session: reconnectOnAuthChange brings a needs-auth SDK session to connected', async (t) => {
      const { srv, h, stops } = await setup(t, stack);
      const beforeSession = srv.count(isMcp);
      // A session with no model call; stopped (its Claude Code exited) before the HOME goes.
      const session = await openSession(stack, h.env);
      stops.push(() => session.close());
      const q = session.q;

      const status = async () => (await q.mcpServerStatus()).find((s) => s.name === NAME);
      let s = await status();
      for (let i = 0; i < 40 && s && s.status === 'pending'; i++) {
        await delay(250);
        s = await status();
      }
      assert.equal(s?.status, 'needs-auth', 'the session skipped the server');
      const before = srv.count(isMcp);
      assert.equal(before, beforeSession, 'without dialling it');

      const outcomes = [];
      const sub = reconnectOnAuthChangeFor(q, h, outcomes);
      stops.push(() => sub.close());
      await signIn(srv, h);
      const end = Date.now() + 20_000;
      while (outcomes.length === 0 && Date.now() < end) await delay(50);
      assert.equal(outcomes.length, 1, 'one reconnect outcome');
      assert.equal(outcomes[0].server, NAME);
      assert.equal(outcomes[0].ok, true, String(outcomes[0].error));
      s = await status();
      assert.equal(s.status, 'connected', 'same session, now connected');
      assert.deepEqual(
        s.tools.map((x) => x.name),
        ['echo'],
      );
      const seen = srv.requests.filter(isMcp).slice(before);
      assert.ok(
        seen.some((x) => x.auth && x.rpc === 'tools/list'),
        'the session dialled with the bearer',
      );
      t.diagnostic(`reconnected after ${outcomes[0].attempts} attempt(s); /mcp requests: ${seen.length}`);

      // When the session ends, the subscription closes itself on the next event.
      await session.endPrompt();
      addon.invalidateNeedsAuth(NAME, { configDir: h.configDir });
      const end2 = Date.now() + 10_000;
      while (!sub.closed && Date.now() < end2) await delay(25);
      assert.equal(sub.closed, true, 'closed once the query ended');
    });

    it('4c. prepareQuery on a live session: a sign-in saved after it started reconnects the server at the next prompt', async (t) => {
      // No reconnectOnAuthChange: prepareQuery's own hooks are what reconnects. The host passes
      // the server in options.mcpServers (0.3.334 delivers it over stdin, 0.2.104 on argv).
      const { srv, h, stops } = await prepare(t, stack, { configDir: true }, { add: false });
      const outcomes = [];
      const prompts = [];
      let session;
      const options = sdk.prepareQuery(
        {
          env: h.env,
          mcpServers: { [NAME]: { type: 'http', url: srv.url } },
          // The host's own hook, kept: it shows the prompt reached Claude Code's hooks.
          hooks: {
            UserPromptSubmit: [
              {
                hooks: [
                  async () => {
                    prompts.push(Date.now());
                    return { continue: true };
                  },
                ],
              },
            ],
          },
        },
        { query: () => session?.q, onReconnect: (o) => outcomes.push(o) },
      );
      session = await openSession(stack, h.env, options);
      stops.push(() => session.close());
      const s0 = await session.settled(NAME);
      assert.equal(s0?.status, 'needs-auth', 'the session met the 401');
      assert.equal(outcomes.length, 0, 'nothing reconnected before a sign-in');

      await signIn(srv, h); // saved elsewhere; nothing in this process listens for it
      const before = srv.count(isMcp);
      session.prompt('hi');
      await waitUntil(() => prompts.length === 1, 'the UserPromptSubmit hooks ran');
      await waitUntil(() => outcomes.length > 0, "prepareQuery's hook reconnected the server");
      assert.equal(outcomes.length, 1, 'one reconnect');
      assert.equal(outcomes[0].server, NAME);
      assert.equal(outcomes[0].ok, true, String(outcomes[0].error));
      const s1 = await session.status(NAME);
      assert.equal(s1.status, 'connected', 'same session, now connected');
      const seen = srv.requests.filter(isMcp).slice(before);
      assert.ok(
        seen.some((x) => x.auth && x.rpc === 'tools/list'),
        'the session dialled with the bearer',
      );
      assert.equal(addon.isNeedsAuthCached(NAME, { configDir: h.configDir }), false, 'no entry left');

      // A later prompt: the hook runs again and, the server connected, reconnects nothing.
      session.prompt('again');
      await waitUntil(() => prompts.length === 2, 'the second prompt ran the hooks');
      assert.equal((await session.status(NAME)).status, 'connected');
      assert.equal(outcomes.length, 1, 'still one reconnect');
      t.diagnostic(`reconnected at the prompt; /mcp requests after the sign-in: ${seen.length}`);
    });

    it('4b. live session, a sign-in while the server is still connecting: reconnectOnAuthChange waits, then reconnects it', async (t) => {
      // The session's first connect is held at the server until the sign-in was heard, so the
      // event finds the server `pending`; released, that connect (started with no token) meets
      // the 401 and the server settles in needs-auth, with the fresh token in the store.
      let holding = true;
      let held = 0;
      let release;
      const released = new Promise((r) => {
        release = r;
      });
      const beforeMcp = async () => {
        if (!holding) return;
        held++;
        await Promise.race([released, delay(30_000)]);
      };
      const { srv, h, stops } = await prepare(t, stack, undefined, { server: { beforeMcp } });
      stops.push(() => release()); // (stops run last first: this one runs last)
      const first = srv.requests.length;
      const session = await openSession(stack, h.env);
      stops.push(() => session.close());
      // The subscription's view of the session, counting its status checks (the test's own go direct).
      let checks = 0;
      const seenBySub = {
        mcpServerStatus: () => {
          checks++;
          return session.q.mcpServerStatus();
        },
        reconnectMcpServer: (name) => session.q.reconnectMcpServer(name),
      };
      const outcomes = [];
      const sub = reconnectOnAuthChangeFor(seenBySub, h, outcomes);
      stops.push(() => sub.close());
      await waitUntil(() => held > 0, "the session's connect at the server");
      assert.equal((await session.status(NAME))?.status, 'pending', 'the server is connecting');

      await delay(20); // the credentials are saved after anything the connect wrote (ms timestamps)
      srv.signIn(TOKEN);
      // No refresh token: a refresh on the 401 cannot rescue the old connect (the usual rule decides).
      writeFreshToken(h.configDir, NAME, srv.url, { token: TOKEN, refreshToken: null });
      // The subscription heard it and looked: the server was still pending (the connect is held).
      await waitUntil(() => checks > 0, "the subscription's status check after the sign-in");
      const start = srv.requests.length;
      holding = false;
      release();

      await waitUntil(() => outcomes.length > 0, 'the reconnect outcome', 40_000);
      assert.equal(outcomes[0].server, NAME);
      assert.equal(outcomes[0].ok, true, String(outcomes[0].error));
      const s = await session.status(NAME);
      assert.equal(s.status, 'connected', 'same session, now connected');
      const seen = srv.requests.slice(start).filter(isMcp);
      assert.ok(
        srv.requests.slice(first, start).some((x) => isMcp(x) && !x.auth),
        'the held connect had no bearer',
      );
      assert.ok(
        seen.some((x) => x.auth && x.rpc === 'tools/list'),
        'the reconnect dialled with the bearer',
      );
      t.diagnostic(`reconnected after ${outcomes[0].attempts} attempt(s); /mcp requests: ${seen.length}`);
      // The entry the held connect wrote after the sign-in is gone (2.1.332 removes it on the
      // successful connect itself; on 2.1.108 the reconnect's success drops it), so a new
      // Claude Code process dials the server.
      const entries = fs.existsSync(h.cachePath) ? JSON.parse(fs.readFileSync(h.cachePath, 'utf8')) : {};
      assert.equal(entries[NAME], undefined, 'no needs-auth entry is left for the connected server');
      assert.equal(addon.isNeedsAuthCached(NAME, { configDir: h.configDir }), false);
    });

    it('5. negative: with no sign-in, purgeStale removes nothing and the server stays skipped', async (t) => {
      const { srv, h } = await setup(t, stack);
      assert.deepEqual(addon.purgeStale({ configDir: h.configDir }), []);
      assert.equal(addon.isNeedsAuthCached(NAME, { configDir: h.configDir }), true);
      const before = srv.count(isMcp);
      const r = await print(h.env);
      assertSkipped(r, srv, before, 'claude -p without sign-in');
    });

    it('6. the preload: a host started with node -r register.js; the Claude Code process it starts connects', async (t) => {
      const { srv, h, stops } = await setup(t, stack);
      // The host finds the stack's Claude Code as this process does (its HOME is the temp one).
      const env = { ...h.env, MCP_NEEDS_AUTH_DEBUG: '1', ...stacksEnv() };
      const host = startHost(
        stops,
        [
          '-r',
          path.join(ROOT, 'register.js'),
          path.join(__dirname, '..', 'fixtures', 'e2e-host.js'),
          'idle',
          NAME,
          stack.name,
        ],
        env,
      );
      await host.waitFor(() => host.out.find((l) => l.includes('"ready"')), 'ready');
      await host.waitFor(
        () => host.err.find((l) => l.startsWith('mcp-needs-auth: watching ')),
        'the register subscription',
      );
      assert.ok(host.err.includes(`mcp-needs-auth: purged nothing (${h.configDir})`), host.err.join('\n'));
      await signIn(srv, h);
      await host.waitFor(
        () => host.err.find((l) => l === `mcp-needs-auth: credentials changed: ${NAME}; entries removed`),
        'the credentials-changed line',
      );
      host.child.stdin.write('run\n');
      const line = await host.waitFor(
        () => host.out.find((l) => l.includes('"ran"')),
        'the host to run claude -p',
        60_000,
      );
      const ran = JSON.parse(line);
      assert.equal(ran.connected, true, `the child connected:\n${ran.debugTail}`);
      assert.equal(ran.skipped, false);
      const seen = srv.requests.filter(isMcp).filter((x) => x.auth);
      assert.ok(
        seen.some((x) => x.rpc === 'tools/list'),
        'tools/list with the bearer',
      );
      t.diagnostic(`connected; authorised /mcp requests: ${seen.length}`);
    });

    it('7. the token-less stub: removing the entry alone does not un-skip the server; the sign-in does', async (t) => {
      const { srv, h } = await prepare(t, stack);
      // `claude mcp list` on a 401 writes the stub (facts §3), and (not awaited on 2.1.108) the entry.
      const list = await mcpList(h.env, { stack });
      assert.equal(list.code, 0, list.stderr);
      assert.match(list.stdout, new RegExp(`${NAME}: .*Needs authentication`));
      const opts = { configDir: h.configDir };
      const key = credentialKey(NAME, { type: 'http', url: srv.url });
      const stub = readCredentials(h.configDir).mcpOAuth[key];
      assert.ok(stub, `claude mcp list left credentials under ${key}`);
      assert.equal(stub.accessToken, '');
      assert.equal(stub.refreshToken, undefined);
      assert.equal(stub.discoveryState.oauthMetadataFound, true);
      const windowed = Number.isFinite(stack.tokenlessStubWindowMs);
      assert.equal(
        typeof stub.discoveryState.tokenlessRejectedAt,
        windowed ? 'number' : 'undefined',
        windowed ? 'the stub records when it was rejected' : 'no rejection time: honoured forever',
      );

      // The usual workaround (delete the entry) is not enough: the stub is Claude Code's second rule.
      addon.invalidateNeedsAuth(NAME, opts);
      assert.equal(addon.isNeedsAuthCached(NAME, opts), false);
      let d = addon.diagnose(NAME, opts);
      assert.equal(d.skipped, true, 'diagnose: still skipped');
      assert.deepEqual(
        d.reasons.map((x) => x.kind),
        ['tokenless-stub'],
      );
      assert.equal(d.credentials.tokenlessStub, true);
      assert.deepEqual(addon.purgeStale(opts), [], 'a stub is no sign-in: nothing is superseded');
      let before = srv.count(isMcp);
      let r = await print(h.env);
      assertSkipped(r, srv, before, 'claude -p with the stub and no entry');

      let expectPurged = [];
      if (windowed) {
        // 2.1.332 honours the stub only for its window after tokenlessRejectedAt: past it, it dials.
        const doc = readCredentials(h.configDir);
        doc.mcpOAuth[key].discoveryState.tokenlessRejectedAt = Date.now() - stack.tokenlessStubWindowMs - 60_000;
        fs.writeFileSync(credentialsPath(h.configDir), JSON.stringify(doc), { mode: 0o600 });
        d = addon.diagnose(NAME, opts);
        assert.equal(d.skipped, false, 'diagnose: an expired stub does not count');
        before = srv.count(isMcp);
        r = await print(h.env);
        assert.equal(r.timedOut, false);
        assert.equal(r.skipped, false, 'claude -p: the expired stub is not honoured');
        assert.ok(srv.count(isMcp) - before > 0, 'claude -p dialled the server');
        assert.equal(addon.isNeedsAuthCached(NAME, opts), true, 'its 401 wrote a fresh entry');
        expectPurged = [{ server: NAME, reason: 'superseded' }];
      }

      // Signing in stores tokens in that same credentials entry: no stub, and the entry is stale.
      await signIn(srv, h);
      assert.deepEqual(addon.purgeStale(opts), expectPurged);
      d = addon.diagnose(NAME, opts);
      assert.equal(d.skipped, false, 'diagnose: dialled after the sign-in');
      assert.equal(d.credentials.tokenlessStub, false);
      await printConnects(t, srv, h, 'claude -p after the sign-in');
    });

    for (const fromClient of [false, true]) {
      const where = fromClient ? 'passed by the ACP client (as Zed does)' : "in the user's config";
      it(`8${fromClient ? 'b' : 'a'}. claude-agent-acp ${stack.acp.version} under node -r register.js, server ${where}: after a sign-in elsewhere its next session connects`, async (t) => {
        const { srv, h, stops } = await setup(t, stack, undefined, { fromClient });
        const acp = startAcp(stack, { ...h.env, MCP_NEEDS_AUTH_DEBUG: '1' }, { preload: true });
        stops.push(() => acp.stop());
        const init = await acp.request('initialize', { protocolVersion: 1, clientCapabilities: {} });
        assert.equal(init.agentInfo.version, stack.acp.version);
        await waitUntil(
          () => acp.stderr.includes(`mcp-needs-auth: watching ${h.configDir}`),
          'the register subscription',
        );
        assert.ok(acp.stderr.includes(`mcp-needs-auth: purged nothing (${h.configDir})`), acp.stderr.join('\n'));

        // One ACP session = one Claude Code child of the stack; its debug log says what start-up did.
        let sessions = 0;
        const newSession = async () => {
          const debugFile = path.join(h.home, `acp-session-${++sessions}.txt`);
          const res = await acp.request('session/new', {
            cwd: h.home,
            mcpServers: fromClient ? [{ type: 'http', name: NAME, url: srv.url, headers: [] }] : [],
            _meta: { claudeCode: { options: { extraArgs: { 'debug-file': debugFile } } } },
          });
          assert.equal(typeof res.sessionId, 'string');
          return waitUntil(() => startupOutcome(debugFile), `session ${sessions}'s start-up outcome`);
        };

        const before = srv.count(isMcp);
        assert.equal(await newSession(), 'skipped', 'before the sign-in, a new session skips the server');
        assert.equal(srv.count(isMcp) - before, 0, 'and never dials it');

        await signIn(srv, h);
        await waitUntil(
          () => acp.stderr.includes(`mcp-needs-auth: credentials changed: ${NAME}; entries removed`),
          'the register line for the sign-in',
        );
        const start = srv.requests.length;
        assert.equal(await newSession(), 'connected', 'after the sign-in, the next session connects');
        const authedToolsList = () =>
          srv.requests.slice(start).some((x) => isMcp(x) && x.auth && x.rpc === 'tools/list');
        await waitUntil(authedToolsList, "the session's tools/list with the bearer", 15_000);
        const seen = srv.requests.slice(start).filter(isMcp);
        t.diagnostic(`connected; /mcp requests: ${seen.length}`);
      });
    }
  });
}

function reconnectOnAuthChangeFor(q, h, outcomes) {
  return sdk.reconnectOnAuthChange(q, { env: h.env, onReconnect: (o) => outcomes.push(o) });
}

process.on('exit', killAll);
