'use strict';
// Claude Code 2.1.332's needs-auth rules given a server config (crates/core/src/server_rules.rs), through the
// public binding: a table over every rule, bad configs, list/purge/diagnose with configs, and one
// end-to-end case with the real 2.1.332 native binary (`claude -p` dials, or does not dial, each
// server exactly as isNeedsAuthCached(name, { serverConfig }) says).
//
// The e2e runner here is local and small on purpose (it runs the 2.1.332 native binary with
// `claude -p` only); its environment is support/claude.js's offlineEnv.
//
//   node --test __test__/rules-2.1.332.test.js

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const addon = require('../index.js');
const { startMcpServer } = require('../support/mcp-server.js');
const { offlineEnv, runClaude } = require('../support/claude.js');
const { stackByName } = require('../support/stacks.js');

const MIN = 60_000;
const H4 = 14_400_000;
const CACHE = 'mcp-needs-auth-cache.json';

function tmpDir(t, prefix = 'mna-rules-') {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), prefix));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

function writeCache(dir, doc) {
  fs.writeFileSync(path.join(dir, CACHE), JSON.stringify(doc));
}

const http = { type: 'http', url: 'https://h.example/mcp' };
const proxy = { type: 'claudeai-proxy', url: 'https://mcp-proxy.example/v1/mcp/x', id: 'mcpsrv_A' };
const stdio = { command: 'node', args: ['server.js'] };
const pluginStdio = { command: 'node', args: ['server.js'], pluginSource: 'tools@market', scope: 'dynamic' };
const pluginHttp = { type: 'http', url: 'https://h.example/mcp', pluginSource: 'tools@market' };
const pluginSse = { type: 'sse', url: 'https://h.example/sse', pluginSource: 'tools@market' };
const pluginHttpHeaders = { ...pluginHttp, headers: { 'X-Team': 'a' } };

// Claude Code's config hash of `pluginStdio` (the id it writes into such a server's entry):
// sha256 of the canonical JSON without scope/pluginSource, keys sorted, first 16 hex digits.
const PLUGIN_STDIO_ID = require('node:crypto')
  .createHash('sha256')
  .update('{"args":["server.js"],"command":"node","type":"stdio"}')
  .digest('hex')
  .slice(0, 16);

