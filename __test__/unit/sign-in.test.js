'use strict';
// signIn() from mcp-needs-auth/sdk against a scripted query (the thing under test is signIn): the
// failure paths that need exact timing (time-out, abort during the request) leave nothing behind.
// The real Agent SDK + Claude Code stacks: __test__/e2e/sign-in.test.js.
//
//   node --test __test__/unit/sign-in.test.js

const { describe, it, after } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const ROOT = path.resolve(__dirname, '..', '..');
const addon = require(ROOT);
const sdk = require(path.join(ROOT, 'sdk.js'));
const { signIn } = sdk;
const { writeFreshToken } = require('../../support/credentials.js');
const { tmp } = require('../helpers/tmp.js');
const { spySubscriptions } = require('../helpers/sdk.js');

const NAME = 'protected';
const delay = (ms) => new Promise((r) => setTimeout(r, ms));

function scriptedQuery({ authMs = 0, statuses = { [NAME]: { status: 'needs-auth', config: { type: 'http' } } } } = {}) {
  return {
    calls: [],
    async mcpServerStatus() {
      return Object.entries(statuses).map(([name, s]) => ({ name, ...s }));
    },
    async mcpAuthenticate(name) {
      this.calls.push(name);
      await (authMs === Infinity ? new Promise(() => {}) : delay(authMs)); // Infinity: never answers
      return { authUrl: 'http://127.0.0.1:9/authorize?state=x', requiresUserAction: true };
    },
    async reconnectMcpServer() {},
  };
}

describe('signIn failure paths leave nothing behind (scripted query)', () => {
  const dir = tmp({ after }, 'mna-signin-');

  it('abort before the request, and during it, reject signIn itself with AbortError', async (t) => {
    const subs = spySubscriptions(t);
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(signIn(scriptedQuery(), NAME, { configDir: dir, signal: ac.signal }), {
      name: 'AbortError',
      code: 'ABORT_ERR',
    });
    const ac2 = new AbortController();
    const q = scriptedQuery({ authMs: 500 });
    const p = signIn(q, NAME, { configDir: dir, signal: ac2.signal });
    setTimeout(() => ac2.abort(), 50);
    await assert.rejects(p, (err) => err.name === 'AbortError' && err.cause instanceof DOMException);
    assert.ok(subs.every((x) => x.closed));
  });

  it('a query without mcpAuthenticate, or a request that never answers: ERR_SIGN_IN_UNSUPPORTED / ERR_SIGN_IN_TIMEOUT', async (t) => {
    const subs = spySubscriptions(t);
    const bare = { mcpServerStatus: async () => [], reconnectMcpServer: async () => {} };
    await assert.rejects(signIn(bare, NAME, { configDir: dir }), { code: 'ERR_SIGN_IN_UNSUPPORTED' });
    const hung = scriptedQuery({ authMs: Infinity });
    await assert.rejects(signIn(hung, NAME, { configDir: dir, timeoutMs: 200 }), { code: 'ERR_SIGN_IN_TIMEOUT' });
    assert.ok(subs.length === 1 && subs[0].closed);
  });

  it('an abandoned sign-in keeps no process alive, and its time-out is no unhandled rejection', () => {
    const script = `
      const { signIn } = require(${JSON.stringify(path.join(ROOT, 'sdk.js'))});
      process.on('unhandledRejection', (e) => { console.log('unhandled', e && e.code); process.exitCode = 3; });
      const q = {
        async mcpServerStatus() { return [{ name: 'p', status: 'needs-auth', config: { type: 'http' } }]; },
        async mcpAuthenticate() { return { authUrl: 'http://127.0.0.1:9/a', requiresUserAction: true }; },
        async reconnectMcpServer() {},
      };
      (async () => {
        await signIn(q, 'p', { configDir: ${JSON.stringify(dir)}, timeoutMs: 300000 }); // abandoned
        const t = await signIn(q, 'q2', { configDir: ${JSON.stringify(dir)} }).catch((e) => e.code);
        console.log('unknown', t);
        console.log('started');
      })();`;
    const started = Date.now();
    const r = spawnSync(process.execPath, ['-e', script], { encoding: 'utf8', timeout: 20_000 });
    assert.equal(r.status, 0, r.stderr + r.stdout);
    assert.match(r.stdout, /unknown ERR_UNKNOWN_SERVER/);
    assert.match(r.stdout, /started/);
    assert.ok(Date.now() - started < 15_000, 'exited without waiting for the 5-minute time-out');
  });
});

// ---------------------------------------------------------------------------------------------
// The defects of issue 21, each against a scripted Claude Code: a query whose control requests
// behave as 2.1.332/2.1.334's do for the case (tokens saved into the temp config dir's real
// .credentials.json, statuses, refusals), recording what signIn asked of it.

const URL_OF = 'http://127.0.0.1:9/mcp';
const STATE_MISMATCH =
  'Callback URL not accepted: it belongs to a different sign-in attempt (OAuth state mismatch) or carries no authorization code. The sign-in in progress is still waiting; submit the redirect URL from its own browser page.';

