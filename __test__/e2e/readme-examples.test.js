'use strict';
// README.md's examples that need the real Claude Code (helpers/readme-examples.js E2E_EXAMPLES),
// run as written on every stack, offline on loopback: the module names they import are handed the
// stack's Agent SDK (its query() pointed at the stack's Claude Code, whose child is reaped) and
// this checkout's mcp-needs-auth/sdk; their free names (env, mcpServers, prompt, ...) are the
// test's. unit/readme-examples.test.js checks that every example is run somewhere.
//
//   node --test __test__/e2e/readme-examples.test.js

const { describe, it, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { pathToFileURL } = require('node:url');

const ROOT = path.resolve(__dirname, '..', '..');
const addon = require(ROOT);
const sdk = require(path.join(ROOT, 'sdk.js'));
const { startMcpServer } = require('../../support/mcp-server.js');
const { makeHome, leftoverHomes, runClaude } = require('../../support/claude.js');
const { STACKS } = require('../../support/stacks.js');
const { openSession, claudeCodeSpawner } = require('../../support/session.js');
const { writeFreshToken } = require('../../support/credentials.js');
const { E2E_EXAMPLES, readmeExamples, runExample } = require('../helpers/readme-examples.js');
const { followAuthUrl } = require('../helpers/sign-in-stacks.js');

const NAME = 'github'; // the server the examples name
const TOKEN = 'readme-example-token';
const delay = (ms) => new Promise((r) => setTimeout(r, ms));
const examples = readmeExamples();
const example = (name) => {
  const e = examples.find((x) => x.name === name);
  assert.ok(e, `README.md has the example "${name}"`);
  return e;
};

after(() => assert.deepEqual(leftoverHomes(), [], 'temp HOMEs left behind'));

it('runs every example E2E_EXAMPLES names', () => {
  assert.deepEqual(Object.keys(RUNS).sort(), [...E2E_EXAMPLES].sort());
});

/** The module names an example imports, for `stack`: its SDK's query() aimed at its Claude Code. */
async function modulesFor(stack, env, spawner) {
  const real = await import(pathToFileURL(stack.agentSdk.module).href);
  const query = (args) => {
    const options = { ...args.options, cwd: env.HOME, ...stack.agentSdk.queryOptions };
    options.spawnClaudeCodeProcess = spawner.spawnClaudeCodeProcess;
    if (options.mcpServers && stack.agentSdk.version.startsWith('0.3.') && options.mcpServersDelivery === undefined) {
      options.mcpServersDelivery = 'argv'; // 0.3.x warns unless it is named
    }
    return real.query({ ...args, options });
  };
  const modules = { '@anthropic-ai/claude-agent-sdk': { ...real, query }, 'mcp-needs-auth/sdk': sdk };
  return async (spec) => {
    assert.ok(spec in modules, `the example imports ${spec}`);
    return modules[spec];
  };
}

const RUNS = {
  /**
   * A new session whose env points CLAUDE_CONFIG_DIR at its own config dir, where a sign-in saved
   * after a 401 left a superseded needs-auth entry: the example's prepareQuery purges it there, so
   * the session dials the server (the old snippet purged the host's dir: 0 requests).
   */
  async 'agent-sdk'(t, stack) {
    const srv = await startMcpServer();
    const h = makeHome({ configDir: true });
    const spawner = claudeCodeSpawner();
    t.after(async () => {
      await spawner.reapAll();
      await srv.close();
      h.cleanup();
    });
    addon.markNeedsAuth(NAME, { configDir: h.configDir });
    await delay(20); // the credentials are saved after the entry (ms timestamps)
    srv.signIn(TOKEN);
    writeFreshToken(h.configDir, NAME, srv.url, { token: TOKEN });
    assert.equal(addon.isNeedsAuthCached(NAME, { configDir: h.configDir }), true);
    const logged = [];
    await runExample(example('agent-sdk'), {
      __import: await modulesFor(stack, h.env, spawner),
      env: h.env,
      mcpServers: { [NAME]: { type: 'http', url: srv.url } },
      myHooks: { UserPromptSubmit: [{ hooks: [async () => ({ continue: true })] }] },
      prompt: 'hi',
      log: (...args) => logged.push(args),
    }).catch((err) => {
      // offline: the turn's model call fails, and the SDK throws that out of the loop
      if (!/API Error/.test(err?.message)) throw err;
    });
    assert.equal(
      addon.listNeedsAuth({ configDir: h.configDir }).length,
      0,
      "the entry was purged in options.env's config dir",
    );
    assert.ok(
      srv.requests.some((r) => r.path === '/mcp' && r.auth && r.rpc === 'tools/list'),
      `the session connected the server: ${JSON.stringify(srv.requests.map((r) => [r.path, r.rpc, r.auth]))}`,
    );
  },

  /** A live session reporting the server needs-auth; the example signs it in, the test user follows authUrl. */
  async 'sign-in'(t, stack) {
    const srv = await startMcpServer();
    const h = makeHome();
    let s = null;
    t.after(async () => {
      try {
        if (s) await s.close();
      } finally {
        await srv.close();
        h.cleanup();
      }
    });
    const add = await runClaude(h.env, ['mcp', 'add', '--transport', 'http', '-s', 'user', NAME, srv.url], { stack });
    assert.equal(add.code, 0, add.stderr);
    s = await openSession(stack, h.env);
    assert.equal((await s.settled(NAME))?.status, 'needs-auth');
    const users = [];
    const out = { log: [], error: [] };
    await runExample(example('sign-in'), {
      __import: async (spec) => {
        assert.equal(spec, 'mcp-needs-auth/sdk');
        return sdk;
      },
      q: s.q,
      env: h.env,
      showToUser: (url) => users.push(followAuthUrl(url)),
      console: { log: (...a) => out.log.push(a), error: (...a) => out.error.push(a) },
    });
    assert.deepEqual(out.error, []);
    assert.deepEqual(out.log, [[NAME, 'connected']]);
    assert.equal(users.length, 1, 'the user was shown the authUrl');
    assert.equal((await users[0]).status, 200);
    assert.equal((await s.status(NAME)).status, 'connected');
    assert.equal(fs.existsSync(h.cachePath) && addon.isNeedsAuthCached(NAME, { configDir: h.configDir }), false);
  },
};

for (const stack of STACKS) {
  describe(`README examples: ${stack.title}`, { timeout: 240_000 }, () => {
    for (const name of E2E_EXAMPLES) {
      it(`"${name}" runs as written`, (t) => RUNS[name](t, stack));
    }
  });
}
