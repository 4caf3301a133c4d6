'use strict';
// signIn() from mcp-needs-auth/sdk, end to end against the REAL Agent SDK + Claude Code stacks
// (0.2.104 + 2.1.108, and 0.3.334 + its native 2.1.334; their `claude` CLIs 2.1.108 and 2.1.332), offline on loopback. The fixture MCP
// server is also the OAuth authorization server; a test "user" follows authUrl with plain HTTP to
// Claude Code's own localhost callback (or stops at the host's redirect URI). Failure paths that
// need exact timing (time-out, abort during the request) run against a scripted query in
// __test__/unit/sign-in.test.js.
//
//   node --test __test__/e2e/sign-in.test.js

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..');
const addon = require(ROOT);
const sdk = require(path.join(ROOT, 'sdk.js'));
const { signIn } = sdk;
const { startMcpServer } = require('../../support/mcp-server.js');
const { makeHome, leftoverHomes } = require('../../support/claude.js');
const { STACKS, ensureStacks, STACK_HOOK_TIMEOUT_MS } = require('../../support/stacks.js');
const { runClaude, runPrint } = require('../../support/claude.js');
const { openSession } = require('../../support/session.js');
const { followAuthUrl } = require('../helpers/sign-in-stacks.js');
const { spySubscriptions } = require('../helpers/sdk.js');

const NAME = 'protected';
const STDIO = 'local-tool';
const delay = (ms) => new Promise((r) => setTimeout(r, ms));
const entryOf = (h) => {
  try {
    return JSON.parse(fs.readFileSync(h.cachePath, 'utf8'))[NAME];
  } catch {
    return undefined;
  }
};

async function rejectsWith(promise, code, what) {
  await assert.rejects(
    promise,
    (err) => {
      assert.equal(err.code, code, `${what}: ${err.message}`);
      return true;
    },
    what,
  );
}

/** No code, state or token of the flow in anything the host gets. */
function assertNoSecrets(value, callbackUrl, what, keys = ['code', 'state']) {
  const text = typeof value === 'string' ? value : JSON.stringify(value, Object.getOwnPropertyNames(value ?? {}));
  const u = new URL(callbackUrl);
  for (const k of keys) {
    const v = u.searchParams.get(k);
    if (v) assert.ok(!text.includes(v), `${what} carries the ${k}`);
  }
}

// Every HOME is removed once its test ran, and stays removed: no Claude Code outlived its test.
after(() => assert.deepEqual(leftoverHomes(), [], 'temp HOMEs left behind'));

// Both stacks, fetched on first use (exact pins, into the cache outside the repo).
before(() => ensureStacks(), { timeout: STACK_HOOK_TIMEOUT_MS });