describe('the 2.1.332 rules, one row per rule', () => {
  const rows = [
    // [what, config, entry (age in ms, extra fields), cached with config, cached by name only]
    ['http without ttlMs, 14 min', http, [14 * MIN], true, true],
    ['http without ttlMs, 16 min', http, [16 * MIN], false, false],
    ['http, explicit ttlMs (1 h) wins, 30 min', http, [30 * MIN, { ttlMs: 3_600_000 }], true, true],
    ['http, explicit ttlMs (90 s) wins, 2 min', http, [2 * MIN, { ttlMs: 90_000 }], false, false],
    ['http, 59 s in the future (clock skew)', http, [-59_000], true, true],
    ['http, 61 s in the future', http, [-61_000], false, false],
    ['claudeai-proxy, same id, 3 h (4 h default)', proxy, [180 * MIN, { id: 'mcpsrv_A' }], true, false],
    ['claudeai-proxy, same id, 4 h 1 min', proxy, [H4 + MIN, { id: 'mcpsrv_A' }], false, false],
    ['claudeai-proxy, other id', proxy, [MIN, { id: 'mcpsrv_B' }], false, true],
    ['claudeai-proxy, entry without id', proxy, [MIN], false, true],
    ['stdio: never skipped', stdio, [MIN], false, true],
    ['plugin stdio, its hash id', pluginStdio, [MIN, { id: PLUGIN_STDIO_ID }], true, true],
    ['plugin stdio, its hash id, 16 min', pluginStdio, [16 * MIN, { id: PLUGIN_STDIO_ID }], false, false],
    ['plugin stdio, other id', pluginStdio, [MIN, { id: 'ffffffffffffffff' }], false, true],
    ['plugin http, no id, 3 h (4 h default)', pluginHttp, [180 * MIN], true, false],
    ['plugin sse, no id, 3 h (4 h default)', pluginSse, [180 * MIN], true, false],
    ['plugin http, entry with an id: ignored', pluginHttp, [MIN, { id: 'x' }], false, true],
    ['plugin http with headers: 15 min default', pluginHttpHeaders, [16 * MIN], false, false],
    ['plugin http, explicit ttlMs wins over 4 h', pluginHttp, [2 * MIN, { ttlMs: 90_000 }], false, false],
    ['sdk: never skipped', { type: 'sdk', name: 'x', instance: { circular: null } }, [MIN], false, true],
    ['ws: never skipped', { type: 'ws', url: 'ws://127.0.0.1:1' }, [MIN], false, true],
  ];

  it('isNeedsAuthCached with serverConfig, serverConfigs, and without', (t) => {
    const dir = tmpDir(t);
    const now = Date.now();
    const doc = {};
    const configs = {};
    rows.forEach(([, config, [age, extra]], i) => {
      doc[`s${i}`] = { timestamp: now - age, ...extra };
      configs[`s${i}`] = config;
    });
    writeCache(dir, doc);
    rows.forEach(([what, config, , exact, byName], i) => {
      const name = `s${i}`;
      assert.equal(
        addon.isNeedsAuthCached(name, { configDir: dir, serverConfig: config }),
        exact,
        `${what} (serverConfig)`,
      );
      assert.equal(
        addon.isNeedsAuthCached(name, { configDir: dir, serverConfigs: configs }),
        exact,
        `${what} (serverConfigs)`,
      );
      assert.equal(addon.isNeedsAuthCached(name, { configDir: dir }), byName, `${what} (name only)`);
    });
    const listed = addon.listNeedsAuth({ configDir: dir, serverConfigs: configs });
    assert.deepEqual(
      listed.map((e) => e.cached),
      rows.map((r) => r[3]),
    );
    assert.ok(listed.every((e) => e.judgedBy === 'config'));
    const byName = addon.listNeedsAuth({ configDir: dir });
    assert.deepEqual(
      byName.map((e) => e.cached),
      rows.map((r) => r[4]),
    );
    assert.ok(byName.every((e) => e.judgedBy === 'name' && e.ignored === undefined));
  });

  it('listNeedsAuth reports the effective TTL and why an entry is ignored; servers without a config go by name', (t) => {
    const dir = tmpDir(t);
    const now = Date.now();
    writeCache(dir, {
      proxy: { timestamp: now - MIN, id: 'old' },
      local: { timestamp: now - MIN },
      plug: { timestamp: now - MIN, id: 'x' },
      unknown: { timestamp: now - MIN },
    });
    const list = addon.listNeedsAuth({ configDir: dir, serverConfigs: { proxy, local: stdio, plug: pluginHttp } });
    const by = Object.fromEntries(list.map((e) => [e.server, e]));
    assert.equal(by.proxy.ttlMs, H4);
    assert.equal(by.proxy.ignored, 'id-mismatch');
    assert.equal(by.local.ignored, 'transport');
    assert.equal(by.plug.ignored, 'plugin-entry-has-id');
    assert.deepEqual([by.unknown.judgedBy, by.unknown.cached, by.unknown.ignored], ['name', true, undefined]);
  });

  it('serverConfig wins over serverConfigs[server]; defaultTtlMs does not bend the exact rule', (t) => {
    const dir = tmpDir(t);
    writeCache(dir, { h: { timestamp: Date.now() - 30 * MIN } });
    assert.equal(
      addon.isNeedsAuthCached('h', { configDir: dir, serverConfigs: { h: stdio }, serverConfig: pluginHttp }),
      true,
    );
    assert.equal(
      addon.isNeedsAuthCached('h', { configDir: dir, serverConfigs: { h: pluginHttp }, serverConfig: stdio }),
      false,
    );
    assert.equal(addon.isNeedsAuthCached('h', { configDir: dir, defaultTtlMs: H4 }), true);
    assert.equal(addon.isNeedsAuthCached('h', { configDir: dir, defaultTtlMs: H4, serverConfig: http }), false);
  });
});

