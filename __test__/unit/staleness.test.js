'use strict';
// purgeStale and diagnose against Claude Code's files (credentials: 'file').
//
// The superseded rule (crates/core/src/staleness.rs): an entry written at t is superseded when this process
// watched the server's tokens change after t, or when the credentials store changed after t AND
// the server holds an access token expiring more than 60 s after t. These tests take the bug
// report's scenario (expired token -> 401 -> entry; sign-in elsewhere writes a fresh token) and
// its negative twins, where one half of that conjunction holds but not the other.
//
//   cd /work/main && node --test __test__/unit/staleness.test.js

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');

const creds = require('../../support/credentials.js');
const {
  ADDON_DIR,
  CACHE_FILE,
  sleep,
  tmpDir,
  deferClose,
  secret,
  urlOf,
  writeCacheLikeClaude,
  readCacheFile,
  snapFile,
  assertFileUnchanged,
  errorData,
  assertNoSecrets,
  runWriter,
  collector,
} = require('../fixtures/creds-common.js');

const addon = require(ADDON_DIR);

const MIN = 60_000;
const TTL = 900_000;

/** Sets a file's mtime (and atime) to `ms` since the epoch. */
function setMtime(file, ms) {
  fs.utimesSync(file, ms / 1000, ms / 1000);
}

function newDir(t) {
  const dir = tmpDir(t, 'mna-st-');
  return {
    dir,
    credFile: creds.credentialsPath(dir),
    cacheFile: path.join(dir, CACHE_FILE),
    opts: { configDir: dir, credentials: 'file' },
  };
}

const byServer = (x, y) => (x.server < y.server ? -1 : x.server > y.server ? 1 : 0);

function subscribeQuiet(t, dir) {
  const c = collector();
  const sub = addon.onAuthChanged((event) => c.push({ event }), { configDir: dir, watch: false });
  deferClose(t, () => sub.close());
  return c;
}

