'use strict';
// Core API of the addon: cachePath, listNeedsAuth, isNeedsAuthCached, markNeedsAuth,
// invalidateNeedsAuth. Every test works in its own temp dir passed as options.configDir (never
// the real ~/.claude); child processes get an explicit env (HOME / CLAUDE_CONFIG_DIR) so nothing
// depends on the HOME of whoever runs the suite.
//
//   cd /work/main && node --test __test__/unit/api.test.js

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const ADDON = path.resolve(__dirname, '..', '..');
const { readableAddon } = require('../helpers/readable-addon');
const { cachePath, listNeedsAuth, isNeedsAuthCached, markNeedsAuth, invalidateNeedsAuth } = require(ADDON);
const { tmp } = require('../helpers/tmp.js');

const FILE = 'mcp-needs-auth-cache.json';
const MiB = 1024 * 1024;
const IS_ROOT = typeof process.getuid === 'function' && process.getuid() === 0;

/** A temp config dir holding a cache file with exactly `bytes`. */
function withCache(t, bytes) {
  const dir = tmp(t);
  const file = path.join(dir, FILE);
  fs.writeFileSync(file, bytes);
  return { dir, file, opts: { configDir: dir } };
}

/** Bytes, inode and nanosecond mtime/ctime: enough to prove a file was not rewritten. */
function snap(file) {
  const st = fs.lstatSync(file, { bigint: true });
  return { bytes: fs.readFileSync(file), ino: st.ino, mtimeNs: st.mtimeNs, ctimeNs: st.ctimeNs, mode: st.mode };
}

function assertUntouched(file, before, msg) {
  const after = snap(file);
  assert.ok(after.bytes.equals(before.bytes), `${msg}: bytes changed:\n${before.bytes}\n->\n${after.bytes}`);
  assert.equal(after.ino, before.ino, `${msg}: file replaced (inode)`);
  assert.equal(after.mtimeNs, before.mtimeNs, `${msg}: mtime changed`);
  assert.equal(after.ctimeNs, before.ctimeNs, `${msg}: ctime changed`);
}

/** Dir listing without the sidecar lock file. */
function listing(dir) {
  return fs
    .readdirSync(dir)
    .filter((n) => n !== `${FILE}.lock`)
    .sort();
}

/** Runs `code` in a fresh node with exactly `env` (plus PATH); returns its parsed stdout JSON. */
function runChild(code, env, extra = {}) {
  const r = spawnSync(process.execPath, ['-e', code], {
    env: { PATH: process.env.PATH, ...env },
    encoding: 'utf8',
    timeout: 20000,
    ...extra,
  });
  assert.equal(r.error, undefined, `child failed to run: ${r.error}`);
  assert.equal(r.status, 0, `child exited ${r.status} ${r.signal}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`);
  return JSON.parse(r.stdout);
}

function assertCode(fn, code, msg) {
  let thrown;
  try {
    fn();
  } catch (e) {
    thrown = e;
  }
  assert.ok(thrown, `${msg}: expected a throw with ${code}, got none`);
  assert.ok(thrown instanceof Error, `${msg}: not an Error: ${thrown}`);
  assert.equal(thrown.code, code, `${msg}: ${thrown.message}`);
  return thrown;
}

// ---------------------------------------------------------------------------------------------
describe('cachePath', () => {
  it('uses options.configDir', (t) => {
    const dir = tmp(t);
    assert.equal(cachePath({ configDir: dir }), path.join(dir, FILE));
    assert.equal(cachePath({ configDir: '/x/y' }), '/x/y/mcp-needs-auth-cache.json');
    // Relative stays relative (Claude Code does not resolve it either).
    assert.equal(cachePath({ configDir: 'rel/dir' }), 'rel/dir/mcp-needs-auth-cache.json');
  });

  it('options.configDir wins over CLAUDE_CONFIG_DIR and HOME', (_t) => {
    const out = runChild(
      `const m=require(${JSON.stringify(ADDON)});process.stdout.write(JSON.stringify(m.cachePath({configDir:'/opt/explicit'})))`,
      { CLAUDE_CONFIG_DIR: '/opt/from-env', HOME: '/opt/home' },
    );
    assert.equal(out, '/opt/explicit/mcp-needs-auth-cache.json');
  });

  it('falls back to CLAUDE_CONFIG_DIR, then HOME/.claude', () => {
    const code = `const m=require(${JSON.stringify(ADDON)});process.stdout.write(JSON.stringify([m.cachePath(),m.cachePath({}),m.cachePath(null),m.cachePath(undefined)]))`;
    assert.deepEqual(
      runChild(code, { CLAUDE_CONFIG_DIR: '/opt/from-env', HOME: '/opt/home' }),
      Array(4).fill('/opt/from-env/mcp-needs-auth-cache.json'),
    );
    assert.deepEqual(
      runChild(code, { HOME: '/opt/home' }),
      Array(4).fill('/opt/home/.claude/mcp-needs-auth-cache.json'),
    );
  });

  it("CLAUDE_CONFIG_DIR='' wins like Claude Code's `??` (the current directory)", () => {
    const code = `const m=require(${JSON.stringify(ADDON)});process.stdout.write(JSON.stringify(m.cachePath()))`;
    assert.equal(runChild(code, { CLAUDE_CONFIG_DIR: '', HOME: '/opt/home' }), FILE);
  });

  it('NFC-normalises an NFD configDir (options and CLAUDE_CONFIG_DIR)', (t) => {
    const nfd = '/opt/cafe\u0301';
    const nfc = '/opt/caf\u00e9';
    assert.notEqual(nfd, nfc);
    assert.equal(cachePath({ configDir: nfd }), `${nfc}/${FILE}`);
    assert.equal(cachePath({ configDir: nfc }), `${nfc}/${FILE}`);
    const code = `const m=require(${JSON.stringify(ADDON)});process.stdout.write(JSON.stringify(m.cachePath()))`;
    assert.equal(runChild(code, { CLAUDE_CONFIG_DIR: nfd, HOME: '/opt/home' }), `${nfc}/${FILE}`);
    assert.equal(runChild(code, { HOME: '/opt/ho\u0301me' }), `/opt/h\u00f3me/.claude/${FILE}`);

    // And files really go to the NFC directory.
    const base = tmp(t);
    markNeedsAuth('s', { configDir: path.join(base, 'cafe\u0301') });
    assert.deepEqual(fs.readdirSync(base), ['caf\u00e9']);
    assert.ok(fs.existsSync(path.join(base, 'caf\u00e9', FILE)));
    assert.equal(isNeedsAuthCached('s', { configDir: path.join(base, 'caf\u00e9') }), true);
  });

  it("an explicit configDir of '' is ERR_INVALID_ARGUMENT", () => {
    assertCode(() => cachePath({ configDir: '' }), 'ERR_INVALID_ARGUMENT', "configDir ''");
  });

  it('ERR_NO_CONFIG_DIR without CLAUDE_CONFIG_DIR, HOME or a passwd entry', {
    skip: !IS_ROOT && 'needs root to run a child as a uid without a passwd entry',
  }, () => {
    const code = `const m=require(${JSON.stringify(readableAddon())});
      const r={};
      try{m.cachePath();r.ok=true}catch(e){r.code=e.code}
      try{r.explicit=m.cachePath({configDir:'/opt/x'})}catch(e){r.explicit=e.code}
      process.stdout.write(JSON.stringify(r))`;
    const out = runChild(code, {}, { uid: 54321, gid: 54321, cwd: '/' });
    assert.deepEqual(out, { code: 'ERR_NO_CONFIG_DIR', explicit: '/opt/x/mcp-needs-auth-cache.json' });
  });
});