describe('bad configs', () => {
  const cases = [
    [{ serverConfig: 'http' }, /^options\.serverConfig must be an object/],
    [{ serverConfig: [http] }, /^options\.serverConfig must be an object .*not an array/],
    [{ serverConfig: { type: 'grpc' } }, /^options\.serverConfig\.type must be 'stdio'.* not "grpc"/],
    [{ serverConfig: { type: 7 } }, /^options\.serverConfig\.type must be a string/],
    [{ serverConfig: { type: 'claudeai-proxy', id: 5 } }, /^options\.serverConfig\.id must be a string, not a number/],
    [{ serverConfigs: { github: { type: 'grpc' } } }, /^options\.serverConfigs\.github\.type must be/],
    [
      { serverConfigs: { 'claude.ai Figma': { type: 'claudeai-proxy', id: {} } } },
      /^options\.serverConfigs\["claude\.ai Figma"\]\.id must be a string/,
    ],
    [{ serverConfigs: { github: 42 } }, /^options\.serverConfigs\.github must be an object/],
    [{ serverConfigs: [http] }, /^options\.serverConfigs must be an object .*not an array/],
    [{ serverConfigs: 'x' }, /^options\.serverConfigs must be an object/],
  ];
  for (const [opts, message] of cases) {
    it(JSON.stringify(opts), (t) => {
      const dir = tmpDir(t);
      for (const call of [
        () => addon.isNeedsAuthCached('github', { configDir: dir, ...opts }),
        () => addon.listNeedsAuth({ configDir: dir, ...opts }),
        () => addon.diagnose('github', { configDir: dir, credentials: 'none', ...opts }),
        () => addon.purgeStale({ configDir: dir, credentials: 'none', ...opts }),
      ]) {
        assert.throws(call, (err) => err.code === 'ERR_INVALID_ARGUMENT' && message.test(err.message));
      }
    });
  }

  it('undefined and null mean "no config"; unknown fields and an sdk instance are ignored', (t) => {
    const dir = tmpDir(t);
    writeCache(dir, { a: { timestamp: Date.now() } });
    assert.equal(addon.isNeedsAuthCached('a', { configDir: dir, serverConfig: undefined }), true);
    assert.equal(addon.isNeedsAuthCached('a', { configDir: dir, serverConfig: null, serverConfigs: null }), true);
    const instance = { connect() {} };
    instance.self = instance;
    assert.equal(
      addon.isNeedsAuthCached('a', { configDir: dir, serverConfig: { type: 'sdk', name: 'a', instance } }),
      false,
    );
    assert.equal(addon.isNeedsAuthCached('a', { configDir: dir, serverConfigs: { a: undefined } }), true);
  });
});

describe('purgeStale and diagnose with configs', () => {
  it('a claude.ai proxy entry 20 min old is kept with its config (4 h), expired without', (t) => {
    const dir = tmpDir(t);
    const now = Date.now();
    const doc = { proxy: { timestamp: now - 20 * MIN, id: 'mcpsrv_A' }, mismatch: { timestamp: now - MIN, id: 'old' } };
    writeCache(dir, doc);
    const opts = { configDir: dir, credentials: 'none' };
    const serverConfigs = { proxy, mismatch: proxy };
    assert.deepEqual(addon.purgeStale({ ...opts, serverConfigs }), []);
    assert.deepEqual(JSON.parse(fs.readFileSync(path.join(dir, CACHE), 'utf8')), doc, 'ignored entries are kept');
    assert.deepEqual(addon.purgeStale(opts), [{ server: 'proxy', reason: 'expired' }]);
  });

  it('diagnose judges the entry with the config', (t) => {
    const dir = tmpDir(t);
    writeCache(dir, {
      p: { timestamp: Date.now() - 20 * MIN, id: 'mcpsrv_A' },
      s: { timestamp: Date.now() - MIN, id: PLUGIN_STDIO_ID },
    });
    const opts = { configDir: dir, credentials: 'none' };
    const d = addon.diagnose('p', { ...opts, serverConfig: proxy });
    assert.equal(d.skipped, true);
    assert.equal(d.cacheEntry.ttlMs, H4);
    assert.equal(d.reasons[0].kind, 'needs-auth-cache');
    assert.equal(addon.diagnose('p', opts).skipped, false, 'name only: 15 min, expired');
    assert.equal(
      addon.diagnose('p', { ...opts, serverConfig: { ...proxy, id: 'mcpsrv_B' } }).cacheEntry.ignored,
      'id-mismatch',
    );
    const s = addon.diagnose('s', { ...opts, serverConfig: pluginStdio });
    assert.equal(s.skipped, true);
    assert.match(s.reasons[0].message, /it failed/);
  });
});

