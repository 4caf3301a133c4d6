'use strict';
// mcp-needs-auth/sdk with the Agent SDK's own Query: reconnectOnAuthChange against a real
// `query()` of each stack's @anthropic-ai/claude-agent-sdk (0.2.104, 0.3.334; support/stacks.js,
// fetched on first use) whose Claude Code child is a scripted stand-in
// (spawnClaudeCodeProcess), so the SDK's own control requests and its ways of ending a session
// (close(), abort, `break` out of the loop) are what the subscription sees. The helpers against
// a fake query: __test__/unit/sdk.test.js; against real sessions: __test__/e2e/e2e.test.js.
//
//   node --test __test__/e2e/sdk.test.js

const { describe, it, before } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { EventEmitter } = require('node:events');
const readline = require('node:readline');
const { PassThrough } = require('node:stream');

const ROOT = path.resolve(__dirname, '..', '..');
const addon = require(ROOT);
const { reconnectOnAuthChange } = require(path.join(ROOT, 'sdk.js'));
const { tmp } = require('../helpers/tmp.js');
const { opts, collectWarnings, until } = require('../helpers/sdk.js');
const { STACKS, ensureStacks, STACK_HOOK_TIMEOUT_MS } = require('../../support/stacks.js');

before(() => ensureStacks(), { timeout: STACK_HOOK_TIMEOUT_MS });

for (const stack of STACKS) describeStack(stack);

function describeStack(stack) {
  describe(`reconnectOnAuthChange with Agent SDK ${stack.agentSdk.version}'s own Query (a fake Claude Code process)`, () => {
    const SDK = stack.agentSdk.module;

    /**
     * What `spawnClaudeCodeProcess` returns, standing in for Claude Code: answers the control
     * requests mcp_status (from `statuses`) and mcp_reconnect (the server becomes connected), and
     * exits when its stdin ends, as Claude Code does.
     */
    function fakeClaude(statuses) {
      const proc = new EventEmitter();
      proc.stdin = new PassThrough();
      proc.stdout = new PassThrough();
      proc.killed = false;
      proc.exitCode = null;
      const exit = (code, signal) => {
        if (proc.exitCode !== null) return;
        proc.exitCode = code ?? 1;
        proc.stdout.end();
        setImmediate(() => proc.emit('exit', code, signal));
      };
      proc.kill = (signal) => {
        proc.killed = true;
        exit(null, signal);
        return true;
      };
      readline.createInterface({ input: proc.stdin }).on('line', (line) => {
        const m = JSON.parse(line);
        if (m.type !== 'control_request') return;
        const r = m.request;
        let response = {};
        if (r.subtype === 'mcp_status') {
          response = { mcpServers: Object.entries(statuses).map(([name, status]) => ({ name, status })) };
        }
        if (r.subtype === 'mcp_reconnect') statuses[r.serverName] = 'connected';
        const reply = {
          type: 'control_response',
          response: { subtype: 'success', request_id: m.request_id, response },
        };
        proc.stdout.write(`${JSON.stringify(reply)}\n`);
      });
      proc.stdin.on('finish', () => exit(0, null));
      return proc;
    }

    async function session(t, statuses) {
      const { query } = await import(SDK);
      const ac = new AbortController();
      let release;
      const hold = new Promise((r) => {
        release = r;
      });
      // biome-ignore lint/correctness/useYield: a prompt stream that stays open and sends nothing
      async function* input() {
        await hold;
      }
      const q = query({
        prompt: input(),
        options: { abortController: ac, spawnClaudeCodeProcess: () => fakeClaude(statuses) },
      });
      t.after(() => {
        release();
        q.close();
      });
      return { q, ac };
    }

    it('reconnects, and stops at the first event after query.close() without a warning', async (t) => {
      const dir = tmp(t);
      const statuses = { a: 'needs-auth' };
      const { q } = await session(t, statuses);
      const warnings = collectWarnings(t);
      const outcomes = [];
      const sub = reconnectOnAuthChange(q, opts(dir, { onReconnect: (o) => outcomes.push(o) }));
      t.after(() => sub.close());
      addon.invalidateNeedsAuth('a', { configDir: dir });
      await until(() => outcomes.length === 1, { what: 'the reconnect' });
      assert.deepEqual(outcomes, [{ server: 'a', ok: true, attempts: 1 }]);
      assert.equal(statuses.a, 'connected');
      q.close();
      statuses.a = 'needs-auth';
      addon.invalidateNeedsAuth('a', { configDir: dir });
      await until(() => sub.closed, { what: 'the subscription to close' });
      assert.equal(outcomes.length, 1);
      assert.deepEqual(warnings, []);
    });

    it("stops at once when the query's abortController aborts (passed as options.signal)", async (t) => {
      const dir = tmp(t);
      const { q, ac } = await session(t, { a: 'needs-auth' });
      const sub = reconnectOnAuthChange(q, opts(dir, { signal: ac.signal }));
      t.after(() => sub.close());
      assert.equal(sub.closed, false);
      ac.abort();
      assert.equal(sub.closed, true);
      await assert.rejects(q.mcpServerStatus(), 'the aborted query answers no control request');
    });

    it('stops at the first event after `break` leaves the for-await loop (the query returned)', async (t) => {
      const dir = tmp(t);
      const { q } = await session(t, { a: 'needs-auth' });
      const sub = reconnectOnAuthChange(q, opts(dir));
      t.after(() => sub.close());
      const pending = (async () => {
        for await (const _ of q) break; // the session yields nothing: return() ends it below
      })();
      await q.return(undefined);
      await pending.catch(() => {});
      addon.invalidateNeedsAuth('a', { configDir: dir });
      await until(() => sub.closed, { what: 'the subscription to close' });
    });
  });
}