// ---------------------------------------------------------------------------------------------
describe('byte-exact round trips of Claude Code files', () => {
  const fixtures = {
    '2.1.108': '{"github":{"timestamp":1795668795083}}',
    '2.1.108 two servers': '{"github":{"timestamp":1795668795083},"linear":{"timestamp":1795668700000}}',
    '2.1.120+':
      '{"claude.ai Figma":{"timestamp":1795668795083,"ttlMs":14400000,"id":"mcpsrv_01HZX9","lapsedCcrSignInKey":"ccr-key-\u00e9\\"q\\"","future":{"x":[1,2.5,null,true,false],"nested":{"k":"v"}}},"github":{"timestamp":1795668795083,"ttlMs":90000},"weird":{"note":"no timestamp"},"n":5,"arr":[1,"two"]}',
    'empty object': '{}',
  };
  for (const [label, bytes] of Object.entries(fixtures)) {
    it(`${label}: mark another server then invalidate it gives the same bytes`, (t) => {
      const { file, opts } = withCache(t, bytes);
      const before = Date.now();
      markNeedsAuth('zz-other', opts);
      const after = Date.now();
      const mid = fs.readFileSync(file, 'utf8');
      // Compact JSON, the original bytes first, the new entry appended.
      assert.equal(mid.slice(0, bytes.length - 1), bytes.slice(0, -1));
      const ts = JSON.parse(mid)['zz-other'].timestamp;
      assert.ok(ts >= before && ts <= after, `timestamp ${ts} not in [${before}, ${after}]`);
      const sep = bytes === '{}' ? '' : ',';
      assert.equal(mid, `${bytes.slice(0, -1)}${sep}"zz-other":{"timestamp":${ts}}}`);
      assert.equal(mid, JSON.stringify(JSON.parse(mid)), 'output is compact JSON as JSON.stringify writes it');
      assert.deepEqual(invalidateNeedsAuth('zz-other', opts), ['zz-other']);
      assert.equal(fs.readFileSync(file, 'utf8'), bytes);
    });
  }

  it('other servers and unknown fields survive marking an existing server', (t) => {
    const bytes =
      '{"a":{"timestamp":1,"x":{"deep":[1]}},"b":{"timestamp":2,"ttlMs":3,"id":"i","lapsedCcrSignInKey":"k","z":true},"c":"odd"}';
    const { file, opts } = withCache(t, bytes);
    markNeedsAuth('b', { ...opts, ttlMs: 60000 });
    const doc = JSON.parse(fs.readFileSync(file, 'utf8'));
    assert.deepEqual(Object.keys(doc), ['a', 'b', 'c'], 'a re-marked server keeps its position, as obj[k]=v does');
    assert.deepEqual(doc.a, { timestamp: 1, x: { deep: [1] } });
    assert.equal(doc.c, 'odd');
    assert.deepEqual(Object.keys(doc.b), ['timestamp', 'ttlMs'], 'the entry is replaced as Claude Code replaces it');
    assert.equal(doc.b.ttlMs, 60000);
    invalidateNeedsAuth('b', opts);
    assert.equal(fs.readFileSync(file, 'utf8'), '{"a":{"timestamp":1,"x":{"deep":[1]}},"c":"odd"}');
  });
});

