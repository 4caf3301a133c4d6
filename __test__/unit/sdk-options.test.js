'use strict';
// The options of mcp-needs-auth/sdk's helpers are checked as the addon checks its own: a known
// option of the wrong type or range throws ERR_INVALID_ARGUMENT naming it, before anything
// starts (issue 21: `signal: {}`, `configDir: 5` then silently watching the default dir,
// `retries: '3'` were ignored). One check (lib/sdk/validate-options.js) for every helper.
//
//   node --test __test__/unit/sdk-options.test.js

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..');
const addon = require(ROOT);
const { reconnectOnAuthChange, prepareQuery, needsAuthHooks, signIn } = require(path.join(ROOT, 'sdk.js'));
const { tmp } = require('../helpers/tmp.js');
const { spySubscriptions } = require('../helpers/sdk.js');

const query = () => ({
  calls: 0,
  async mcpServerStatus() {
    this.calls++;
    return [{ name: 'a', status: 'needs-auth', config: { type: 'http' } }];
  },
  async reconnectMcpServer() {},
  async mcpAuthenticate() {
    return { authUrl: 'http://127.0.0.1:9/authorize', requiresUserAction: true };
  },
});

/** ERR_INVALID_ARGUMENT whose message names `option`. */
const invalid = (option) => (err) => {
  assert.equal(err.code, 'ERR_INVALID_ARGUMENT', err.message);
  assert.ok(err.message.includes(`.${option} must be`), err.message);
  return true;
};

const BAD = [
  ['signal', {}],
  ['configDir', 5],
  ['retries', '3'],
  ['retries', 0],
  ['backoffMs', -1],
  ['statuses', 'needs-auth'],
  ['onReconnect', 'log'],
  ['credentials', 'disk'],
  ['env', 'HOME=/x'],
  ['statusTimeoutMs', 0],
  ['pendingWaitMs', Number.NaN],
  ['watch', 'yes'],
  ['pollIntervalMs', '2000'],
];

describe('sdk helpers reject bad options with ERR_INVALID_ARGUMENT naming the option', () => {
  it('reconnectOnAuthChange: throws at once and subscribes to nothing', (t) => {
    const subs = spySubscriptions(t);
    const dir = tmp(t);
    for (const [name, value] of BAD) {
      assert.throws(() => reconnectOnAuthChange(query(), { configDir: dir, [name]: value }), invalid(name), name);
    }
    assert.throws(() => reconnectOnAuthChange(query(), 'fast'), { code: 'ERR_INVALID_ARGUMENT' });
    assert.equal(subs.length, 0, 'no onAuthChanged subscription was made');
    // The good options still work.
    const ac = new AbortController();
    const sub = reconnectOnAuthChange(query(), { configDir: dir, signal: ac.signal, retries: 2, watch: false });
    assert.equal(sub.closed, false);
    ac.abort();
    assert.equal(sub.closed, true);
  });

  it('configDir: 5 no longer watches the default config dir', (t) => {
    const home = tmp(t);
    const old = process.env.CLAUDE_CONFIG_DIR;
    process.env.CLAUDE_CONFIG_DIR = path.join(home, '.claude');
    t.after(() => {
      if (old === undefined) delete process.env.CLAUDE_CONFIG_DIR;
      else process.env.CLAUDE_CONFIG_DIR = old;
    });
    const q = query();
    assert.throws(() => reconnectOnAuthChange(q, { configDir: 5, watch: false }), invalid('configDir'));
    addon.invalidateNeedsAuth('a'); // an event in the default dir reaches no subscription
    assert.equal(q.calls, 0);
  });

  it('prepareQuery and needsAuthHooks: throw at once, leaving the query options untouched', (t) => {
    const dir = tmp(t);
    for (const [name, value] of BAD.filter(([n]) => !['signal', 'statuses', 'watch', 'pollIntervalMs'].includes(n))) {
      const qo = { env: { CLAUDE_CONFIG_DIR: dir } };
      assert.throws(() => prepareQuery(qo, { [name]: value }), invalid(name), `prepareQuery ${name}`);
      assert.equal(qo.hooks, undefined, 'no hook added');
      assert.throws(() => needsAuthHooks({ [name]: value }), invalid(name), `needsAuthHooks ${name}`);
    }
    assert.throws(() => prepareQuery({}, { query: 5 }), invalid('query'));
    assert.throws(() => needsAuthHooks(7), { code: 'ERR_INVALID_ARGUMENT' });
    assert.ok(prepareQuery({ env: { CLAUDE_CONFIG_DIR: dir } }, { query: () => undefined, retries: 2 }).hooks);
  });

  it('signIn: rejects before asking the session anything', async (t) => {
    const dir = tmp(t);
    for (const [name, value] of [
      ['signal', {}],
      ['configDir', 5],
      ['timeoutMs', '1000'],
      ['redirectUri', 'not a url'],
      ['reauthenticate', 'yes'],
      ['env', 5],
    ]) {
      const q = query();
      await assert.rejects(signIn(q, 'a', { configDir: dir, [name]: value }), invalid(name), name);
      assert.equal(q.calls, 0);
    }
  });
});
