'use strict';
// mcp-needs-auth/sdk's claude.ai connector helpers (redialConnectors, redialConnectorsWhileLive,
// signIn for a connector) against a scripted query, with real cache files in temp dirs. With the
// real Claude Code: __test__/e2e/connectors.test.js.

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..');
const addon = require(ROOT);
const sdk = require(path.join(ROOT, 'sdk.js'));
const { tmp } = require('../helpers/tmp.js');
const { until } = require('../helpers/sdk.js');

const FIGMA = 'claude.ai Figma';
const connector = (name, status, extra = {}) => ({
  name,
  status,
  config: { type: 'claudeai-proxy', url: 'https://mcp.x.example/mcp', id: `id-${name}` },
  scope: 'claudeai',
  ...extra,
});

/**
 * A scripted session: `servers` (name -> status entry); reconnectMcpServer(name) sets the status
 * to `next[name]` (default: stays) and records the call; `end()` makes every request reject.
 */
function scripted(servers, next = {}) {
  const calls = [];
  let ended = false;
  const q = {
    calls,
    end() {
      ended = true;
    },
    async mcpServerStatus() {
      if (ended) throw new Error('Query closed');
      return Object.values(servers).map((s) => ({ ...s }));
    },
    async reconnectMcpServer(name) {
      if (ended) throw new Error('Query closed');
      calls.push(name);
      if (next[name]) servers[name].status = next[name];
      if (servers[name].status !== 'connected') throw new Error(`Failed to reconnect to server: ${name}`);
    },
  };
  return q;
}

function cacheWith(dir, entries) {
  fs.writeFileSync(path.join(dir, 'mcp-needs-auth-cache.json'), JSON.stringify(entries));
}

describe('redialConnectors', () => {
  it('re-dials only the connectors the session reports needs-auth, and drops the entry of one connected', async (t) => {
    const dir = tmp(t);
    const now = Date.now();
    cacheWith(dir, {
      [FIGMA]: { timestamp: now - 1000 },
      'claude.ai Linear': { timestamp: now - 1000 },
      gh: { timestamp: now },
    });
    const q = scripted(
      {
        [FIGMA]: connector(FIGMA, 'needs-auth'),
        'claude.ai Linear': connector('claude.ai Linear', 'needs-auth'),
        'claude.ai Slack': connector('claude.ai Slack', 'failed'),
        gh: { name: 'gh', status: 'needs-auth', config: { type: 'http', url: 'http://127.0.0.1:1/mcp' } },
      },
      { [FIGMA]: 'connected' },
    );
    const out = await sdk.redialConnectors(q, { configDir: dir });
    assert.deepEqual(q.calls, [FIGMA, 'claude.ai Linear'], 'needs-auth connectors only: not failed, not http');
    assert.deepEqual(out, [
      { server: FIGMA, status: 'connected', connected: true },
      {
        server: 'claude.ai Linear',
        status: 'needs-auth',
        connected: false,
        error: 'Failed to reconnect to server: claude.ai Linear',
      },
    ]);
    assert.deepEqual(
      addon.listNeedsAuth({ configDir: dir }).map((e) => e.server),
      ['claude.ai Linear', 'gh'],
      'only the connected one lost its entry',
    );
  });

  it('resolves [] once the session has ended, and rejects a non-query at once', async (t) => {
    const q = scripted({ [FIGMA]: connector(FIGMA, 'needs-auth') });
    q.end();
    assert.deepEqual(await sdk.redialConnectors(q, { configDir: tmp(t) }), []);
    await assert.rejects(sdk.redialConnectors({}), TypeError);
  });

  it('knows a connector by its scope or name when the status has no config', async (t) => {
    const q = scripted({
      a: { name: 'a', status: 'needs-auth', scope: 'claudeai' },
      [FIGMA]: { name: FIGMA, status: 'needs-auth' },
      b: { name: 'b', status: 'needs-auth' },
    });
    await sdk.redialConnectors(q, { configDir: tmp(t) });
    assert.deepEqual(q.calls, ['a', FIGMA]);
  });
});