// ---------------------------------------------------------------------------------------------
describe('listNeedsAuth and the TTL rule', () => {
  it('reports every entry in file order with the documented fields', (t) => {
    const now = Date.now();
    const doc = {
      fresh: { timestamp: now - 5000 },
      stale: { timestamp: now - 905000 },
      longTtl: { timestamp: now - 1800000, ttlMs: 14400000, id: 'mcpsrv_1' },
      shortTtl: { timestamp: now - 5000, ttlMs: 1000 },
      skew59: { timestamp: now + 59000 },
      skew61: { timestamp: now + 61000 },
      noTs: { ttlMs: 5000 },
      strTs: { timestamp: String(now) },
      nullTs: { timestamp: null },
      num: 5,
      str: 'text',
      arr: [now],
      nul: null,
    };
    const bytes = JSON.stringify(doc);
    const { file, opts } = withCache(t, bytes);
    const list = listNeedsAuth(opts);
    assert.deepEqual(
      list.map((e) => e.server),
      Object.keys(doc),
    );
    const by = Object.fromEntries(list.map((e) => [e.server, e]));

    assert.deepEqual(by.fresh, {
      server: 'fresh',
      timestamp: now - 5000,
      ttlMs: 900000,
      expiresAt: now - 5000 + 900000,
      cached: true,
      judgedBy: 'name',
      connector: false,
    });
    assert.equal('id' in by.fresh, false);
    assert.deepEqual(by.stale, {
      server: 'stale',
      timestamp: now - 905000,
      ttlMs: 900000,
      expiresAt: now - 5000,
      cached: false,
      judgedBy: 'name',
      connector: false,
    });
    assert.deepEqual(by.longTtl, {
      server: 'longTtl',
      timestamp: now - 1800000,
      ttlMs: 14400000,
      expiresAt: now - 1800000 + 14400000,
      cached: true,
      id: 'mcpsrv_1',
      judgedBy: 'name',
      connector: false,
    });
    assert.equal(by.shortTtl.cached, false, 'entry ttlMs 1000 < age 5000');
    assert.equal(by.shortTtl.ttlMs, 1000);
    assert.equal(by.skew59.cached, true, '59 s in the future is tolerated clock skew');
    assert.equal(by.skew61.cached, false, '61 s in the future is not');
    for (const name of ['noTs', 'strTs', 'nullTs', 'num', 'str', 'arr', 'nul']) {
      assert.equal(by[name].timestamp, null, `${name}.timestamp`);
      assert.equal(by[name].expiresAt, null, `${name}.expiresAt`);
      assert.equal(by[name].cached, false, `${name}.cached`);
    }
    assert.equal(by.noTs.ttlMs, 5000);
    assert.equal(by.num.ttlMs, 900000);
    // isNeedsAuthCached agrees with the list, and reading changed nothing.
    for (const e of list) assert.equal(isNeedsAuthCached(e.server, opts), e.cached, e.server);
    assert.equal(fs.readFileSync(file, 'utf8'), bytes);
  });

  it('connector: by the server config when there is one, else by the name (claude.ai …)', (t) => {
    const { opts } = withCache(
      t,
      '{"claude.ai Figma":{"timestamp":1},"claude.ai Docs":{"timestamp":1},"slack":{"timestamp":1},"gh":{"timestamp":1}}',
    );
    const connectors = (o) => Object.fromEntries(listNeedsAuth(o).map((e) => [e.server, e.connector]));
    const byName = { 'claude.ai Figma': true, 'claude.ai Docs': true, slack: false, gh: false };
    assert.deepEqual(connectors(opts), byName);
    const serverConfigs = {
      'claude.ai Docs': { type: 'http', url: 'https://docs.example.test/mcp' },
      slack: { type: 'claudeai-proxy', url: 'https://mcp-proxy.anthropic.com/v1/mcp/x', id: 'mcpsrv_s' },
    };
    assert.deepEqual(connectors({ ...opts, serverConfigs }), { ...byName, 'claude.ai Docs': false, slack: true });
  });

  it('options.defaultTtlMs applies only to entries without ttlMs', (t) => {
    const now = Date.now();
    const doc = {
      thirtyMin: { timestamp: now - 1800000 },
      ownShortTtl: { timestamp: now - 1800000, ttlMs: 60000 },
      ownLongTtl: { timestamp: now - 1800000, ttlMs: 14400000 },
      tenSec: { timestamp: now - 10000 },
    };
    const { opts } = withCache(t, JSON.stringify(doc));
    const judge = (o) => Object.fromEntries(listNeedsAuth(o).map((e) => [e.server, [e.ttlMs, e.cached]]));
    assert.deepEqual(judge(opts), {
      thirtyMin: [900000, false],
      ownShortTtl: [60000, false],
      ownLongTtl: [14400000, true],
      tenSec: [900000, true],
    });
    const long = { ...opts, defaultTtlMs: 14400000 };
    assert.deepEqual(judge(long), {
      thirtyMin: [14400000, true],
      ownShortTtl: [60000, false],
      ownLongTtl: [14400000, true],
      tenSec: [14400000, true],
    });
    const short = { ...opts, defaultTtlMs: 5000 };
    assert.deepEqual(judge(short), {
      thirtyMin: [5000, false],
      ownShortTtl: [60000, false],
      ownLongTtl: [14400000, true],
      tenSec: [5000, false],
    });
    assert.equal(listNeedsAuth(long).find((e) => e.server === 'thirtyMin').expiresAt, now - 1800000 + 14400000);
    for (const o of [opts, long, short]) {
      for (const e of listNeedsAuth(o))
        assert.equal(isNeedsAuthCached(e.server, o), e.cached, `${e.server} ${o.defaultTtlMs}`);
    }
    assert.equal(isNeedsAuthCached('absent', long), false);
    assert.equal(isNeedsAuthCached('toString', long), false, 'no inherited keys');
  });

  it('a missing file or a missing dir lists nothing and creates nothing', (t) => {
    const base = tmp(t);
    assert.deepEqual(listNeedsAuth({ configDir: base }), []);
    assert.equal(isNeedsAuthCached('x', { configDir: base }), false);
    const missing = path.join(base, 'no', 'such');
    assert.deepEqual(listNeedsAuth({ configDir: missing }), []);
    assert.equal(isNeedsAuthCached('x', { configDir: missing }), false);
    assert.deepEqual(fs.readdirSync(base), []);
  });

  it('sees a file rewritten behind its back (no stale memo)', (t) => {
    const now = Date.now();
    const { file, opts } = withCache(t, JSON.stringify({ a: { timestamp: now } }));
    assert.equal(isNeedsAuthCached('a', opts), true);
    // Same length, same mtime second: only the content differs.
    fs.writeFileSync(file, JSON.stringify({ b: { timestamp: now } }));
    assert.equal(isNeedsAuthCached('a', opts), false);
    assert.equal(isNeedsAuthCached('b', opts), true);
    fs.unlinkSync(file);
    assert.equal(isNeedsAuthCached('b', opts), false);
    assert.deepEqual(listNeedsAuth(opts), []);
  });
});

