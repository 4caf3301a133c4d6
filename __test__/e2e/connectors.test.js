'use strict';
// claude.ai connectors (`claudeai-proxy`), end to end, against the REAL Claude Code of every
// pinned stack (support/stacks.js) and a loopback stand-in for claude.ai's connector list and MCP
// proxy (support/claudeai-standin.js: an HTTPS CONNECT proxy with a throw-away CA; Claude Code's
// URLs cannot be moved otherwise). Each test has its own temp HOME and stand-in and stops both.
// The entry the real binary writes decides what is expected: id-less (2.1.108) or with the
// connector's id (2.1.332+). The stand-in's request log is the ground truth for "dials".
//
//   node --test --test-timeout=600000 __test__/e2e/connectors.test.js

const { describe, it, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..');
const addon = require(ROOT);
const sdk = require(path.join(ROOT, 'sdk.js'));
const { makeHome, leftoverHomes } = require('../../support/claude.js');
const { openSession } = require('../../support/session.js');
const { STACKS, stackProblems } = require('../../support/stacks.js');
const { startStandin, accountCredentials, DEFAULT_ACCOUNT, DEFAULT_ORG } = require('../../support/claudeai-standin.js');
const { until } = require('../helpers/wait.js');

const NAME = 'claude.ai Figma';
const ID = 'mcpsrv_01FigmaStandin';
const YEAR_MS = 365 * 24 * 3_600_000;
const delay = (ms) => new Promise((r) => setTimeout(r, ms));

/** `until` with this file's bound and poll interval. */
const waitFor = (pred, what, timeoutMs = 30_000) => until(pred, { what, timeoutMs, stepMs: 100 });

/** A temp HOME logged in to claude.ai (fake account token), Claude Code pointed at a stand-in. */
async function setup(t, standinOptions = {}) {
  const standin = await startStandin({ connectors: { Figma: ID }, ...standinOptions });
  const home = makeHome();
  const env = { ...home.env, ...standin.env() };
  // 2.1.332+ loads no connectors while an API key takes precedence over the claude.ai login.
  delete env.ANTHROPIC_API_KEY;
  delete env.ANTHROPIC_BASE_URL;
  const credsFile = path.join(home.configDir, '.credentials.json');
  const saveAccountToken = (token) =>
    fs.writeFileSync(credsFile, JSON.stringify(accountCredentials(token, Date.now() + YEAR_MS)), { mode: 0o600 });
  saveAccountToken('sk-ant-oat01-e2e-first');
  const globalConfig = path.join(home.home, '.claude.json');
  const writeAccount = (accountUuid, organizationUuid) =>
    fs.writeFileSync(
      globalConfig,
      JSON.stringify({
        hasCompletedOnboarding: true,
        oauthAccount: { accountUuid, organizationUuid, emailAddress: 'standin@example.com' },
      }),
    );
  writeAccount(DEFAULT_ACCOUNT, DEFAULT_ORG);
  const sessions = [];
  const subs = [];
  t.after(async () => {
    for (const s of subs) s.close();
    for (const s of sessions) await s.close();
    await standin.stop();
    home.cleanup();
  });
  const opts = { configDir: home.configDir, credentials: 'file' };
  const entry = () => addon.listNeedsAuth(opts).find((e) => e.server === NAME);
  return {
    standin,
    home,
    env,
    opts,
    entry,
    saveAccountToken,
    writeAccount,
    globalConfig,
    subs,
    async session(stack) {
      const s = await openSession(stack, env);
      sessions.push(s);
      return s;
    },
  };
}

/** Waits until the session reports the connector settled; returns its status. */
async function settledConnector(s) {
  return waitFor(async () => {
    const st = await s.status(NAME);
    return st && st.status !== 'pending' ? st : null;
  }, `${NAME} to settle`);
}

/** A first session that caches the connector as needs-auth; resolves it (still open) and its entry. */
async function cachedBySession(f, stack) {
  const s = await f.session(stack);
  const st = await settledConnector(s);
  assert.equal(st.status, 'needs-auth', JSON.stringify(st));
  assert.equal(st.config?.type, 'claudeai-proxy');
  const e = await waitFor(() => f.entry(), 'the needs-auth entry Claude Code writes');
  return { s, e };
}

/** A new session dials the connector (the stand-in sees proxy POSTs) and reports it connected. */
async function nextSessionDials(f, stack) {
  const before = f.standin.proxyPosts();
  const s = await f.session(stack);
  const st = await settledConnector(s);
  assert.equal(st.status, 'connected', `the next session: ${JSON.stringify(st)}`);
  assert.ok(f.standin.proxyPosts() > before, 'the next session dialed the connector');
  await s.close();
}

after(() => assert.deepEqual(leftoverHomes(), [], 'temp HOMEs left behind'));

for (const stack of STACKS) {
  describe(`claude.ai connectors: ${stack.title}, offline against a stand-in`, { timeout: 600_000 }, () => {
    it('the stack is installed as pinned', () => {
      assert.deepEqual(stackProblems(stack), []);
    });

    it('an account token saved after the entry: an id-less entry is removed (the next session dials), one with an id is kept', async (t) => {
      const f = await setup(t);
      const { s, e } = await cachedBySession(f, stack);
      await s.close();
      const idless = e.id === undefined;
      assert.equal(idless, stack.claudeCode.version === '2.1.108', `the entry's shape: ${JSON.stringify(e)}`);
      if (!idless) assert.equal(e.id, ID, 'a 2.1.332+ entry carries the connector id');
      const events = [];
      const sub = addon.onAuthChanged((ev) => events.push(ev), { ...f.opts, autoInvalidate: true });
      f.subs.push(sub);
      await delay(50); // distinct mtime
      f.saveAccountToken('sk-ant-oat01-e2e-second');
      await waitFor(
        () => events.find((ev) => ev.reason === 'credentials-changed' && ev.servers.includes(NAME)),
        'the account token change, reported for the connector',
      );
      if (idless) {
        assert.equal(f.entry(), undefined, 'the id-less entry went with the account token change');
        f.standin.setMode('ok');
        await nextSessionDials(f, stack);
      } else {
        assert.deepEqual(f.entry(), e, 'an entry with an id is kept: an account token proves nothing about it');
        assert.deepEqual(addon.purgeStale(f.opts), [], 'nor does purgeStale remove it');
      }
      assert.deepEqual(f.standin.refused(), [], 'nothing but the stand-in was asked for');
    });

    it('"I re-authorized it": redialConnectors connects it, the entry goes, the next session dials', async (t) => {
      const f = await setup(t);
      const { s } = await cachedBySession(f, stack);
      f.standin.setMode('ok'); // authorized again on claude.ai
      const outcomes = await sdk.redialConnectors(s.q, f.opts);
      assert.deepEqual(outcomes, [{ server: NAME, status: 'connected', connected: true }]);
      assert.equal(f.entry(), undefined, 'the entry is gone (2.1.108 keeps it; the helper removes it)');
      await s.close();
      await nextSessionDials(f, stack);
    });

    it('the backoff re-dial is bounded by its schedule and stops with the session', async (t) => {
      const f = await setup(t);
      const { s } = await cachedBySession(f, stack);
      const rounds = [];
      const bounded = sdk.redialConnectorsWhileLive(s.q, {
        ...f.opts,
        scheduleMs: [50, 50, 50],
        accountPollMs: false,
        onRedial: (o) => rounds.push(o),
      });
      t.after(() => bounded.close());
      await waitFor(() => !bounded.scheduled && rounds.length === 3, 'the three scheduled rounds');
      await bounded.settled();
      assert.ok(
        rounds.every((o) => o.length === 1 && o[0].server === NAME && !o[0].connected),
        JSON.stringify(rounds),
      );
      assert.ok(f.entry(), 'still needs authorization: the entry stays');
      // A long schedule, and the session ends after its first round: no round after that.
      const seen = [];
      const long = sdk.redialConnectorsWhileLive(s.q, {
        ...f.opts,
        scheduleMs: Array(50).fill(100),
        accountPollMs: false,
        onRedial: (o) => seen.push(o),
      });
      t.after(() => long.close());
      await waitFor(() => seen.length >= 1, 'a first round');
      await s.close();
      await waitFor(() => long.closed, 'the re-dial to stop with the session');
      await long.settled();
      const posts = f.standin.proxyPosts();
      assert.ok(seen.length < 50, `stopped early (${seen.length} rounds)`);
      await delay(500); // five schedule steps: nothing more reaches the proxy
      assert.equal(f.standin.proxyPosts(), posts, 'no dial after the session ended');
    });

    it('signIn for a connector: the claude.ai URL to authorize it (2.1.332+), or ERR_SIGN_IN_UNSUPPORTED', async (t) => {
      const f = await setup(t);
      const { s, e } = await cachedBySession(f, stack);
      if (e.id === undefined) {
        await assert.rejects(sdk.signIn(s.q, NAME, f.opts), (err) => {
          assert.equal(err.code, 'ERR_SIGN_IN_UNSUPPORTED');
          assert.match(err.message, /claude\.ai connector/);
          return true;
        });
        return;
      }
      const pending = await sdk.signIn(s.q, NAME, { ...f.opts, timeoutMs: 60_000 });
      assert.equal(pending.callbackExpected, false);
      assert.match(
        pending.authUrl,
        new RegExp(`^https://claude\\.ai/api/organizations/${DEFAULT_ORG}/mcp/start-auth/${ID}`),
      );
      f.standin.setMode('ok'); // the user authorized it on claude.ai, and says so
      assert.equal(await pending.redial(), 'connected');
      assert.deepEqual(await pending.completed, { server: NAME, status: 'connected' });
      assert.equal(f.entry(), undefined);
    });

    it('an account change in the global config: older connector entries go and the connectors are re-dialed', async (t) => {
      const f = await setup(t);
      const { s } = await cachedBySession(f, stack);
      const seen = [];
      const redial = sdk.redialConnectorsWhileLive(s.q, {
        ...f.opts,
        scheduleMs: false,
        accountPollMs: 100,
        globalConfigPath: f.globalConfig,
        onRedial: (o) => seen.push(o),
      });
      t.after(() => redial.close());
      f.standin.setMode('ok'); // the other account has the connector authorized
      const other = { account: '33333333-3333-4333-8333-333333333333', org: '44444444-4444-4444-8444-444444444444' };
      f.standin.setAccount(other);
      // The live Claude Code also rewrites its global config from what it holds in memory, and may
      // put the old identity back over a write of ours before a poll sees it: the switch is
      // written again until it is seen (as a real login keeps it).
      await waitFor(() => {
        if (fs.readFileSync(f.globalConfig, 'utf8').includes(other.account) && seen.length === 0) return false;
        if (seen.length === 0) f.writeAccount(other.account, other.org);
        return seen.length > 0;
      }, 'a re-dial after the account change');
      assert.deepEqual(seen[0], [{ server: NAME, status: 'connected', connected: true }]);
      assert.equal(f.entry(), undefined);
    });
  });
}
