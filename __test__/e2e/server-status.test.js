'use strict';
// onServerStatus end to end, against the REAL Claude Code + Agent SDK of both stacks
// (support/stacks.js), offline on 127.0.0.1: a live session whose settings server (`claude mcp
// add -s user`, never passed by the host) is skipped for its needs-auth entry; a sign-in saved
// elsewhere (.credentials.json written as Claude Code writes it); reconnectOnAuthChange
// reconnects it, and onServerStatus pushes `connected`. The server's own request log is the
// ground truth: no /mcp request while the pushed status is needs-auth, the bearer's initialize
// and tools/list before the pushed connected.
//
//   node --test __test__/e2e/server-status.test.js

const { describe, it, before } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..');
const addon = require(ROOT);
const { onServerStatus, reconnectOnAuthChange, signIn } = require(path.join(ROOT, 'sdk.js'));
const { startMcpServer } = require('../../support/mcp-server.js');
const { makeHome, mcpAdd, runPrint } = require('../../support/claude.js');
const { openSession } = require('../../support/session.js');
const { STACKS, stackProblems } = require('../../support/stacks.js');
const { writeFreshToken } = require('../../support/credentials.js');
const { followAuthUrl } = require('../helpers/sign-in-stacks.js');
const { until } = require('../helpers/wait.js');

const NAME = 'protected';
const TOKEN = 'server-status-token';
const isMcp = (r) => r.path === '/mcp';
const delay = (ms) => new Promise((r) => setTimeout(r, ms));

/** `until` with this file's bound and poll interval. */
const waitUntil = (pred, what, timeoutMs = 30_000) => until(pred, { what, timeoutMs, stepMs: 50 });