// ---------------------------------------------------------------------------------------------
// End to end with the real Claude Code 2.1.332 native binary.

const CURRENT = stackByName('current');

/** `claude -p hi` of 2.1.332's native binary, offline (facts §6), in a throw-away HOME; with its debug log. */
async function runClaudePrint(home, mcpConfigFile, timeoutMs = 90_000) {
  const env = offlineEnv(home, { CLAUDE_CONFIG_DIR: path.join(home, '.claude') });
  const debugFile = path.join(home, 'debug.txt');
  const args = ['-p', 'hi', '--max-turns', '1', '--debug-file', debugFile];
  const r = await runClaude(env, [...args, '--mcp-config', mcpConfigFile, '--strict-mcp-config'], {
    timeoutMs,
    stack: CURRENT,
  });
  let debug = '';
  try {
    debug = fs.readFileSync(debugFile, 'utf8');
  } catch {
    /* not written */
  }
  return { ...r, debug };
}

describe('end to end with Claude Code 2.1.332', () => {
  it('claude -p dials exactly the servers isNeedsAuthCached(name, { serverConfig }) says it would', async (t) => {
    const home = tmpDir(t, 'mna-rules-e2e-');
    const configDir = path.join(home, '.claude');
    fs.mkdirSync(configDir, { recursive: true });
    const fresh = await startMcpServer({ signedIn: true });
    const aged = await startMcpServer({ signedIn: true });
    const longTtl = await startMcpServer({ signedIn: true });
    t.after(() => Promise.all([fresh.close(), aged.close(), longTtl.close()]));
    // A stdio server that leaves a mark when Claude Code starts it.
    const mark = path.join(home, 'stdio-started');
    const script = path.join(home, 'stdio-server.js');
    fs.writeFileSync(script, `require('fs').writeFileSync(${JSON.stringify(mark)}, 'x'); setTimeout(() => {}, 200);\n`);
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
    const r = await runClaudePrint(home, mcpConfig);
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

describe("mcp-needs-auth/sdk passes the session's mcpServers along", () => {
  const sdk = require('../sdk.js');

  it('prepareQuery judges entries with options.mcpServers: a claude.ai proxy entry of 20 min is still live', (t) => {
    const dir = tmpDir(t);
    const now = Date.now();
    const doc = { proxy: { timestamp: now - 20 * MIN, id: 'mcpsrv_A' }, plain: { timestamp: now - 20 * MIN } };
    writeCache(dir, doc);
    const env = { CLAUDE_CONFIG_DIR: dir };
    const options = { env, mcpServers: { proxy, plain: http } };
    assert.equal(sdk.prepareQuery(options, { credentials: 'none' }), options);
    assert.deepEqual(
      Object.keys(JSON.parse(fs.readFileSync(path.join(dir, CACHE), 'utf8'))),
      ['proxy'],
      'the proxy entry (4 h) is kept; the http one (15 min) is expired and purged',
    );
    sdk.prepareQuery({ env }, { credentials: 'none' });
    assert.deepEqual(
      JSON.parse(fs.readFileSync(path.join(dir, CACHE), 'utf8')),
      {},
      'without configs: name only, 15 min',
    );
  });

  it('a config the addon rejects is left out with a warning; the others still count', async (t) => {
    const dir = tmpDir(t);
    writeCache(dir, {
      proxy: { timestamp: Date.now() - 20 * MIN, id: 'mcpsrv_A' },
      odd: { timestamp: Date.now() - 20 * MIN },
    });
    const warnings = [];
    const onWarning = (w) => warnings.push(w);
    process.on('warning', onWarning);
    t.after(() => process.off('warning', onWarning));
    sdk.prepareQuery(
      { env: { CLAUDE_CONFIG_DIR: dir }, mcpServers: { proxy, odd: { type: 'quantum' } } },
      { credentials: 'none' },
    );
    await new Promise((r) => setImmediate(r));
    assert.deepEqual(Object.keys(JSON.parse(fs.readFileSync(path.join(dir, CACHE), 'utf8'))), ['proxy']);
    assert.ok(
      warnings.some((w) => /"odd" left out/.test(w.message) && /serverConfigs\.odd\.type/.test(w.message)),
      warnings.map(String).join('\n'),
    );
  });
});