// ---------------------------------------------------------------------------------------------
describe('markNeedsAuth', () => {
  it('writes {timestamp: now} as compact JSON', (t) => {
    const dir = tmp(t);
    const opts = { configDir: dir };
    const before = Date.now();
    markNeedsAuth('github', opts);
    const after = Date.now();
    const text = fs.readFileSync(path.join(dir, FILE), 'utf8');
    const m = /^\{"github":\{"timestamp":(\d+)\}\}$/.exec(text);
    assert.ok(m, `unexpected bytes ${text}`);
    const ts = Number(m[1]);
    assert.ok(ts >= before && ts <= after, `${ts} not in [${before}, ${after}]`);
    assert.equal(isNeedsAuthCached('github', opts), true);
    assert.deepEqual(listNeedsAuth(opts), [
      {
        server: 'github',
        timestamp: ts,
        ttlMs: 900000,
        expiresAt: ts + 900000,
        cached: true,
        judgedBy: 'name',
        connector: false,
      },
    ]);
  });

  it('adds ttlMs and id from options, in that order', (t) => {
    const dir = tmp(t);
    const before = Date.now();
    markNeedsAuth('figma', { configDir: dir, ttlMs: 90000, id: 'mcpsrv_01' });
    markNeedsAuth('onlyTtl', { configDir: dir, ttlMs: 0 });
    markNeedsAuth('onlyId', { configDir: dir, id: 'x' });
    const after = Date.now();
    const text = fs.readFileSync(path.join(dir, FILE), 'utf8');
    const m =
      /^\{"figma":\{"timestamp":(\d+),"ttlMs":90000,"id":"mcpsrv_01"\},"onlyTtl":\{"timestamp":(\d+),"ttlMs":0\},"onlyId":\{"timestamp":(\d+),"id":"x"\}\}$/.exec(
        text,
      );
    assert.ok(m, `unexpected bytes ${text}`);
    for (const ts of m.slice(1).map(Number)) assert.ok(ts >= before && ts <= after);
    const by = Object.fromEntries(listNeedsAuth({ configDir: dir }).map((e) => [e.server, e]));
    assert.equal(by.figma.id, 'mcpsrv_01');
    assert.equal(by.figma.ttlMs, 90000);
    assert.equal(by.onlyTtl.cached, false, 'ttlMs 0 is never cached');
    assert.equal(by.onlyId.cached, true);
  });

  it('creates a missing config dir (recursively)', (t) => {
    const base = tmp(t);
    const dir = path.join(base, 'a', 'b', 'c');
    markNeedsAuth('s', { configDir: dir });
    assert.ok(fs.statSync(dir).isDirectory());
    assert.deepEqual(Object.keys(JSON.parse(fs.readFileSync(path.join(dir, FILE), 'utf8'))), ['s']);
  });
});