for (const stack of STACKS) {
  describe(`onServerStatus end to end: ${stack.title}, offline`, { timeout: 240_000 }, () => {
    before(() => {
      assert.deepEqual(stackProblems(stack), [], `the ${stack.name} stack is installed as pinned`);
    });

    /**
     * A protected settings server (`claude mcp add -s user`) skipped for its needs-auth entry, a
     * live session, and onServerStatus + reconnectOnAuthChange on it, as the README wires them.
     * Each push is kept with the length of the server's request log at that moment.
     */
    async function watchedSession(t) {
      const srv = await startMcpServer();
      const h = makeHome();
      const stops = [];
      t.after(async () => {
        try {
          for (const stop of stops.reverse()) await stop();
        } finally {
          await srv.close();
          h.cleanup();
        }
      });
      const added = await mcpAdd(h.env, NAME, srv.url, { stack });
      assert.equal(added.code, 0, added.stderr);
      // A `claude -p` meets the 401 and writes the needs-auth entry, as a first session would.
      const r = await runPrint(h.env, NAME, { stack });
      assert.equal(r.needsAuth, true, 'claude -p: the server needs auth');
      assert.equal(addon.isNeedsAuthCached(NAME, { configDir: h.configDir }), true);

      const beforeSession = srv.count(isMcp);
      const session = await openSession(stack, h.env);
      stops.push(() => session.close());
      const q = session.q;
      const pushed = [];
      const statuses = onServerStatus(q, (e) => pushed.push({ ...e, requestsSeen: srv.requests.length }), {
        env: h.env,
      });
      stops.push(() => statuses.close());
      const reconnects = reconnectOnAuthChange(q, { env: h.env });
      stops.push(() => reconnects.close());

      const needsAuth = await waitUntil(
        () => pushed.find((e) => e.server === NAME && e.status === 'needs-auth'),
        'the needs-auth push',
      );
      assert.equal(needsAuth.reason, 'cached-needs-auth');
      const atNeedsAuth = srv.requests.slice(0, needsAuth.requestsSeen).filter(isMcp).length;
      assert.equal(atNeedsAuth, beforeSession, 'the session had not dialled it');
      if (needsAuth.scope !== undefined) assert.equal(needsAuth.scope, 'user', 'a settings server');
      await statuses.settled();
      return { srv, h, q, pushed, statuses, reconnects };
    }

    /** Each change of NAME pushed once, in order, ending with one `connected`. */
    function assertOncePerChange(pushed) {
      const mine = pushed.filter((e) => e.server === NAME).map((e) => e.status);
      for (let i = 1; i < mine.length; i++) assert.notEqual(mine[i], mine[i - 1], `no duplicate push: ${mine}`);
      assert.equal(mine.at(-1), 'connected', `${mine}`);
      assert.equal(mine.filter((x) => x === 'connected').length, 1, `${mine}`);
    }

    it('a settings server: needs-auth pushed from the cache, then a sign-in saved elsewhere pushes connected', async (t) => {
      const { srv, h, q, pushed, statuses, reconnects } = await watchedSession(t);

      // The sign-in, saved by someone else: the server accepts the token, the store holds it.
      await delay(20); // saved after the entry (ms timestamps)
      const signedInAt = srv.requests.length;
      srv.signIn(TOKEN);
      writeFreshToken(h.configDir, NAME, srv.url, { token: TOKEN });
      const connected = await waitUntil(
        () => pushed.find((e) => e.server === NAME && e.status === 'connected'),
        'the connected push',
      );
      assert.equal(connected.reason, 'signed-in-elsewhere');
      const beforePush = srv.requests.slice(signedInAt, connected.requestsSeen).filter(isMcp);
      assert.ok(
        beforePush.some((x) => x.auth && x.rpc === 'initialize'),
        'the session dialled with the bearer before the push',
      );
      await waitUntil(
        () => srv.requests.slice(signedInAt).some((x) => isMcp(x) && x.auth && x.rpc === 'tools/list'),
        'tools/list with the bearer',
      );
      const now = (await q.mcpServerStatus()).find((s) => s.name === NAME);
      assert.equal(now.status, 'connected', 'the session agrees');

      // Each change once, in order, no status pushed twice in a row.
      await reconnects.settled();
      await statuses.settled();
      assertOncePerChange(pushed);
      t.diagnostic(`pushed: ${pushed.map((e) => `${e.server}:${e.status}:${e.reason}`).join(', ')}`);

      // Closed: no push after, whatever the session does.
      statuses.close();
      const count = pushed.length;
      addon.invalidateNeedsAuth(NAME, { configDir: h.configDir });
      await q.reconnectMcpServer(NAME).catch(() => {});
      await delay(200);
      assert.equal(pushed.length, count, 'nothing pushed after close()');
    });

    it("the README's Sign in button: needs-auth pushed, signIn, the user signs in, connected pushed", async (t) => {
      const { srv, h, q, pushed, statuses, reconnects } = await watchedSession(t);
      const clickedAt = srv.requests.length;
      // The host's button: signIn, then the user's browser (plain HTTP, loopback only).
      const pending = await signIn(q, NAME, { env: h.env });
      assert.equal(typeof pending.authUrl, 'string', 'Claude Code asks for the user');
      const landed = await followAuthUrl(pending.authUrl);
      assert.equal(landed.leftFor, undefined, 'the sign-in stayed on loopback');
      const done = await pending.completed;
      assert.equal(done.status, 'connected');
      const connected = await waitUntil(
        () => pushed.find((e) => e.server === NAME && e.status === 'connected'),
        'the connected push',
      );
      // Claude Code connects the server itself after its own callback ('signed-in'), unless
      // reconnectOnAuthChange's reconnect, started by the same save, got there first.
      assert.ok(['signed-in', 'signed-in-elsewhere'].includes(connected.reason), connected.reason);
      assert.ok(
        srv.requests.slice(clickedAt, connected.requestsSeen).some((x) => isMcp(x) && x.auth && x.rpc === 'initialize'),
        'the session dialled with the bearer before the push',
      );
      await reconnects.settled();
      await statuses.settled();
      assertOncePerChange(pushed);
      t.diagnostic(`pushed: ${pushed.map((e) => `${e.server}:${e.status}:${e.reason}`).join(', ')}`);
    });
  });
}