/**
 * `{ q, log, connects, status, userSignsIn(), selfConnect() }`. `log` lists what the session was
 * asked ('status', 'auth', 'submit', 'reconnect') and what happened ('tokens-saved'). A callback
 * URL with `state=good` is accepted (tokens saved, no connect: 2.1.334); any other state is refused
 * as 2.1.332+ refuses it (the flow keeps waiting), or, with `endsFlowOnRefusal`, as 2.1.108 does.
 */
function scriptedClaudeCode(dir, { status = 'needs-auth', endsFlowOnRefusal = false, answerSubmitAfter = null } = {}) {
  const s = { status, connects: 0, log: [] };
  const saveTokens = () => {
    writeFreshToken(dir, NAME, URL_OF, { token: `at-${s.log.length}`, refreshToken: 'rt' });
    s.log.push('tokens-saved');
  };
  s.q = {
    async mcpServerStatus() {
      s.log.push('status');
      return [{ name: NAME, status: s.status, config: { type: 'http', url: URL_OF } }];
    },
    async mcpAuthenticate(_name, redirectUri, _options) {
      s.log.push('auth');
      const cb = redirectUri ?? 'http://localhost:1/callback';
      return { authUrl: `http://127.0.0.1:9/authorize?state=good&redirect_uri=${cb}`, requiresUserAction: true };
    },
    async mcpSubmitOAuthCallbackUrl(_name, callbackUrl) {
      s.log.push('submit');
      if (new URL(callbackUrl).searchParams.get('state') !== 'good') {
        throw new Error(endsFlowOnRefusal ? 'state mismatch - possible CSRF attack' : STATE_MISMATCH);
      }
      saveTokens();
      // 'status-polls': the answer comes late, after the session was asked for its status again
      // (or was connected) since the save, so signIn sees the save before the answer.
      if (answerSubmitAfter === 'status-polls') {
        const at = s.log.length;
        for (let i = 0; i < 500 && s.status !== 'connected' && !s.log.slice(at).includes('status'); i++) {
          await delay(10);
        }
      }
    },
    async reconnectMcpServer() {
      s.log.push('reconnect');
      s.connects++;
      s.status = 'connected';
    },
  };
  /** The user finishes at Claude Code's own callback listener: Claude Code saves the tokens. */
  s.userSignsIn = saveTokens;
  /** Claude Code connects the server itself, as it does after its own callback. */
  s.selfConnect = () => {
    s.connects++;
    s.status = 'connected';
  };
  return s;
}

/** Resolves whether `p` settled within a few turns of the event loop (false: still pending). */
async function settledSoon(p) {
  let settled = false;
  p.then(
    () => {
      settled = true;
    },
    () => {
      settled = true;
    },
  );
  for (let i = 0; i < 5; i++) await delay(20);
  return settled;
}