// ---------------------------------------------------------------------------------------------
describe('invalidateNeedsAuth', () => {
  const doc = '{"a":{"timestamp":1},"b":{"timestamp":2},"c":{"timestamp":3,"ttlMs":1},"d":5}';

  it('one name: returns it only when it was there', (t) => {
    const { file, opts } = withCache(t, doc);
    assert.deepEqual(invalidateNeedsAuth('b', opts), ['b']);
    assert.equal(fs.readFileSync(file, 'utf8'), '{"a":{"timestamp":1},"c":{"timestamp":3,"ttlMs":1},"d":5}');
    const s = snap(file);
    assert.deepEqual(invalidateNeedsAuth('b', opts), []);
    assertUntouched(file, s, 'second invalidate of b');
  });

  it("an array: the names actually removed, in the caller's order, once each", (t) => {
    const { file, opts } = withCache(t, doc);
    assert.deepEqual(invalidateNeedsAuth(['zzz', 'd', 'a', 'd', 'nope'], opts), ['d', 'a']);
    assert.equal(fs.readFileSync(file, 'utf8'), '{"b":{"timestamp":2},"c":{"timestamp":3,"ttlMs":1}}');
    const s = snap(file);
    assert.deepEqual(invalidateNeedsAuth([], opts), []);
    assert.deepEqual(invalidateNeedsAuth(['a', 'x'], opts), []);
    assertUntouched(file, s, 'nothing to remove');
  });

  it('undefined / null: all entries in file order', (t) => {
    for (const sel of [undefined, null]) {
      const { file, opts } = withCache(t, doc);
      assert.deepEqual(invalidateNeedsAuth(sel, opts), ['a', 'b', 'c', 'd']);
      assert.equal(fs.readFileSync(file, 'utf8'), '{}');
      const s = snap(file);
      assert.deepEqual(invalidateNeedsAuth(sel, opts), []);
      assertUntouched(file, s, `invalidate(${sel}) of an empty doc`);
    }
  });

  it('options.writtenBefore: only entries with a numeric timestamp below it go, judged under the lock', (t) => {
    const { file, opts } = withCache(
      t,
      '{"old":{"timestamp":10},"new":{"timestamp":20},"odd":{"timestamp":"5"},"none":{},"claude.ai X":{"timestamp":1}}',
    );
    assert.deepEqual(invalidateNeedsAuth(['new', 'odd', 'none', 'old'], { ...opts, writtenBefore: 20 }), ['old']);
    assert.deepEqual(invalidateNeedsAuth(undefined, { ...opts, writtenBefore: 20 }), ['claude.ai X']);
    assert.equal(fs.readFileSync(file, 'utf8'), '{"new":{"timestamp":20},"odd":{"timestamp":"5"},"none":{}}');
    assertCode(() => invalidateNeedsAuth('new', { ...opts, writtenBefore: -1 }), 'ERR_INVALID_ARGUMENT', 'negative');
    assertCode(() => invalidateNeedsAuth('new', { ...opts, writtenBefore: '20' }), 'ERR_INVALID_ARGUMENT', 'a string');
    assert.deepEqual(invalidateNeedsAuth('new', { ...opts, writtenBefore: 21 }), ['new']);
  });

  it('nothing to remove: no file, no lock and no dir are created', (t) => {
    const base = tmp(t);
    const dir = path.join(base, 'cfg');
    for (const sel of [undefined, null, 'x', ['x', 'y'], []]) {
      assert.deepEqual(invalidateNeedsAuth(sel, { configDir: dir }), []);
    }
    assert.deepEqual(fs.readdirSync(base), []);
    fs.mkdirSync(dir);
    assert.deepEqual(invalidateNeedsAuth(undefined, { configDir: dir }), []);
    assert.deepEqual(fs.readdirSync(dir), []);
  });

  it("a list's elements are each read once, in order, and the first that is no name ends the call", (t) => {
    const { file, opts } = withCache(t, doc);
    const s = snap(file);
    let reads = 0;
    const counted = ['zzz', 'a'];
    Object.defineProperty(counted, 0, {
      get() {
        reads++;
        return 'd';
      },
      enumerable: true,
    });
    const long = 'l'.repeat(300);
    // A non-string in the middle is named by its type; the names before it remove nothing.
    const e = assertCode(() => invalidateNeedsAuth(['a', 5, 'b'], opts), 'ERR_INVALID_SERVER_NAME', 'number');
    assert.match(e.message, /not Number/);
    // An element whose getter throws ends the call; one after a non-string is never run.
    let thrown = 0;
    const throwing = (first) => {
      const list = [first, 'a'];
      Object.defineProperty(list, 1, {
        get() {
          thrown++;
          throw new Error('getter threw');
        },
      });
      return list;
    };
    assert.throws(
      () => invalidateNeedsAuth(throwing('b'), opts),
      (err) =>
        err.code === 'ERR_INVALID_ARGUMENT' &&
        err.message === 'server[1]: reading it threw' &&
        err.cause?.message === 'getter threw',
      "read_threw's rule: the thrown value as the cause",
    );
    assert.equal(thrown, 1);
    assertCode(() => invalidateNeedsAuth(throwing(5), opts), 'ERR_INVALID_SERVER_NAME', 'number, then a getter');
    assert.equal(thrown, 1, 'the getter after the number did not run');
    assertUntouched(file, s, 'refused lists');
    fs.writeFileSync(file, `{"a":{"timestamp":1},"${long}":{"timestamp":2},"d":{"timestamp":3}}`);
    assert.deepEqual(invalidateNeedsAuth(counted, opts), ['d', 'a']);
    assert.equal(reads, 1, 'the getter ran once');
    assert.deepEqual(invalidateNeedsAuth(['x', long, 'y'], opts), [long], 'a name over 256 bytes in a list');
    assert.equal(fs.readFileSync(file, 'utf8'), '{}');
  });

  it('called near the stack limit, bulk results are still exact', (t) => {
    const names = Array.from({ length: 20000 }, (_, i) => `s${i}`);
    const many = JSON.stringify(Object.fromEntries(names.map((s) => [s, { timestamp: 1 }])));
    const { file, opts } = withCache(t, many);
    const purgeOpts = { ...opts, credentials: 'none' };
    let max = 0;
    // One function both finds how deep it can go and, `margin` frames short of that, calls.
    function down(depth, at, out) {
      if (at < 0) {
        max = depth;
        return down(depth + 1, at, out);
      }
      if (depth < at) return down(depth + 1, at, out);
      out.push(invalidateNeedsAuth(names, opts));
      fs.writeFileSync(file, many);
      out.push(invalidateNeedsAuth(undefined, opts));
      fs.writeFileSync(file, many);
      out.push(require(ADDON).purgeStale(purgeOpts));
      fs.writeFileSync(file, many);
    }
    try {
      down(0, -1, []);
    } catch {}
    const purged = names.map((server) => ({ server, reason: 'expired' }));
    for (const margin of [2000, 200, 50]) {
      const out = [];
      down(0, max - margin, out);
      assert.deepEqual(out, [names, names, purged], `${margin} frames short of the limit`);
    }
  });

  it('a list claiming 2 ** 32 - 1 names is refused, however its holes read (no allocation for the claim)', () => {
    // In a child: reading every element before judging any allocated room for all of them
    // first, which aborted the process; and a prototype answering every hole with a name
    // would hold the call for billions of reads.
    const out = runChild(
      `const m=require(${JSON.stringify(ADDON)});const a=['a'];a.length=2**32-1;` +
        `const b=['a'];b.length=2**32-1;Object.setPrototypeOf(b,new Proxy([],{get:()=>'x'}));` +
        'const r=[];for(const l of [a,b])' +
        `try{m.invalidateNeedsAuth(l,{configDir:'/nonexistent/mna'});r.push(null)}` +
        'catch(e){r.push([e.code,e.message])}process.stdout.write(JSON.stringify(r))',
      {},
    );
    for (const [code, message] of out) {
      assert.equal(code, 'ERR_INVALID_ARGUMENT');
      assert.match(message, /^server is an array of 4294967295 names, more than the 1048576 a call takes/);
    }
    assert.equal(out.length, 2);
    const holed = ['a', 'b'];
    holed.length = 5;
    assertCode(() => invalidateNeedsAuth(holed, { configDir: '/nonexistent/mna' }), 'ERR_INVALID_SERVER_NAME', 'hole');
  });

  it('20,000 names (more than one call assembles): every one read, the removed ones in order', (t) => {
    const names = Array.from({ length: 20000 }, (_, i) => `s${i}`);
    names[7] = '\u00e9t\u00e9';
    names[9000] = 'l'.repeat(300);
    const many = JSON.stringify(Object.fromEntries(names.map((s) => [s, { timestamp: 1 }])));
    const { file, opts } = withCache(t, many);
    // Reversed, with a name twice and names not in the file between them.
    const list = names.flatMap((s, i) => (i % 1000 === 0 ? [s, `absent${i}`, s] : [s])).reverse();
    assert.deepEqual(invalidateNeedsAuth(list, opts), [...names].reverse());
    assert.equal(fs.readFileSync(file, 'utf8'), '{}');
    fs.writeFileSync(file, many);
    assert.deepEqual(invalidateNeedsAuth(undefined, opts), names);
    fs.writeFileSync(file, many);
    const purged = require(ADDON).purgeStale({ ...opts, credentials: 'none' });
    assert.deepEqual(
      purged,
      names.map((server) => ({ server, reason: 'expired' })),
    );
    assert.deepEqual(Object.keys(purged[12345]), ['server', 'reason']);
  });

  it('a corrupt file with nothing to remove is left exactly as it is', (t) => {
    const { dir, file, opts } = withCache(t, '{nope');
    const s = snap(file);
    assert.deepEqual(invalidateNeedsAuth(undefined, opts), []);
    assert.deepEqual(invalidateNeedsAuth('nope', opts), []);
    assertUntouched(file, s, 'corrupt file');
    assert.deepEqual(listing(dir), [FILE]);
  });
});

