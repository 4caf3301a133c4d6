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
const { signIn } = require(path.join(ROOT, 'sdk.js'));
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