for (const stack of STACKS) {
  const native = stack.name === 'current';
  describe(`signIn end to end: ${stack.title}`, { timeout: 240_000 }, () => {
    let srv;
    let h;

    /** A fresh server, HOME and session per test (a sign-in leaves tokens behind). */
    async function session(t, { stdio = false } = {}) {
      srv = await startMcpServer();
      h = makeHome();
      let sess = null;
      const mine = { srv, h };
      t.after(async () => {
        // the session first: its Claude Code writes into the HOME until it exits (close() waits)
        try {
          if (sess) await sess.close();
        } finally {
          await mine.srv.close();
          mine.h.cleanup();
        }
      });
      const add = await runClaude(h.env, ['mcp', 'add', '--transport', 'http', '-s', 'user', NAME, srv.url], { stack });
      assert.equal(add.code, 0, add.stderr);
      if (stdio) {
        const r = await runClaude(h.env, ['mcp', 'add', '-s', 'user', STDIO, '--', process.execPath, '-e', '0'], {
          stack,
        });
        assert.equal(r.code, 0, r.stderr);
      }
      const s = await openSession(stack, h.env);
      sess = s;
      const st = await s.settled(NAME);
      assert.equal(st?.status, 'needs-auth', 'the session reports the server as needs-auth');
      return s;
    }

    it('needs-auth -> signIn -> the user signs in -> completed: connected, entry gone, a new claude -p connects', async (t) => {
      const s = await session(t);
      for (let i = 0; i < 50 && entryOf(h) === undefined; i++) await delay(100);
      assert.equal(typeof entryOf(h)?.timestamp, 'number', 'the session wrote the needs-auth entry');
      const heard = [];
      const other = addon.onAuthChanged((ev) => heard.push(ev), { configDir: h.configDir, watch: false });
      t.after(() => other.close());
      const subs = spySubscriptions(t);

      const pending = await signIn(s.q, NAME, { env: h.env });
      assert.equal(pending.server, NAME);
      assert.match(pending.authUrl, new RegExp(`^${srv.base}/authorize\\?`));
      assert.deepEqual(Object.keys(pending).sort(), ['authUrl', 'completed', 'server', 'submitCallbackUrl']);
      const user = await followAuthUrl(pending.authUrl);
      assert.equal(user.status, 200, "Claude Code's callback page answered");
      assert.match(user.url, /^http:\/\/localhost:\d+\/callback\?/);

      const done = await pending.completed;
      assert.deepEqual(done, { server: NAME, status: 'connected' });
      assertNoSecrets(done, user.url, 'the result');
      assertNoSecrets(pending, user.url, 'the pending sign-in', ['code']); // authUrl carries the state
      assert.equal(srv.tokensIssued, 1, 'one code exchanged');
      assert.equal((await s.status(NAME)).status, 'connected');
      assert.equal(entryOf(h), undefined, 'the needs-auth entry is gone');
      assert.equal(addon.isNeedsAuthCached(NAME, { configDir: h.configDir }), false);
      assert.ok(
        heard.some((ev) => ev.servers.includes(NAME)),
        'an in-process subscriber heard about it',
      );
      assert.ok(subs.length >= 1 && subs.every((x) => x.closed), 'signIn closed its subscription');
      t.diagnostic(
        native
          ? `file after: ${fs.existsSync(h.cachePath) ? 'kept' : 'deleted by Claude Code'}`
          : 'entry removed by signIn',
      );

      // signIn again on the now connected server: no flow is started, the working sign-in stays
      // (Claude Code 2.1.334 empties the stored tokens as soon as mcp_authenticate starts).
      const authorizeBefore = srv.count((x) => x.path === '/authorize');
      const again = await signIn(s.q, NAME, { env: h.env });
      assert.equal(again.authUrl, null, 'nothing for the user to do');
      assert.deepEqual(await again.completed, { server: NAME, status: 'connected' });
      assert.equal(
        srv.count((x) => x.path === '/authorize'),
        authorizeBefore,
        'no new authorization',
      );
      const creds = addon.diagnose(NAME, { configDir: h.configDir }).credentials;
      assert.equal(creds.hasAccessToken, true, 'the stored token is still there');
      assert.equal((await s.status(NAME)).status, 'connected');

      const start = srv.requests.length;
      const r = await runPrint(h.env, NAME, { stack });
      assert.equal(
        r.connected,
        true,
        `claude -p connects:\n${r.debug
          .split('\n')
          .filter((l) => l.includes(NAME))
          .join('\n')}`,
      );
      assert.ok(srv.requests.slice(start).some((x) => x.path === '/mcp' && x.auth && x.rpc === 'tools/list'));
    });

    if (!native) {
      it('control: without signIn, 2.1.108 connects the session but keeps the needs-auth entry', async (t) => {
        const s = await session(t);
        for (let i = 0; i < 50 && entryOf(h) === undefined; i++) await delay(100);
        const written = entryOf(h);
        assert.equal(typeof written?.timestamp, 'number');
        const r = await s.q.mcpAuthenticate(NAME); // what a host does without this library
        await followAuthUrl(r.authUrl);
        let st = await s.status(NAME);
        for (let i = 0; i < 50 && st.status !== 'connected'; i++) {
          await delay(100);
          st = await s.status(NAME);
        }
        assert.equal(st.status, 'connected', 'the session connected');
        await delay(500);
        assert.deepEqual(entryOf(h), written, 'the entry is still there: new processes keep skipping the server');
        assert.equal(addon.isNeedsAuthCached(NAME, { configDir: h.configDir }), true);
      });
    }

    it('unknown server, stdio server, redirectUri support: clear errors, nothing started', async (t) => {
      const subs = spySubscriptions(t);
      const s = await session(t, { stdio: true });
      await rejectsWith(signIn(s.q, 'nope', { env: h.env }), 'ERR_UNKNOWN_SERVER', 'unknown server');
      await rejectsWith(signIn(s.q, STDIO, { env: h.env }), 'ERR_SIGN_IN_NOT_SUPPORTED_FOR_TRANSPORT', 'stdio');
      await rejectsWith(signIn(s.q, '', { env: h.env }), 'ERR_INVALID_ARGUMENT', 'empty name');
      await rejectsWith(signIn(s.q, NAME, { env: h.env, timeoutMs: -1 }), 'ERR_INVALID_ARGUMENT', 'bad timeout');
      if (!native) {
        await rejectsWith(
          signIn(s.q, NAME, { env: h.env, redirectUri: 'http://127.0.0.1:9/cb' }),
          'ERR_SIGN_IN_UNSUPPORTED',
          'redirectUri on 0.2.x',
        );
      }
      assert.ok(
        subs.every((x) => x.closed),
        'no subscription left open',
      );
      assert.equal(
        srv.count((r) => r.path === '/authorize'),
        0,
      );
    });

    it('a second signIn while one is pending shares it; abort and time-out reject and leave nothing; a new signIn then works', async (t) => {
      const subs = spySubscriptions(t);
      const s = await session(t);
      const ac = new AbortController();
      const first = await signIn(s.q, NAME, { env: h.env, signal: ac.signal });
      const second = await signIn(s.q, NAME, { env: h.env });
      assert.equal(second.authUrl, first.authUrl, 'the same authorization URL');
      assert.equal(second.completed, first.completed, 'the same completion');
      if (native) {
        await rejectsWith(
          signIn(s.q, NAME, { env: h.env, redirectUri: 'http://127.0.0.1:9/cb' }),
          'ERR_SIGN_IN_IN_PROGRESS',
          'another redirect URI while pending',
        );
      }
      const reason = new Error('user closed the dialog');
      ac.abort(reason);
      await assert.rejects(first.completed, (err) => {
        assert.equal(err.name, 'AbortError');
        assert.equal(err.code, 'ABORT_ERR');
        assert.equal(err.cause, reason);
        return true;
      });
      assert.ok(
        subs.every((x) => x.closed),
        'abort closed the subscription',
      );

      const timed = await signIn(s.q, NAME, { env: h.env, timeoutMs: 1500 });
      assert.notEqual(timed.authUrl, first.authUrl, 'a new flow after the abort');
      await rejectsWith(timed.completed, 'ERR_SIGN_IN_TIMEOUT', 'time-out');
      assert.ok(
        subs.every((x) => x.closed),
        'time-out closed the subscription',
      );
      assert.equal((await s.status(NAME)).status, 'needs-auth', 'nothing signed in');

      const again = await signIn(s.q, NAME, { env: h.env, timeoutMs: 60_000 });
      await followAuthUrl(again.authUrl);
      assert.deepEqual(await again.completed, { server: NAME, status: 'connected' });
    });

    it('with reconnectOnAuthChange running on the session, a sign-in connects the server once', async (t) => {
      const s = await session(t);
      const sub = sdk.reconnectOnAuthChange(s.q, { env: h.env });
      t.after(() => sub.close());
      const initializes = () => srv.count((x) => x.path === '/mcp' && x.auth && x.rpc === 'initialize');
      const before = initializes();
      const pending = await signIn(s.q, NAME, { env: h.env });
      await followAuthUrl(pending.authUrl);
      assert.deepEqual(await pending.completed, { server: NAME, status: 'connected' });
      // whatever reconnectOnAuthChange heard meanwhile has been dealt with
      for (let i = 0; i < 10; i++) {
        await delay(100);
        await sub.settled();
      }
      assert.equal(initializes() - before, 1, 'one authorized connect (initialize) of the server');
      assert.equal((await s.status(NAME)).status, 'connected');
    });

    it(
      native
        ? 'redirectUri + submitCallbackUrl: the host receives the callback and hands it to Claude Code'
        : "submitCallbackUrl with Claude Code's own redirect URI (the browser could not reach it)",
      async (t) => {
        const s = await session(t);
        const redirectUri = 'http://127.0.0.1:9/host/oauth/callback'; // the host's; never dialled here
        const pending = await signIn(s.q, NAME, native ? { env: h.env, redirectUri } : { env: h.env });
        const redirect = new URL(pending.authUrl).searchParams.get('redirect_uri');
        if (native) assert.equal(redirect, redirectUri, "Claude Code put the host's redirect URI in the authUrl");
        const user = await followAuthUrl(pending.authUrl, { stopAt: redirect });
        assert.ok(user.callbackUrl, 'the authorization server redirected to the callback');
        await rejectsWith(pending.submitCallbackUrl(`${redirect}?nothing=here`), 'ERR_INVALID_ARGUMENT', 'no code');
        if (native) {
          // A URL of another attempt (wrong state): Claude Code refuses it and keeps waiting, so
          // that submit fails and the sign-in stays pending for the right one.
          const stale = new URL(user.callbackUrl);
          stale.searchParams.set('state', 'not-this-attempt');
          await rejectsWith(pending.submitCallbackUrl(stale.href), 'ERR_SIGN_IN_CALLBACK_REJECTED', 'stale state');
        }
        let logged = '';
        const warn = (w) => {
          logged += `${w.message}\n`;
        };
        process.on('warning', warn);
        t.after(() => process.off('warning', warn));
        await pending.submitCallbackUrl(user.callbackUrl);
        const done = await pending.completed;
        assert.deepEqual(done, { server: NAME, status: 'connected' });
        assert.equal(entryOf(h), undefined, 'the needs-auth entry is gone');
        assertNoSecrets(logged, user.callbackUrl, 'warnings');
        await rejectsWith(pending.submitCallbackUrl(user.callbackUrl), 'ERR_SIGN_IN_NOT_PENDING', 'after completion');
      },
    );
  });
}