describe('redialConnectorsWhileLive', () => {
  it('re-dials once per step of its schedule, then no more', async (t) => {
    const q = scripted({ [FIGMA]: connector(FIGMA, 'needs-auth') });
    const rounds = [];
    const r = sdk.redialConnectorsWhileLive(q, {
      configDir: tmp(t),
      scheduleMs: [1, 1, 1],
      accountPollMs: false,
      onRedial: (o) => rounds.push(o),
    });
    t.after(() => r.close());
    await until(() => rounds.length === 3 && !r.scheduled, { what: 'three rounds' });
    await r.settled();
    assert.equal(r.rounds, 3);
    assert.deepEqual(q.calls, [FIGMA, FIGMA, FIGMA]);
    assert.equal(r.closed, false, 'still watching (a redialNow() works)');
    await r.redialNow();
    assert.equal(q.calls.length, 4);
  });

  it('a round with no connector needing authorization re-dials nothing', async (t) => {
    const q = scripted({ [FIGMA]: connector(FIGMA, 'connected') });
    const r = sdk.redialConnectorsWhileLive(q, { configDir: tmp(t), scheduleMs: [1, 1], accountPollMs: false });
    t.after(() => r.close());
    await until(() => !r.scheduled, { what: 'the schedule to run out' });
    await r.settled();
    assert.deepEqual(q.calls, []);
    assert.equal(r.rounds, 0);
  });

  it('stops when the session ends, on close(), and on its signal', async (t) => {
    const q = scripted({ [FIGMA]: connector(FIGMA, 'needs-auth') });
    const r = sdk.redialConnectorsWhileLive(q, {
      configDir: tmp(t),
      scheduleMs: Array(1000).fill(5),
      accountPollMs: false,
    });
    await until(() => q.calls.length >= 1, { what: 'a first round' });
    q.end();
    await until(() => r.closed, { what: 'the stop with the session' });
    await r.settled();
    const n = q.calls.length;
    assert.ok(n < 1000);

    const q2 = scripted({ [FIGMA]: connector(FIGMA, 'needs-auth') });
    const r2 = sdk.redialConnectorsWhileLive(q2, { configDir: tmp(t), scheduleMs: [5], accountPollMs: false });
    r2.close();
    assert.equal(r2.scheduled, false);
    const ac = new AbortController();
    const r3 = sdk.redialConnectorsWhileLive(q2, {
      configDir: tmp(t),
      scheduleMs: [5],
      accountPollMs: false,
      signal: ac.signal,
    });
    ac.abort();
    assert.equal(r3.closed, true);
    await delay(30);
    assert.deepEqual(q2.calls, [], 'nothing after close() or an abort');
  });

  it('an account or organization change removes the older connector entries and re-dials', async (t) => {
    const dir = tmp(t);
    const globalConfig = path.join(dir, '.claude.json');
    const account = (acct, org) =>
      fs.writeFileSync(globalConfig, JSON.stringify({ oauthAccount: { accountUuid: acct, organizationUuid: org } }));
    account('a1', 'o1');
    const old = Date.now() - 1000;
    cacheWith(dir, {
      [FIGMA]: { timestamp: old, id: 'x' },
      'claude.ai Linear': { timestamp: old },
      gh: { timestamp: old },
      // Configured: the config, not the name, says what a server is (as Claude Code's rules).
      'claude.ai Docs': { timestamp: old },
      slack: { timestamp: old },
    });
    const q = scripted({ [FIGMA]: connector(FIGMA, 'needs-auth') }, { [FIGMA]: 'connected' });
    const rounds = [];
    const r = sdk.redialConnectorsWhileLive(q, {
      configDir: dir,
      serverConfigs: {
        'claude.ai Docs': { type: 'http', url: 'https://docs.example.test/mcp' },
        slack: { type: 'claudeai-proxy', url: 'https://mcp-proxy.anthropic.com/v1/mcp/slack', id: 'mcpsrv_s' },
      },
      scheduleMs: false,
      accountPollMs: 50,
      globalConfigPath: globalConfig,
      onRedial: (o) => rounds.push(o),
    });
    t.after(() => r.close());
    account('a1', 'o2-other'); // the organization changed (another size: file times are coarse)
    await until(() => rounds.length === 1, { what: 'the re-dial after the change', timeoutMs: 5000 });
    assert.deepEqual(rounds[0], [{ server: FIGMA, status: 'connected', connected: true }]);
    assert.deepEqual(
      addon.listNeedsAuth({ configDir: dir }).map((e) => e.server),
      ['gh', 'claude.ai Docs'],
      'connector entries of both shapes went, a configured one too; an http server is no connector, whatever its name',
    );
  });
});

