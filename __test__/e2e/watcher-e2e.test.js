'use strict';
// Sticky invalidation against the REAL Claude Code CLI of both stacks (2.1.108, 2.1.332), offline on 127.0.0.1 (issue 8 §1).
// A `claude -p` that started before a sign-in memoised the cache it read then; when its other
// server answers 401 a moment later it writes that old copy back, resurrecting the signed-in
// server's entry. With autoInvalidate the subscription here must remove it again at once (and
// keep the other server's genuine new entry), so that the next Claude Code process connects.
//
//   node --test __test__/e2e/watcher-e2e.test.js

const { describe, it, before } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');

const addon = require('../..');
const { startMcpServer } = require('../../support/mcp-server.js');
const { makeHome, mcpAdd, mcpList, runPrint, killAll } = require('../../support/claude.js');
const { writeFreshToken } = require('../../support/credentials.js');
const { changeCacheLikeClaudeCode } = require('../../support/claude-code-cache.js');
const { STACKS, ensureStacks, STACK_HOOK_TIMEOUT_MS } = require('../../support/stacks.js');
const { until } = require('../helpers/wait.js');

// Both stacks, fetched on first use.
before(() => ensureStacks(), { timeout: STACK_HOOK_TIMEOUT_MS });

const SIGNED_IN = 'protected';
const OTHER = 'other';
const TOKEN = 'watcher-e2e-token';
const isMcp = (r) => r.path === '/mcp';
const delay = (ms) => new Promise((r) => setTimeout(r, ms));
const readCache = (h) => JSON.parse(fs.readFileSync(h.cachePath, 'utf8'));

/** `until` with this file's bound and poll interval. */
const waitFor = (pred, what, timeoutMs = 20_000) => until(pred, { what, timeoutMs, stepMs: 20 });

for (const stack of STACKS) {
  describe(`a running Claude Code ${stack.claudeCode.version} writes its start-up copy back`, {
    timeout: 180_000,
  }, () => {
    it('with autoInvalidate the resurrected entry is removed again at once; the genuine new 401 stays; the next claude -p connects', async (t) => {
      const srv = await startMcpServer();
      // The other server holds its first /mcp answer (a 401) until the test has signed in.
      let release;
      const released = new Promise((r) => {
        release = r;
      });
      let held = 0;
      const other = await startMcpServer({
        beforeMcp: async () => {
          held++;
          await released;
        },
      });
      const h = makeHome();
      let sub = null;
      t.after(async () => {
        if (sub) sub.close(); // first: its watcher writes in the dir removed below
        release();
        await srv.close();
        await other.close();
        killAll();
        fs.rmSync(h.home, { recursive: true, force: true, maxRetries: 5, retryDelay: 50 });
      });

      assert.equal((await mcpAdd(h.env, SIGNED_IN, srv.url, { stack })).code, 0);
      const list = await mcpList(h.env, { stack });
      assert.match(list.stdout, new RegExp(`${SIGNED_IN}: .*Needs authentication`));
      if (!fs.existsSync(h.cachePath)) {
        // 2.1.108's `mcp list` writes the entry without awaiting it and can exit first (seen under
        // load); what matters here is the running session below, so write it as it would have.
        t.diagnostic('claude mcp list exited before its cache write landed; writing its entry as it would');
        changeCacheLikeClaudeCode(h.cachePath, (doc) => {
          doc[SIGNED_IN] = { timestamp: Date.now() };
        });
      }
      const oldEntry = readCache(h)[SIGNED_IN];
      assert.equal(typeof oldEntry.timestamp, 'number', 'claude mcp list wrote the needs-auth entry');
      assert.equal((await mcpAdd(h.env, OTHER, other.url, { stack })).code, 0);

      const events = [];
      sub = addon.onAuthChanged(
        (e) => {
          events.push({ ...e, cached: addon.isNeedsAuthCached(SIGNED_IN, { configDir: h.configDir }) });
        },
        { configDir: h.configDir, credentials: 'file', autoInvalidate: true },
      );

      // 1. A Claude Code session starts: it reads (and memoises) the cache, skips the signed-out
      //    server, and dials the other one, which holds its answer.
      const running = runPrint(h.env, SIGNED_IN, { timeoutMs: 90_000, stack });
      await waitFor(() => held > 0, 'the running claude -p to dial the other server');

      // 2. The user signs in elsewhere: the subscription removes the entry.
      await delay(20);
      srv.signIn(TOKEN);
      writeFreshToken(h.configDir, SIGNED_IN, srv.url, { token: TOKEN });
      await waitFor(
        () => events.some((e) => e.reason === 'credentials-changed' && e.servers.includes(SIGNED_IN)),
        'credentials-changed',
      );
      assert.equal(SIGNED_IN in readCache(h), false, 'removed after the sign-in');

      // 3. The other server now answers 401: the running Claude Code adds its entry to the copy it
      //    read at start-up and writes it back, with the signed-in server's old entry in it.
      release();
      const first = await running;
      assert.equal(first.skipped, true, 'the running session had skipped the server (it started before the sign-in)');
      await waitFor(() => OTHER in readCache(h), "the running Claude Code's write of the other server's entry");
      await waitFor(
        () => events.some((e) => e.reason === 'cache-changed' && e.servers.includes(OTHER)),
        'cache-changed',
      );
      const writeBack = events.find((e) => e.reason === 'cache-changed' && e.servers.includes(OTHER));
      assert.ok(
        writeBack.servers.includes(SIGNED_IN),
        `Claude Code wrote the old entry back (the situation under test): ${JSON.stringify(writeBack.servers)}`,
      );
      assert.equal(writeBack.cached, false, 'inside the callback the resurrected entry is already gone again');
      await delay(300);
      const cache = readCache(h);
      assert.equal(SIGNED_IN in cache, false, `the written-back entry was removed again: ${JSON.stringify(cache)}`);
      assert.ok(
        cache[OTHER] && cache[OTHER].timestamp > oldEntry.timestamp,
        "the other server's genuine new entry stays",
      );
      assert.equal(events.filter((e) => e.reason === 'cache-changed').length, 1, 'one event for the write-back');

      // 4. The next Claude Code process connects to the signed-in server.
      const start = srv.requests.length;
      const next = await runPrint(h.env, SIGNED_IN, { timeoutMs: 90_000, stack });
      assert.equal(next.skipped, false, 'the next claude -p skipped the signed-in server');
      assert.equal(next.connected, true, 'the next claude -p connected');
      assert.ok(
        srv.requests
          .slice(start)
          .filter(isMcp)
          .some((r) => r.auth && r.rpc === 'tools/list'),
        'tools/list with the bearer',
      );
    });
  });
}

process.on('exit', killAll);
