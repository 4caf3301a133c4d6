'use strict';
// Claude Code 2.1.332's needs-auth rules given a server config, end to end: the real 2.1.332
// native binary (`claude -p`) dials, or does not dial, each server exactly as
// isNeedsAuthCached(name, { serverConfig }) says (the rules themselves: unit/rules-2.1.332.test.js);
// and so does the 2.1.334 build Agent SDK 0.3.334 runs (its judgement is 2.1.332's, facts §8).
//
// The e2e runner here is local and small on purpose (it runs the 2.1.332 native binary with
// `claude -p` only); its environment is support/claude.js's offlineEnv.
//
//   node --test __test__/e2e/rules-2.1.332.test.js

const { describe, it, before } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const addon = require('../../index.js');
const { startMcpServer } = require('../../support/mcp-server.js');
const { offlineEnv, runClaude } = require('../../support/claude.js');
const { stackByName, ensureStack, STACK_HOOK_TIMEOUT_MS } = require('../../support/stacks.js');
const { tmp } = require('../helpers/tmp.js');

const MIN = 60_000;
const CACHE = 'mcp-needs-auth-cache.json';

function writeCache(dir, doc) {
  fs.writeFileSync(path.join(dir, CACHE), JSON.stringify(doc));
}

const CURRENT = stackByName('current');
// The current stack's two Claude Codes: the npm CLI's 2.1.332 and the Agent SDK's own 2.1.334.
const BUILDS = [CURRENT.claudeCode, CURRENT.agentSdk.claudeCode];
// Fetched on first use (exact pins, into the cache outside the repo).
before(() => ensureStack(CURRENT), { timeout: STACK_HOOK_TIMEOUT_MS });

/** `claude -p hi` of the native binary `cc`, offline (facts §6), in a throw-away HOME; with its debug log. */
async function runClaudePrint(cc, home, mcpConfigFile, timeoutMs = 90_000) {
  const env = offlineEnv(home, { CLAUDE_CONFIG_DIR: path.join(home, '.claude') });
  const debugFile = path.join(home, 'debug.txt');
  const args = ['-p', 'hi', '--max-turns', '1', '--debug-file', debugFile];
  const r = await runClaude(env, [...args, '--mcp-config', mcpConfigFile, '--strict-mcp-config'], {
    timeoutMs,
    stack: { claudeCode: cc },
  });
  let debug = '';
  try {
    debug = fs.readFileSync(debugFile, 'utf8');
  } catch {
    /* not written */
  }
  return { ...r, debug };
}

for (const cc of BUILDS) {
  describe(`end to end with Claude Code ${cc.version}`, () => {
    it('claude -p dials exactly the servers isNeedsAuthCached(name, { serverConfig }) says it would', async (t) => {
      const home = tmp(t, 'mna-rules-e2e-');
      const configDir = path.join(home, '.claude');
      fs.mkdirSync(configDir, { recursive: true });
      const fresh = await startMcpServer({ signedIn: true });
      const aged = await startMcpServer({ signedIn: true });
      const longTtl = await startMcpServer({ signedIn: true });
      t.after(() => Promise.all([fresh.close(), aged.close(), longTtl.close()]));
      // A stdio server that leaves a mark when Claude Code starts it.
      const mark = path.join(home, 'stdio-started');
      const script = path.join(home, 'stdio-server.js');
      fs.writeFileSync(
        script,
        `require('fs').writeFileSync(${JSON.stringify(mark)}, 'x'); setTimeout(() => {}, 200);\n`,
      );
      const servers = {
        fresh: { type: 'http', url: fresh.url },
        aged: { type: 'http', url: aged.url },
        longttl: { type: 'http', url: longTtl.url },
        local: { type: 'stdio', command: process.execPath, args: [script] },
      };
      const now = Date.now();
      writeCache(configDir, {
        fresh: { timestamp: now - MIN }, // within 15 min: skipped
        aged: { timestamp: now - 20 * MIN }, // past 15 min: dialed
        longttl: { timestamp: now - 20 * MIN, ttlMs: 3_600_000 }, // explicit ttlMs: skipped
        local: { timestamp: now - MIN }, // stdio: dialed whatever the entry (name-only says skipped)
      });
      const predicted = Object.fromEntries(
        Object.entries(servers).map(([name, serverConfig]) => [
          name,
          addon.isNeedsAuthCached(name, { configDir, serverConfig }),
        ]),
      );
      assert.deepEqual(predicted, { fresh: true, aged: false, longttl: true, local: false });
      assert.equal(addon.isNeedsAuthCached('local', { configDir }), true, 'the name-only rule would be wrong here');

      const mcpConfig = path.join(home, 'mcp.json');
      fs.writeFileSync(mcpConfig, JSON.stringify({ mcpServers: servers }));
      const r = await runClaudePrint(cc, home, mcpConfig);
      const dialed = {
        fresh: fresh.count((q) => q.path === '/mcp') > 0,
        aged: aged.count((q) => q.path === '/mcp') > 0,
        longttl: longTtl.count((q) => q.path === '/mcp') > 0,
        local: fs.existsSync(mark),
      };
      const context = `claude exited ${r.code}; debug log:\n${r.debug
        .split('\n')
        .filter((l) => /MCP/.test(l))
        .slice(0, 40)
        .join('\n')}`;
      for (const name of Object.keys(servers)) {
        assert.equal(
          dialed[name],
          !predicted[name],
          `${name}: predicted cached=${predicted[name]}, dialed=${dialed[name]}\n${context}`,
        );
      }
      assert.match(r.debug, /MCP server "fresh": Skipping connection \(cached needs-auth\)/, context);
    });
  });
}