// ---------------------------------------------------------------------------------------------
describe('file modes', () => {
  it('a new cache file and its lock file are 0600 whatever the umask', (t) => {
    const dir = tmp(t);
    const old = process.umask(0o000);
    try {
      markNeedsAuth('s', { configDir: dir });
    } finally {
      process.umask(old);
    }
    assert.equal(fs.statSync(path.join(dir, FILE)).mode & 0o7777, 0o600);
    assert.equal(fs.statSync(path.join(dir, `${FILE}.lock`)).mode & 0o7777, 0o600);
    // No temp files left behind.
    assert.deepEqual(fs.readdirSync(dir).sort(), [FILE, `${FILE}.lock`]);
  });

  it('an existing 0644 file keeps 0644 (and 0640 keeps 0640)', (t) => {
    for (const mode of [0o644, 0o640]) {
      const { file, opts } = withCache(t, '{"a":{"timestamp":1}}');
      fs.chmodSync(file, mode);
      markNeedsAuth('b', opts);
      assert.equal(fs.statSync(file).mode & 0o7777, mode, 'after mark');
      invalidateNeedsAuth('b', opts);
      assert.equal(fs.statSync(file).mode & 0o7777, mode, 'after invalidate');
      assert.equal(fs.readFileSync(file, 'utf8'), '{"a":{"timestamp":1}}');
    }
  });
});

// ---------------------------------------------------------------------------------------------
describe('server names are ordinary, distinct keys', () => {
  it('__proto__, constructor, spaces, non-ASCII, NFD vs NFC', (t) => {
    const dir = tmp(t);
    const opts = { configDir: dir };
    const names = [
      '__proto__',
      'constructor',
      'claude.ai Figma',
      '日本語サーバー',
      'emoji 🔐',
      'cafe\u0301',
      'caf\u00e9',
      'hasOwnProperty',
    ];
    for (const n of names) markNeedsAuth(n, opts);
    const text = fs.readFileSync(path.join(dir, FILE), 'utf8');
    for (const n of names)
      assert.ok(text.includes(`${JSON.stringify(n)}:{"timestamp":`), `raw key ${JSON.stringify(n)} in ${text}`);
    const parsed = JSON.parse(text);
    assert.equal(Object.getPrototypeOf(parsed), Object.prototype, 'parsing the file does not change the prototype');
    assert.deepEqual(Object.keys(parsed), names);
    assert.ok(Object.hasOwn(parsed, '__proto__'));

    const list = listNeedsAuth(opts);
    assert.deepEqual(
      list.map((e) => e.server),
      names,
      'exact spellings, NFD not normalised',
    );
    for (const e of list) {
      assert.equal(Object.getPrototypeOf(e), Object.prototype);
      assert.equal(e.cached, true);
    }
    for (const n of names) assert.equal(isNeedsAuthCached(n, opts), true, n);
    assert.equal(isNeedsAuthCached('toString', opts), false);
    assert.equal(isNeedsAuthCached('valueOf', opts), false);
    assert.equal({}.polluted, undefined);

    // NFD and NFC are different servers.
    assert.deepEqual(invalidateNeedsAuth('cafe\u0301', opts), ['cafe\u0301']);
    assert.equal(isNeedsAuthCached('cafe\u0301', opts), false);
    assert.equal(isNeedsAuthCached('caf\u00e9', opts), true);
    assert.deepEqual(invalidateNeedsAuth(['__proto__', 'constructor'], opts), ['__proto__', 'constructor']);
    const after = JSON.parse(fs.readFileSync(path.join(dir, FILE), 'utf8'));
    assert.deepEqual(Object.keys(after), [
      'claude.ai Figma',
      '日本語サーバー',
      'emoji 🔐',
      'caf\u00e9',
      'hasOwnProperty',
    ]);
  });

  it('reads a Claude Code file whose keys are __proto__ and constructor', (t) => {
    const now = Date.now();
    const bytes = `{"__proto__":{"timestamp":${now}},"constructor":{"timestamp":${now},"polluted":true}}`;
    const { file, opts } = withCache(t, bytes);
    assert.deepEqual(
      listNeedsAuth(opts).map((e) => [e.server, e.cached]),
      [
        ['__proto__', true],
        ['constructor', true],
      ],
    );
    markNeedsAuth('x', opts);
    invalidateNeedsAuth('x', opts);
    assert.equal(fs.readFileSync(file, 'utf8'), bytes);
    assert.equal({}.polluted, undefined);
  });

  it('4096 UTF-8 bytes is the longest name', (t) => {
    const dir = tmp(t);
    const opts = { configDir: dir };
    markNeedsAuth('x'.repeat(4096), opts);
    markNeedsAuth('\u00e9'.repeat(2048), opts); // 4096 bytes
    assert.equal(isNeedsAuthCached('x'.repeat(4096), opts), true);
    assert.deepEqual(
      listNeedsAuth(opts).map((e) => e.server.length),
      [4096, 2048],
    );
    assertCode(() => markNeedsAuth('\u00e9'.repeat(2049), opts), 'ERR_INVALID_SERVER_NAME', '4098 bytes');
  });
});

