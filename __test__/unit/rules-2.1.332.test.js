'use strict';
// Claude Code 2.1.332's needs-auth rules given a server config (crates/core/src/server_rules.rs), through the
// public binding: a table over every rule, bad configs, list/purge/diagnose with configs.
// __test__/e2e/rules-2.1.332.test.js checks them against the real 2.1.332 binary.
//
//   node --test __test__/unit/rules-2.1.332.test.js

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const addon = require('../../index.js');
const { tmp } = require('../helpers/tmp.js');

const MIN = 60_000;
const H4 = 14_400_000;
const CACHE = 'mcp-needs-auth-cache.json';

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
    const dir = tmp(t);
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
    const dir = tmp(t);
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
    const dir = tmp(t);
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
      const dir = tmp(t);
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
    const dir = tmp(t);
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
    const dir = tmp(t);
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
    const dir = tmp(t);
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

describe("mcp-needs-auth/sdk passes the session's mcpServers along", () => {
  const sdk = require('../../sdk.js');

  it('prepareQuery judges entries with options.mcpServers: a claude.ai proxy entry of 20 min is still live', (t) => {
    const dir = tmp(t);
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
    const dir = tmp(t);
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