describe('signIn, issue 21 (scripted Claude Code)', () => {
  // signIn's timers and subscriptions never keep a process alive; a real session's child would.
  const alive = setInterval(() => {}, 1_000);
  after(() => clearInterval(alive));

  it('an already-aborted signal rejects without leaving the flow registered: the next signIn starts one', async (t) => {
    const dir = tmp(t, 'mna-signin-');
    const cc = scriptedClaudeCode(dir);
    const ac = new AbortController();
    ac.abort();
    await assert.rejects(signIn(cc.q, NAME, { configDir: dir, signal: ac.signal }), { name: 'AbortError' });
    const ac2 = new AbortController();
    t.after(() => ac2.abort());
    const pending = await signIn(cc.q, NAME, { configDir: dir, signal: ac2.signal });
    assert.match(pending.authUrl, /^http:\/\/127\.0\.0\.1:9\/authorize/);
    assert.equal(cc.log.filter((x) => x === 'auth').length, 1, 'mcpAuthenticate was called for the second signIn');
  });

  it('a server the session reports connected is not signed in again unless reauthenticate: true', async (t) => {
    const dir = tmp(t, 'mna-signin-');
    const cc = scriptedClaudeCode(dir, { status: 'connected' });
    writeFreshToken(dir, NAME, URL_OF, { token: 'working', refreshToken: 'rt' });
    addon.markNeedsAuth(NAME, { configDir: dir }); // 2.1.108 keeps an entry beside a working sign-in
    const pending = await signIn(cc.q, NAME, { configDir: dir });
    assert.equal(pending.authUrl, null, 'nothing for the user to do');
    assert.deepEqual(await pending.completed, { server: NAME, status: 'connected' });
    assert.deepEqual(cc.log, ['status'], "Claude Code's flow was not started");
    assert.deepEqual(addon.listNeedsAuth({ configDir: dir }), [], 'the stale entry beside the connected server went');
    await assert.rejects(pending.submitCallbackUrl('http://localhost:1/callback?code=x&state=good'), {
      code: 'ERR_SIGN_IN_NOT_PENDING',
    });

    const ac = new AbortController();
    t.after(() => ac.abort());
    const again = await signIn(cc.q, NAME, { configDir: dir, reauthenticate: true, signal: ac.signal });
    assert.match(again.authUrl, /authorize/, 'an explicit re-sign-in starts the flow');
    assert.equal(cc.log.filter((x) => x === 'auth').length, 1);
  });

  it('a refused callback URL whose flow still waits rejects that submit only; the right URL then completes', async (t) => {
    const dir = tmp(t, 'mna-signin-');
    const cc = scriptedClaudeCode(dir);
    const redirectUri = 'https://host.example/oauth/callback';
    const pending = await signIn(cc.q, NAME, { configDir: dir, redirectUri, timeoutMs: 60_000 });
    await assert.rejects(pending.submitCallbackUrl(`${redirectUri}?code=c1&state=stale`), (err) => {
      assert.equal(err.code, 'ERR_SIGN_IN_CALLBACK_REJECTED');
      assert.match(err.message, /still pending/);
      assert.ok(!err.message.includes('c1'), 'the code is not echoed');
      return true;
    });
    assert.equal(await settledSoon(pending.completed), false, 'the sign-in is still pending');
    await pending.submitCallbackUrl(`${redirectUri}?code=c2&state=good`);
    assert.deepEqual(await pending.completed, { server: NAME, status: 'connected' });
  });

  it("a refusal that ends Claude Code's flow (2.1.108) still fails the sign-in with ERR_SIGN_IN_FAILED", async (t) => {
    const dir = tmp(t, 'mna-signin-');
    const cc = scriptedClaudeCode(dir, { endsFlowOnRefusal: true });
    const pending = await signIn(cc.q, NAME, { configDir: dir, timeoutMs: 60_000 });
    await assert.rejects(pending.submitCallbackUrl('http://localhost:1/callback?code=c&state=stale'), {
      code: 'ERR_SIGN_IN_FAILED',
    });
    await assert.rejects(pending.completed, { code: 'ERR_SIGN_IN_FAILED' });
  });

  it('after a submitted callback URL the server is connected at once, not after a grace period', async (t) => {
    const dir = tmp(t, 'mna-signin-');
    const cc = scriptedClaudeCode(dir); // never connects by itself after a submit (2.1.334)
    const redirectUri = 'https://host.example/oauth/callback';
    const pending = await signIn(cc.q, NAME, { configDir: dir, redirectUri, timeoutMs: 60_000 });
    await pending.submitCallbackUrl(`${redirectUri}?code=c&state=good`);
    assert.deepEqual(await pending.completed, { server: NAME, status: 'connected' });
    const after = cc.log.slice(cc.log.indexOf('tokens-saved'));
    const polls = after.slice(0, after.indexOf('reconnect')).filter((x) => x === 'status').length;
    assert.ok(after.includes('reconnect'), 'signIn connected the server');
    // The old code polled the status every 100 ms for 3 s (about 30 times) before connecting.
    assert.ok(polls <= 1, `the session was asked for its status ${polls} times before the connect`);
    assert.equal(cc.connects, 1);
  });

  it("the same without redirectUri, when the tokens' save is seen before Claude Code answers the submit", async (t) => {
    const dir = tmp(t, 'mna-signin-');
    const cc = scriptedClaudeCode(dir, { answerSubmitAfter: 'status-polls' });
    const pending = await signIn(cc.q, NAME, { configDir: dir, timeoutMs: 60_000 });
    const submitted = pending.submitCallbackUrl('http://localhost:1/callback?code=c&state=good');
    assert.deepEqual(await pending.completed, { server: NAME, status: 'connected' });
    await submitted;
    const after = cc.log.slice(cc.log.indexOf('tokens-saved'));
    const polls = after.slice(0, after.indexOf('reconnect')).filter((x) => x === 'status').length;
    assert.ok(after.includes('reconnect'), 'signIn connected the server');
    assert.ok(polls <= 1, `the session was asked for its status ${polls} times before the connect`);
  });

  it('with reconnectOnAuthChange running, a sign-in connects the server once', async (t) => {
    const dir = tmp(t, 'mna-signin-');
    const cc = scriptedClaudeCode(dir);
    const sub = sdk.reconnectOnAuthChange(cc.q, { configDir: dir, watch: false, backoffMs: 10 });
    t.after(() => sub.close());
    const heard = [];
    const listener = addon.onAuthChanged((ev) => heard.push(ev), { configDir: dir, watch: false });
    t.after(() => listener.close());
    const pending = await signIn(cc.q, NAME, { configDir: dir, timeoutMs: 60_000 });
    cc.userSignsIn(); // at Claude Code's own callback: tokens saved; its own connect follows
    for (let i = 0; i < 500 && !heard.some((e) => e.reason === 'invalidated'); i++) await delay(10);
    assert.ok(heard.length > 0, "signIn told this process's subscribers");
    // reconnectOnAuthChange heard it too and has done what it does with it
    for (let i = 0; i < 10; i++) {
      await delay(10);
      await sub.settled();
    }
    cc.selfConnect(); // Claude Code connects after its own callback (about 0.2 s later)
    assert.deepEqual(await pending.completed, { server: NAME, status: 'connected' });
    for (let i = 0; i < 10; i++) {
      await delay(10);
      await sub.settled();
    }
    assert.equal(cc.connects, 1, `connects: ${cc.log.join(' ')}`);
  });
});