describe('purgeStale', () => {
  it("the bug report's scenario: a sign-in elsewhere supersedes the entry; an old entry is expired", async (t) => {
    const { dir, credFile, opts } = newDir(t);
    const secrets = [];
    const now = Date.now();
    const entryTs = now - 2 * MIN;
    // Before the failure: a's and b's tokens had expired (saved long ago).
    for (const s of ['a', 'b']) {
      const token = secret(`${s}-old`);
      secrets.push(token);
      creds.writeExpiredToken(dir, s, urlOf(s), { token, refreshToken: `REFRESH-SECRET-${s}` });
    }
    setMtime(credFile, entryTs - 10 * MIN);
    // The 401s: Claude Code wrote a and b; `old` failed 20 minutes ago.
    writeCacheLikeClaude(dir, { a: entryTs, b: entryTs, old: now - 20 * MIN });
    // The user signs in to a from another terminal: Claude Code (2.1.332 style) writes a fresh token.
    const fresh = secret('a-fresh');
    secrets.push(fresh);
    await runWriter(dir, [
      { fn: 'writeFreshToken', server: 'a', url: urlOf('a'), opts: { style: 'rename', token: fresh } },
    ]);
    const before = snapFile(credFile);

    const diagBefore = addon.diagnose('a', opts);
    assert.equal(diagBefore.skipped, true);
    assert.equal(diagBefore.reasons.length, 1);
    assert.equal(diagBefore.reasons[0].kind, 'needs-auth-cache');
    assert.equal(diagBefore.reasons[0].superseded, true, 'diagnose sees that a was signed in after its entry');
    assert.equal(addon.diagnose('b', opts).reasons[0].superseded, false);

    const c = subscribeQuiet(t, dir);
    const purged = addon.purgeStale(opts);
    assert.deepEqual([...purged].sort(byServer), [
      { server: 'a', reason: 'superseded' },
      { server: 'old', reason: 'expired' },
    ]);
    assert.deepEqual(readCacheFile(dir), { b: { timestamp: entryTs } }, "b's entry is kept as written");

    const ev = await c.waitFor((x) => x.event.reason === 'invalidated', 5000, 'the invalidated event');
    assert.deepEqual([...ev.event.servers].sort(), ['a', 'old']);
    assert.equal(ev.event.source, 'this-process');
    assert.equal(ev.event.configDir, dir);

    const diagAfter = addon.diagnose('a', opts);
    assert.equal(diagAfter.skipped, false);
    assert.equal(diagAfter.cacheEntry, null);
    assert.equal(diagAfter.credentials.hasAccessToken, true);

    // Idempotent: nothing left to purge, and no event for that.
    assert.deepEqual(addon.purgeStale(opts), []);
    addon.invalidateNeedsAuth('barrier', opts);
    await c.waitFor((x) => x.event.servers.includes('barrier'), 5000, 'the barrier event');
    assert.deepEqual(
      c.items.map((x) => x.event.servers.slice().sort()),
      [['a', 'old'], ['barrier']],
      'a purge that removed nothing notifies nobody',
    );

    assertNoSecrets([purged, diagBefore, diagAfter, c.items], secrets, 'results and events');
    assertFileUnchanged(credFile, before, 'purgeStale and diagnose');
  });

  it('twin (a): an unexpired token but nothing in the store changed since the entry -> kept', async (t) => {
    const { dir, credFile, cacheFile, opts } = newDir(t);
    const now = Date.now();
    const entryTs = now - MIN;
    const token = secret('a');
    creds.writeFreshToken(dir, 'a', urlOf('a'), { token, expiresAt: now + 50 * MIN });
    setMtime(credFile, entryTs - 5 * MIN); // saved before the failure: the server rejected it anyway
    writeCacheLikeClaude(dir, { a: entryTs });
    const before = snapFile(credFile);
    const cacheBefore = snapFile(cacheFile);

    const c = subscribeQuiet(t, dir);
    assert.deepEqual(addon.purgeStale(opts), []);
    const d = addon.diagnose('a', opts);
    assert.equal(d.skipped, true);
    assert.equal(d.reasons[0].superseded, false);
    assert.equal(d.credentials.hasAccessToken, true);
    assert.ok(d.credentials.expiresAt > now, 'the token is unexpired');
    await sleep(50);
    assert.deepEqual(c.items, [], 'no event when nothing was purged');
    assert.ok(snapFile(cacheFile).bytes.equals(cacheBefore.bytes), 'cache untouched');
    assertNoSecrets(d, [token], 'diagnose()');
    assertFileUnchanged(credFile, before, 'purgeStale and diagnose');
  });

  it("twin (b): the server's token had expired before the entry; only another server signed in since -> kept", async (t) => {
    const { dir, credFile, cacheFile, opts } = newDir(t);
    const now = Date.now();
    const entryTs = now - MIN;
    const token = secret('a');
    creds.writeExpiredToken(dir, 'a', urlOf('a'), { token, expiredSecAgo: 300 }); // expired 5 min ago
    setMtime(credFile, entryTs - 5 * MIN);
    writeCacheLikeClaude(dir, { a: entryTs });
    // x signs in from another process: the file changes after a's entry.
    const xToken = secret('x');
    await runWriter(dir, [
      { fn: 'writeFreshToken', server: 'x', url: urlOf('x'), opts: { style: 'in-place', token: xToken } },
    ]);
    assert.ok(fs.statSync(credFile).mtimeMs > entryTs, 'the store changed after the entry');
    const before = snapFile(credFile);
    const cacheBefore = snapFile(cacheFile);

    assert.deepEqual(addon.purgeStale(opts), []);
    const d = addon.diagnose('a', opts);
    assert.equal(d.skipped, true);
    assert.equal(d.reasons[0].superseded, false);
    assert.ok(snapFile(cacheFile).bytes.equals(cacheBefore.bytes), 'cache untouched');
    assertNoSecrets(d, [token, xToken], 'diagnose()');
    assertFileUnchanged(credFile, before, 'purgeStale and diagnose');
  });

  it('a token expiring within 60 s of the entry is no proof of a sign-in -> kept', async (t) => {
    const { dir, credFile, opts } = newDir(t);
    const now = Date.now();
    const entryTs = now - MIN;
    creds.writeFreshToken(dir, 'a', urlOf('a'), { token: secret('a'), expiresAt: entryTs + 30_000 });
    writeCacheLikeClaude(dir, { a: entryTs }); // the file (written just now) changed "after" the entry
    assert.ok(fs.statSync(credFile).mtimeMs > entryTs);
    assert.deepEqual(addon.purgeStale(opts), []);
    assert.deepEqual(Object.keys(readCacheFile(dir)), ['a']);
  });

  it('keeps entries Claude Code ignores for other reasons, and entries of servers without credentials', async (t) => {
    const { dir, opts } = newDir(t);
    const now = Date.now();
    fs.writeFileSync(
      path.join(dir, CACHE_FILE),
      JSON.stringify({
        nots: { timestamp: 'yesterday' },
        future: { timestamp: now + 30 * MIN },
        nocreds: { timestamp: now - MIN },
        short: { timestamp: now - 2 * MIN, ttlMs: 90_000 },
      }),
    );
    const purged = addon.purgeStale(opts);
    assert.deepEqual(purged, [{ server: 'short', reason: 'expired' }], 'own ttlMs honoured');
    assert.deepEqual(Object.keys(readCacheFile(dir)).sort(), ['future', 'nocreds', 'nots']);
  });
});