describe('signIn for a claude.ai connector', () => {
  // Its waits are on unref'd timers (they never hold a host up): a live session keeps a real
  // host's event loop running; here an interval does.
  let keepAlive;
  before(() => {
    keepAlive = setInterval(() => {}, 1000);
  });
  after(() => clearInterval(keepAlive));
  it("Claude Code 2.1.108's refusal is ERR_SIGN_IN_UNSUPPORTED", async (t) => {
    const q = scripted({ [FIGMA]: connector(FIGMA, 'needs-auth') });
    q.mcpAuthenticate = async () => {
      throw new Error('Server type "claudeai-proxy" does not support OAuth authentication');
    };
    await assert.rejects(sdk.signIn(q, FIGMA, { configDir: tmp(t) }), (err) => {
      assert.equal(err.code, 'ERR_SIGN_IN_UNSUPPORTED');
      assert.equal(err.transport, 'claudeai-proxy');
      assert.match(err.message, /claude\.ai connector/);
      return true;
    });
  });

  it('2.1.332+: the start-auth URL, callbackExpected false, completed once the session reports it connected', async (t) => {
    const dir = tmp(t);
    cacheWith(dir, { [FIGMA]: { timestamp: Date.now(), id: 'id-claude.ai Figma' } });
    const q = scripted({ [FIGMA]: connector(FIGMA, 'needs-auth') }, { [FIGMA]: 'connected' });
    const url = 'https://claude.ai/api/organizations/o/mcp/start-auth/id?product_surface=sdk-ts';
    q.mcpAuthenticate = async () => ({ authUrl: url, requiresUserAction: true, callbackExpected: false });
    q.mcpSubmitOAuthCallbackUrl = async () => {};
    const pending = await sdk.signIn(q, FIGMA, { configDir: dir, timeoutMs: 10_000 });
    assert.equal(pending.authUrl, url);
    assert.equal(pending.callbackExpected, false);
    await assert.rejects(pending.submitCallbackUrl('http://localhost/cb?code=x'), { code: 'ERR_SIGN_IN_NOT_PENDING' });
    assert.equal(await pending.redial(), 'connected');
    assert.deepEqual(await pending.completed, { server: FIGMA, status: 'connected' });
    assert.deepEqual(addon.listNeedsAuth({ configDir: dir }), [], 'its entry is gone');
  });

  it('times out with ERR_SIGN_IN_TIMEOUT when it never connects', async (t) => {
    const q = scripted({ [FIGMA]: connector(FIGMA, 'needs-auth') });
    q.mcpAuthenticate = async () => ({
      authUrl: 'https://claude.ai/x',
      requiresUserAction: true,
      callbackExpected: false,
    });
    const pending = await sdk.signIn(q, FIGMA, { configDir: tmp(t), timeoutMs: 50 });
    await assert.rejects(pending.completed, { code: 'ERR_SIGN_IN_TIMEOUT' });
  });
});

const delay = (ms) => new Promise((r) => setTimeout(r, ms));
