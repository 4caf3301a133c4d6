'use strict';
// Server names are JavaScript strings (UTF-16); the cache's keys are what JSON.parse makes of
// the file. A name with a lone surrogate (half of a UTF-16 pair) cannot be told apart from
// another such name once napi makes it UTF-8 (every one becomes U+FFFD), so the addon refuses
// it with ERR_INVALID_SERVER_NAME, on every path (the fast isNeedsAuthCached included, for short
// names read on the stack and long ones), and never maps two names to one key.
//
//   node --test __test__/unit/server-names.test.js

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ADDON = path.resolve(__dirname, '..', '..');
const { listNeedsAuth, isNeedsAuthCached, markNeedsAuth, invalidateNeedsAuth, diagnose } = require(ADDON);

const FILE = 'mcp-needs-auth-cache.json';
const INVALID = { code: 'ERR_INVALID_SERVER_NAME' };

function tmp(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mna-names-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return { dir, file: path.join(dir, FILE), opts: { configDir: dir } };
}

// Short names take isNeedsAuthCached's stack buffer; names over 256 UTF-8 bytes the general path.
const LONG = 'x'.repeat(300);
const LONE = ['a\uD800', 'a\uDBFF', '\uDC00', 'a\uDE00\uD83D', `${LONG}\uD800`, `${LONG}\uDBFF`, `\uD800${LONG}`];

describe('server names with lone surrogates', () => {
  it('are refused by every call, and never found under another name', (t) => {
    const { file, opts } = tmp(t);
    for (const name of LONE) {
      assert.throws(() => markNeedsAuth(name, opts), INVALID, `markNeedsAuth(${JSON.stringify(name)})`);
      assert.throws(() => isNeedsAuthCached(name, opts), INVALID, `isNeedsAuthCached(${JSON.stringify(name)})`);
      assert.throws(() => isNeedsAuthCached(name), INVALID, 'without options too');
      assert.throws(() => invalidateNeedsAuth(name, opts), INVALID, 'invalidateNeedsAuth(name)');
      assert.throws(() => invalidateNeedsAuth(['ok', name], opts), INVALID, 'invalidateNeedsAuth([names])');
      assert.throws(() => diagnose(name, { ...opts, credentials: 'none' }), INVALID, 'diagnose');
    }
    assert.equal(fs.existsSync(file), false, 'nothing was written');
  });

  it("a real U+FFFD is a name of its own, and a lone surrogate's entry in the file is not it", (t) => {
    const { file, opts } = tmp(t);
    const fresh = Date.now() - 1000;
    // What Claude Code's JSON.stringify writes for a server named 'a\uD800'.
    fs.writeFileSync(file, JSON.stringify({ 'a\uD800': { timestamp: fresh } }));
    assert.equal(isNeedsAuthCached('a\uFFFD', opts), false, 'U+FFFD is another name');
    assert.equal(isNeedsAuthCached(`${LONG}\uFFFD`, opts), false);
    markNeedsAuth('a\uFFFD', opts);
    markNeedsAuth('b\uD83D\uDE00', opts);
    assert.equal(isNeedsAuthCached('a\uFFFD', opts), true);
    assert.equal(isNeedsAuthCached('b\uD83D\uDE00', opts), true, 'a surrogate pair is a fine name');
    assert.throws(() => isNeedsAuthCached('a\uD800', opts), INVALID);
    const parsed = JSON.parse(fs.readFileSync(file, 'utf8'));
    assert.deepEqual(Object.keys(parsed), ['a\uD800', 'a\uFFFD', 'b\uD83D\uDE00'], 'three names, three keys');
    assert.equal(parsed['a\uD800'].timestamp, fresh, "the lone surrogate's entry is kept as it was");
    assert.equal(invalidateNeedsAuth('a\uFFFD', opts).length, 1);
    assert.deepEqual(Object.keys(JSON.parse(fs.readFileSync(file, 'utf8'))), ['a\uD800', 'b\uD83D\uDE00']);
    // Removing every entry removes the one no call can name as well.
    assert.equal(invalidateNeedsAuth(undefined, opts).length, 2);
    assert.deepEqual(JSON.parse(fs.readFileSync(file, 'utf8')), {});
    assert.deepEqual(listNeedsAuth(opts), []);
  });
});