// ---------------------------------------------------------------------------------------------
describe('bad input throws a stable code and leaves the file alone', () => {
  const BYTES = '{"keep":{"timestamp":1795668795083,"ttlMs":90000},"other":"x"}';

  const badNames = [
    ['empty', ''],
    ['NUL', 'a\0b'],
    ['4097 bytes', 'x'.repeat(4097)],
    ['number', 5],
    ['object', { name: 'a' }],
    ['boolean', true],
    ['symbol', Symbol('s')],
  ];
  for (const [label, name] of badNames) {
    it(`server name: ${label} -> ERR_INVALID_SERVER_NAME`, (t) => {
      const { dir, file, opts } = withCache(t, BYTES);
      const s = snap(file);
      const before = listing(dir);
      const e1 = assertCode(() => markNeedsAuth(name, opts), 'ERR_INVALID_SERVER_NAME', 'mark');
      assertCode(() => isNeedsAuthCached(name, opts), 'ERR_INVALID_SERVER_NAME', 'isCached');
      if (typeof name === 'string') {
        assertCode(() => invalidateNeedsAuth(name, opts), 'ERR_INVALID_SERVER_NAME', 'invalidate');
        assert.ok(!e1.message.includes('\0'), 'no NUL in the message');
      }
      assertCode(() => invalidateNeedsAuth(['keep', name], opts), 'ERR_INVALID_SERVER_NAME', 'invalidate([...])');
      assertUntouched(file, s, label);
      assert.deepEqual(listing(dir), before);
      assert.equal(fs.existsSync(`${file}.lock`), false, 'validation happens before the lock');
    });
  }

  it('server name: missing/undefined/null for mark and isCached -> ERR_INVALID_SERVER_NAME', (t) => {
    const { file, opts } = withCache(t, BYTES);
    const s = snap(file);
    assertCode(() => markNeedsAuth(), 'ERR_INVALID_SERVER_NAME', 'mark()');
    assertCode(() => markNeedsAuth(undefined, opts), 'ERR_INVALID_SERVER_NAME', 'mark(undefined)');
    assertCode(() => markNeedsAuth(null, opts), 'ERR_INVALID_SERVER_NAME', 'mark(null)');
    assertCode(() => isNeedsAuthCached(undefined, opts), 'ERR_INVALID_SERVER_NAME', 'isCached(undefined)');
    assertUntouched(file, s, 'missing names');
  });

  it('invalidate selection of the wrong type -> ERR_INVALID_ARGUMENT', (t) => {
    const { file, opts } = withCache(t, BYTES);
    const s = snap(file);
    for (const sel of [5, true, { keep: true }]) {
      assertCode(() => invalidateNeedsAuth(sel, opts), 'ERR_INVALID_ARGUMENT', `invalidate(${String(sel)})`);
    }
    assertUntouched(file, s, 'bad selection');
  });

  const badOptions = [
    ['a string', 'x'],
    ['a number', 5],
    ['true', true],
    ['a function', () => {}],
    ['configDir a number', { configDir: 5 }],
    ['configDir an object', { configDir: {} }],
    ['defaultTtlMs negative', { defaultTtlMs: -1 }],
    ['defaultTtlMs NaN', { defaultTtlMs: NaN }],
    ['defaultTtlMs Infinity', { defaultTtlMs: Infinity }],
    ['defaultTtlMs a string', { defaultTtlMs: '900000' }],
    ['ttlMs NaN', { ttlMs: NaN }],
    ['ttlMs negative', { ttlMs: -5 }],
    ['id a number', { id: 5 }],
  ];
  for (const [label, bad] of badOptions) {
    it(`options ${label} -> ERR_INVALID_ARGUMENT`, (t) => {
      const { dir, file } = withCache(t, BYTES);
      const s = snap(file);
      // Where the options are an object, point them at the temp dir, so a missed validation
      // would show up as a change to this file rather than to anything else.
      const opts = bad !== null && typeof bad === 'object' && !('configDir' in bad) ? { configDir: dir, ...bad } : bad;
      assertCode(() => cachePath(opts), 'ERR_INVALID_ARGUMENT', 'cachePath');
      assertCode(() => listNeedsAuth(opts), 'ERR_INVALID_ARGUMENT', 'list');
      assertCode(() => isNeedsAuthCached('keep', opts), 'ERR_INVALID_ARGUMENT', 'isCached');
      assertCode(() => markNeedsAuth('new', opts), 'ERR_INVALID_ARGUMENT', 'mark');
      assertCode(() => invalidateNeedsAuth('keep', opts), 'ERR_INVALID_ARGUMENT', 'invalidate');
      assertCode(() => invalidateNeedsAuth(undefined, opts), 'ERR_INVALID_ARGUMENT', 'invalidate all');
      assertUntouched(file, s, label);
      assert.deepEqual(listing(dir), [FILE]);
    });
  }

  it('a cache file of 1 MiB + 1 byte -> ERR_CACHE_TOO_LARGE with the path, untouched', (t) => {
    const head = '{"keep":{"timestamp":1795668795083}}';
    const big = head + ' '.repeat(MiB + 1 - head.length);
    assert.equal(Buffer.byteLength(big), MiB + 1);
    const { dir, file, opts } = withCache(t, big);
    const s = snap(file);
    const calls = {
      list: () => listNeedsAuth(opts),
      isCached: () => isNeedsAuthCached('keep', opts),
      mark: () => markNeedsAuth('new', opts),
      invalidate: () => invalidateNeedsAuth('keep', opts),
      invalidateAll: () => invalidateNeedsAuth(undefined, opts),
    };
    for (const [name, fn] of Object.entries(calls)) {
      const e = assertCode(fn, 'ERR_CACHE_TOO_LARGE', name);
      assert.ok(e.message.includes(file), `${name}: message lacks the path: ${e.message}`);
    }
    assertUntouched(file, s, 'too large');
    assert.deepEqual(listing(dir), [FILE], 'nothing moved aside, no temp file');
  });

  it('a cache file of exactly 1 MiB is still read', (t) => {
    const now = Date.now();
    const head = `{"keep":{"timestamp":${now}}}`;
    const { file, opts } = withCache(t, head + ' '.repeat(MiB - head.length));
    assert.equal(fs.statSync(file).size, MiB);
    assert.deepEqual(
      listNeedsAuth(opts).map((e) => [e.server, e.cached]),
      [['keep', true]],
    );
    assert.deepEqual(invalidateNeedsAuth('keep', opts), ['keep']);
    assert.equal(fs.readFileSync(file, 'utf8'), '{}');
  });

  for (const [label, bytes] of [
    ['corrupt JSON', '{"a":{"timestamp":1},'],
    ['an array root', '[{"a":{"timestamp":1}}]'],
    ['a string root', '"hello"'],
    ['null', 'null'],
    ['empty', ''],
  ]) {
    it(`${label}: listed as empty; mark moves it aside intact and writes a fresh file`, (t) => {
      const { dir, file, opts } = withCache(t, bytes);
      assert.deepEqual(listNeedsAuth(opts), []);
      assert.equal(isNeedsAuthCached('a', opts), false);
      assert.equal(fs.readFileSync(file, 'utf8'), bytes, 'reading does not repair');
      const before = Date.now();
      markNeedsAuth('s', opts);
      const after = Date.now();
      const aside = fs.readdirSync(dir).filter((n) => n.startsWith(`${FILE}.corrupt-`));
      assert.equal(aside.length, 1, `one corrupt copy: ${fs.readdirSync(dir)}`);
      const ms = Number(/^mcp-needs-auth-cache\.json\.corrupt-(\d+)$/.exec(aside[0])?.[1]);
      assert.ok(ms >= before && ms <= after, `${aside[0]} not stamped in [${before}, ${after}]`);
      assert.equal(fs.readFileSync(path.join(dir, aside[0]), 'utf8'), bytes, 'identical bytes');
      const fresh = JSON.parse(fs.readFileSync(file, 'utf8'));
      assert.deepEqual(Object.keys(fresh), ['s']);
      assert.deepEqual(
        listNeedsAuth(opts).map((e) => e.server),
        ['s'],
      );
    });
  }

  it('an unwritable config dir -> ERR_CACHE_WRITE with the path, file untouched', {
    skip: !IS_ROOT && 'needs root to run the writer as nobody (65534)',
  }, (t) => {
    const base = tmp(t);
    fs.chmodSync(base, 0o755);
    const dir = path.join(base, 'cfg');
    fs.mkdirSync(dir, { mode: 0o755 });
    fs.chmodSync(dir, 0o755);
    const file = path.join(dir, FILE);
    const now = Date.now();
    const bytes = `{"keep":{"timestamp":${now}}}`;
    fs.writeFileSync(file, bytes, { mode: 0o644 });
    const s = snap(file);
    const code = `const m=require(${JSON.stringify(readableAddon())});
      const o={configDir:${JSON.stringify(dir)}};const r={};
      const run=(k,f)=>{try{r[k]={ok:f()}}catch(e){r[k]={code:e.code,message:e.message}}};
      run('list',()=>m.listNeedsAuth(o).map(e=>e.server));
      run('mark',()=>m.markNeedsAuth('new',o));
      run('invalidate',()=>m.invalidateNeedsAuth('keep',o));
      run('noop',()=>m.invalidateNeedsAuth('absent',o));
      process.stdout.write(JSON.stringify(r))`;
    const run = () => runChild(code, { HOME: '/nonexistent' }, { uid: 65534, gid: 65534, cwd: '/' });
    let out = run();
    assert.deepEqual(out.list, { ok: ['keep'] }, 'reading needs no write access');
    assert.deepEqual(out.noop, { ok: [] }, 'nothing to remove needs no write access');
    for (const k of ['mark', 'invalidate']) {
      assert.equal(out[k].code, 'ERR_CACHE_WRITE', `${k}: ${JSON.stringify(out[k])}`);
      assert.ok(out[k].message.includes(dir), `${k}: message lacks the path: ${out[k].message}`);
    }
    assertUntouched(file, s, 'no lock file');
    assert.deepEqual(fs.readdirSync(dir), [FILE]);

    // With a lock file nobody may open, the failure moves on to the temp file in the dir.
    const lock = path.join(dir, `${FILE}.lock`);
    fs.writeFileSync(lock, '');
    fs.chmodSync(lock, 0o666);
    out = run();
    for (const k of ['mark', 'invalidate']) {
      assert.equal(out[k].code, 'ERR_CACHE_WRITE', `${k}: ${JSON.stringify(out[k])}`);
      assert.ok(out[k].message.includes(dir), `${k}: message lacks the path: ${out[k].message}`);
    }
    assertUntouched(file, s, 'with lock file');
    assert.deepEqual(fs.readdirSync(dir).sort(), [FILE, `${FILE}.lock`]);
  });

  it('a symlink at the cache path is replaced by a regular file; its target is untouched', (t) => {
    const dir = tmp(t);
    const target = path.join(dir, 'elsewhere.json');
    const now = Date.now();
    const targetBytes = `{"viaLink":{"timestamp":${now}}}`;
    fs.writeFileSync(target, targetBytes);
    const link = path.join(dir, FILE);
    fs.symlinkSync(target, link);
    const opts = { configDir: dir };
    // Reading follows the link, as Claude Code's readFile does.
    assert.deepEqual(
      listNeedsAuth(opts).map((e) => e.server),
      ['viaLink'],
    );
    const ts = snap(target);
    markNeedsAuth('s', opts);
    const st = fs.lstatSync(link);
    assert.ok(st.isFile() && !st.isSymbolicLink(), 'the link was replaced by a regular file');
    assert.equal(st.mode & 0o777, 0o600);
    assertUntouched(target, ts, 'symlink target');
    assert.deepEqual(Object.keys(JSON.parse(fs.readFileSync(link, 'utf8'))), ['viaLink', 's']);
  });

  it('a dangling symlink at the cache path is replaced too', (t) => {
    const dir = tmp(t);
    const link = path.join(dir, FILE);
    fs.symlinkSync(path.join(dir, 'missing-target.json'), link);
    markNeedsAuth('s', { configDir: dir });
    assert.ok(fs.lstatSync(link).isFile());
    assert.equal(fs.existsSync(path.join(dir, 'missing-target.json')), false);
    assert.deepEqual(Object.keys(JSON.parse(fs.readFileSync(link, 'utf8'))), ['s']);
  });
});