describe('diagnose', () => {
  it('a cached entry: skipped, needs-auth-cache with ageMs, expiresInMs and superseded', (t) => {
    const { dir, opts } = newDir(t);
    const now = Date.now();
    writeCacheLikeClaude(dir, { gh: now - MIN, short: { timestamp: now - MIN, ttlMs: 90_000 } });
    const d = addon.diagnose('gh', opts);
    assert.equal(d.server, 'gh');
    assert.equal(d.skipped, true);
    assert.equal(d.reasons.length, 1);
    const [r] = d.reasons;
    assert.equal(r.kind, 'needs-auth-cache');
    assert.ok(Math.abs(r.ageMs - MIN) < 5000, `ageMs ${r.ageMs}`);
    assert.ok(Math.abs(r.expiresInMs - (TTL - MIN)) < 5000, `expiresInMs ${r.expiresInMs}`);
    assert.equal(r.superseded, false);
    assert.equal(typeof r.message, 'string');
    assert.ok(r.message.includes('gh'), r.message);
    assert.equal(d.cacheEntry.server, 'gh');
    assert.equal(d.cacheEntry.timestamp, now - MIN);
    assert.equal(d.cacheEntry.ttlMs, TTL);
    assert.equal(d.cacheEntry.cached, true);
    assert.deepEqual(d.credentials, {
      present: false,
      hasAccessToken: false,
      hasRefreshToken: false,
      expiresAt: null,
      tokenlessStub: false,
    });

    const s = addon.diagnose('short', opts);
    assert.ok(Math.abs(s.reasons[0].expiresInMs - 30_000) < 5000, `the entry's own ttlMs: ${s.reasons[0].expiresInMs}`);
    const longer = addon.diagnose('gh', { ...opts, defaultTtlMs: 4 * 3_600_000 });
    assert.ok(Math.abs(longer.reasons[0].expiresInMs - (4 * 3_600_000 - MIN)) < 5000, 'defaultTtlMs honoured');
  });

  it('a token-less stub: skipped with tokenless-stub, telling the user to run `claude mcp login <name>`', async (t) => {
    const { dir, credFile, opts } = newDir(t);
    const token = secret('other');
    creds.writeFreshToken(dir, 'other', urlOf('other'), { token });
    await runWriter(dir, [
      { fn: 'writeStub', server: 'c', url: urlOf('c'), opts: {} },
      {
        fn: 'writeStub',
        server: 'lapsed',
        url: urlOf('lapsed'),
        opts: { rejectedAt: Date.now() - 8 * 24 * 3_600_000 },
      },
    ]);
    const before = snapFile(credFile);
    const d = addon.diagnose('c', opts);
    assert.equal(d.skipped, true);
    assert.deepEqual(
      d.reasons.map((r) => r.kind),
      ['tokenless-stub'],
    );
    assert.ok(d.reasons[0].message.includes('claude mcp login c'), d.reasons[0].message);
    assert.equal(d.cacheEntry, null);
    assert.deepEqual(d.credentials, {
      present: true,
      hasAccessToken: false,
      hasRefreshToken: false,
      expiresAt: null,
      tokenlessStub: true,
    });

    // Claude Code 2.1.332 stops honouring a stub 7 days after tokenlessRejectedAt.
    const lapsed = addon.diagnose('lapsed', opts);
    assert.equal(lapsed.skipped, false, JSON.stringify(lapsed));
    assert.equal(lapsed.credentials.tokenlessStub, true);

    const other = addon.diagnose('other', opts);
    assert.equal(other.skipped, false);
    assert.equal(other.credentials.hasAccessToken, true);
    assertNoSecrets([d, lapsed, other], [token], 'diagnose()');
    assertFileUnchanged(credFile, before, 'diagnose');
  });

  it('an unknown server is not skipped', (t) => {
    const { dir, opts } = newDir(t);
    writeCacheLikeClaude(dir, { gh: Date.now() - MIN });
    creds.writeFreshToken(dir, 'gh', urlOf('gh'), { token: secret('gh') });
    const { watch, ...d } = addon.diagnose('nobody', opts);
    // The temp dir is on a local filesystem (its name varies by machine): followed by notifications.
    assert.equal(watch.mode, 'notify');
    assert.equal(typeof watch.filesystem, 'string');
    assert.deepEqual(d, {
      server: 'nobody',
      skipped: false,
      reasons: [],
      cacheEntry: null,
      credentials: {
        present: false,
        hasAccessToken: false,
        hasRefreshToken: false,
        expiresAt: null,
        tokenlessStub: false,
      },
    });
  });

  it('a corrupt credentials file throws ERR_CREDENTIALS_CORRUPT naming the path, never its content', (t) => {
    const { dir, credFile, cacheFile, opts } = newDir(t);
    writeCacheLikeClaude(dir, { a: Date.now() - MIN });
    const cacheBefore = snapFile(cacheFile);
    const token = secret('torn');
    const bodies = [
      `{"mcpOAuth":{"a|0123456789abcdef":{"serverName":"a","accessToken":"${token}`, // torn write
      `["${token}"]`, // valid JSON, not a document
    ];
    for (const body of bodies) {
      fs.writeFileSync(credFile, body, { mode: 0o600 });
      setMtime(credFile, Date.now() - 10 * MIN); // settled: not a write in progress
      const before = snapFile(credFile);
      for (const [name, call] of [
        ['diagnose', () => addon.diagnose('a', opts)],
        ['purgeStale', () => addon.purgeStale(opts)],
      ]) {
        let thrown;
        try {
          call();
        } catch (err) {
          thrown = err;
        }
        if (name === 'diagnose' || thrown) {
          assert.ok(thrown instanceof Error, `${name}: expected a throw for ${body.slice(0, 12)}…`);
          assert.equal(thrown.code, 'ERR_CREDENTIALS_CORRUPT', `${name}: ${thrown.message}`);
          assert.ok(thrown.message.includes(credFile), `${name}: the message names the file: ${thrown.message}`);
          assertNoSecrets(errorData(thrown), [token, body], `${name} error`);
          assert.ok(!thrown.message.includes('mcpOAuth'), `${name}: no file content in ${thrown.message}`);
        }
      }
      assertFileUnchanged(credFile, before, 'diagnose/purgeStale on a corrupt file');
      assert.ok(snapFile(cacheFile).bytes.equals(cacheBefore.bytes), 'the cache is untouched');
    }
  });
});
