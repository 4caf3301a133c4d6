'use strict';
// onAuthChanged against other processes: a second, real process rewrites Claude Code's
// credentials file (as 2.1.108 does, in place, and as 2.1.332 does, temp file + rename) or the
// needs-auth cache, and the subscriber here must hear about it, with auto-invalidation done
// before its callback runs. Also: token-less stubs are not sign-ins, watch:false hears nothing
// from other processes, nothing ever carries token text, the credentials file is never touched,
// and 1000 subscribe/close cycles leak no thread and no fd.
//
//   cd /work/main && node --test __test__/unit/credentials-watch.test.js

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');

const creds = require('../../support/credentials.js');
const {
  ADDON_DIR,
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
  runAddonCalls,
  collector,
  captureWarnings,
} = require('../fixtures/creds-common.js');

const addon = require(ADDON_DIR);

const WAIT_MS = 5000;
/** After the awaited event: how long to watch for events that must not come. */
const SETTLE_MS = 400;

/**
 * A config dir with Claude Code's cache holding `a` and `b` (written a minute ago) and a
 * credentials file holding expired tokens for both: the bug report's starting point.
 */
function setup(t, { extraCache = {} } = {}) {
  const dir = tmpDir(t, 'mna-cw-');
  const stamp = Date.now() - 60_000;
  writeCacheLikeClaude(dir, { a: stamp, b: stamp, ...extraCache });
  const secrets = [];
  for (const s of ['a', 'b']) {
    const token = secret(`${s}-expired`);
    const refreshToken = `REFRESH-SECRET-${s}-${Date.now()}`;
    secrets.push(token, refreshToken);
    creds.writeExpiredToken(dir, s, urlOf(s), { token, refreshToken });
  }
  return { dir, stamp, secrets, credFile: creds.credentialsPath(dir) };
}

/**
 * onAuthChanged with a callback that records each event together with the cache entries it
 * can see at that moment (listNeedsAuth inside the callback).
 */
function subscribe(t, options) {
  const c = collector();
  const sub = addon.onAuthChanged((event) => {
    let entries;
    try {
      entries = addon.listNeedsAuth({ configDir: options.configDir }).map((e) => e.server);
    } catch (err) {
      entries = { error: errorData(err) };
    }
    c.push({ event, entries });
  }, options);
  deferClose(t, () => sub.close());
  return { c, sub };
}

const summary = (c) => c.items.map((x) => [x.event.reason, x.event.servers, x.event.source]);
const isCreds = (x) => x.event.reason === 'credentials-changed';
const isCache = (x) => x.event.reason === 'cache-changed';

describe('credentials-changed from another process (credentials: file)', () => {
  for (const style of ['in-place', 'rename']) {
    it(`a fresh token for a, written ${style} by another process, removes a's entry before the callback`, async (t) => {
      const warnings = captureWarnings(t);
      const { dir, stamp, secrets, credFile } = setup(t);
      const { c } = subscribe(t, { configDir: dir, credentials: 'file' });

      const fresh = secret('a-fresh');
      const freshRefresh = `REFRESH-SECRET-a-fresh-${Date.now()}`;
      secrets.push(fresh, freshRefresh);
      const startedAt = Date.now();
      await runWriter(dir, [
        {
          fn: 'writeFreshToken',
          server: 'a',
          url: urlOf('a'),
          opts: { style, token: fresh, refreshToken: freshRefresh },
        },
      ]);
      assert.equal(
        creds.readCredentials(dir).mcpOAuth[creds.credentialKey('a', { url: urlOf('a') })].accessToken,
        fresh,
      );
      const before = snapFile(credFile);

      const got = await c.waitFor(isCreds, WAIT_MS, 'credentials-changed');
      assert.deepEqual(got.event.servers, ['a'], 'only a signed in');
      assert.equal(got.event.source, 'other-process');
      assert.equal(got.event.configDir, dir);
      assert.ok(got.event.at >= startedAt && got.event.at <= Date.now(), `event.at ${got.event.at}`);
      assert.deepEqual(got.entries, ['b'], "inside the callback a's entry is already gone and b's is there");

      await sleep(SETTLE_MS);
      // The auto-invalidation is this process's own cache write: no cache-changed for it.
      assert.deepEqual(summary(c), [['credentials-changed', ['a'], 'other-process']]);
      assert.deepEqual(readCacheFile(dir), { b: { timestamp: stamp } }, "b's entry is kept byte for byte");

      const diagA = addon.diagnose('a', { configDir: dir, credentials: 'file' });
      const diagB = addon.diagnose('b', { configDir: dir, credentials: 'file' });
      assert.equal(diagA.skipped, false);
      assert.equal(diagA.cacheEntry, null);
      assert.equal(diagA.credentials.hasAccessToken, true);
      assert.ok(diagA.credentials.expiresAt > Date.now() + 3_000_000, 'fresh expiresAt');
      assert.equal(diagB.skipped, true);
      assert.equal(diagB.reasons[0].kind, 'needs-auth-cache');
      assert.equal(diagB.reasons[0].superseded, false, "b's token is still the expired one");

      assertNoSecrets(c.items, secrets, 'events');
      assertNoSecrets([diagA, diagB], secrets, 'diagnose()');
      assertNoSecrets(warnings, secrets, 'warnings');
      assert.deepEqual(warnings, [], 'no watcher warnings');
      assertFileUnchanged(credFile, before, 'after the watcher, listNeedsAuth and diagnose');
    });
  }

  it('autoInvalidate: false reports the change but keeps the entry', async (t) => {
    const { dir, stamp, secrets, credFile } = setup(t);
    const { c } = subscribe(t, { configDir: dir, credentials: 'file', autoInvalidate: false });
    const fresh = secret('a-fresh');
    secrets.push(fresh);
    await runWriter(dir, [
      { fn: 'writeFreshToken', server: 'a', url: urlOf('a'), opts: { style: 'rename', token: fresh } },
    ]);
    const before = snapFile(credFile);

    const got = await c.waitFor(isCreds, WAIT_MS, 'credentials-changed');
    assert.deepEqual(got.event.servers, ['a']);
    assert.equal(got.event.source, 'other-process');
    assert.deepEqual(got.entries, ['a', 'b'], 'nothing removed before the callback');
    await sleep(SETTLE_MS);
    assert.deepEqual(summary(c), [['credentials-changed', ['a'], 'other-process']]);
    assert.deepEqual(readCacheFile(dir), { a: { timestamp: stamp }, b: { timestamp: stamp } }, 'cache untouched');
    assert.deepEqual(
      addon.listNeedsAuth({ configDir: dir }).map((e) => [e.server, e.cached]),
      [
        ['a', true],
        ['b', true],
      ],
    );
    assertNoSecrets(c.items, secrets, 'events');
    assertFileUnchanged(credFile, before, 'after the watcher');
  });

  it('a token-less stub for c (as `claude mcp list` writes it) is not a sign-in', async (t) => {
    const warnings = captureWarnings(t);
    const { dir, stamp, secrets, credFile } = setup(t, { extraCache: { c: Date.now() - 60_000 } });
    const cStamp = readCacheFile(dir).c.timestamp;
    const { c } = subscribe(t, { configDir: dir, credentials: 'file' });

    await runWriter(dir, [{ fn: 'writeStub', server: 'c', url: urlOf('c'), opts: { style: 'in-place' } }]);
    await sleep(SETTLE_MS);
    // 2.1.332 rewrites the stub with tokenlessRejectedAt: still no tokens, still not a sign-in.
    await runWriter(dir, [
      { fn: 'writeStub', server: 'c', url: urlOf('c'), opts: { style: 'rename', rejectedAt: Date.now() } },
    ]);
    await sleep(SETTLE_MS);
    assert.deepEqual(summary(c), [], 'no event for a token-less stub');

    // A real sign-in afterwards is reported: proves the watcher was listening all along.
    const fresh = secret('a-fresh');
    secrets.push(fresh);
    await runWriter(dir, [
      { fn: 'writeFreshToken', server: 'a', url: urlOf('a'), opts: { style: 'in-place', token: fresh } },
    ]);
    const before = snapFile(credFile);
    await c.waitFor(isCreds, WAIT_MS, 'credentials-changed for a');
    await sleep(SETTLE_MS);
    assert.deepEqual(summary(c), [['credentials-changed', ['a'], 'other-process']], 'c is never named');
    assert.deepEqual(readCacheFile(dir), { b: { timestamp: stamp }, c: { timestamp: cStamp } }, "c's entry stays");

    const diagC = addon.diagnose('c', { configDir: dir, credentials: 'file' });
    assert.equal(diagC.skipped, true);
    assert.deepEqual(diagC.reasons.map((r) => r.kind).sort(), ['needs-auth-cache', 'tokenless-stub']);
    assert.equal(diagC.credentials.tokenlessStub, true);
    assert.equal(diagC.credentials.hasAccessToken, false);
    assertNoSecrets([c.items, diagC, warnings], secrets, 'events/diagnose/warnings');
    assert.deepEqual(warnings, []);
    assertFileUnchanged(credFile, before, 'after the watcher and diagnose');
  });

  it('a corrupt credentials file from another process gives a warning without content, then recovers', async (t) => {
    const warnings = captureWarnings(t);
    const { dir, stamp, secrets, credFile } = setup(t);
    const { c } = subscribe(t, { configDir: dir, credentials: 'file' });
    const original = fs.readFileSync(credFile);
    const torn = secret('torn');
    secrets.push(torn);
    // A torn document (the first half of a token entry), replaced atomically so no reader can
    // see a better version of it.
    const tmp = `${credFile}.tmp.deadbeef`;
    fs.writeFileSync(tmp, `{"mcpOAuth":{"a|0123456789abcdef":{"serverName":"a","accessToken":"${torn}`, {
      mode: 0o600,
    });
    fs.renameSync(tmp, credFile);
    const deadline = Date.now() + WAIT_MS;
    while (warnings.length === 0 && Date.now() < deadline) await sleep(20);
    assert.ok(warnings.length >= 1, 'a watcher warning for the corrupt file');
    assert.equal(warnings[0].code, 'MCP_NEEDS_AUTH_WATCH');
    assert.ok(warnings[0].message.includes(credFile), `the warning names the file: ${warnings[0].message}`);
    assertNoSecrets(warnings, secrets, 'watcher warnings');

    let thrown;
    try {
      addon.diagnose('a', { configDir: dir, credentials: 'file' });
    } catch (err) {
      thrown = err;
    }
    assert.ok(thrown, 'diagnose throws on a corrupt credentials file');
    assert.equal(thrown.code, 'ERR_CREDENTIALS_CORRUPT');
    assertNoSecrets(errorData(thrown), secrets, 'diagnose error');
    assert.deepEqual(summary(c), [], 'a corrupt file is no sign-in');
    assert.deepEqual(Object.keys(readCacheFile(dir)), ['a', 'b']);

    // The document comes back (same tokens as before: not a change), then a fresh token for a.
    const tmp2 = `${credFile}.tmp.cafebabe`;
    fs.writeFileSync(tmp2, original, { mode: 0o600 });
    fs.renameSync(tmp2, credFile);
    await sleep(SETTLE_MS);
    assert.deepEqual(summary(c), [], 'the restored document holds the tokens seen before the corruption');
    const fresh = secret('a-fresh');
    secrets.push(fresh);
    await runWriter(dir, [
      { fn: 'writeFreshToken', server: 'a', url: urlOf('a'), opts: { style: 'rename', token: fresh } },
    ]);
    const got = await c.waitFor(isCreds, WAIT_MS, 'credentials-changed for a');
    assert.deepEqual(got.event.servers, ['a']);
    assert.deepEqual(got.entries, ['b'], 'a auto-invalidated before the callback');
    assert.deepEqual(readCacheFile(dir), { b: { timestamp: stamp } });
    assertNoSecrets([c.items, warnings], secrets, 'events and warnings');
  });
});

describe('cache-changed from another process', () => {
  it("names the server another process marked or invalidated; this process's own invalidation is not cache-changed", async (t) => {
    const { dir, secrets, credFile } = setup(t);
    const credBefore = snapFile(credFile);
    const { c } = subscribe(t, { configDir: dir, credentials: 'file' });
    const opts = { configDir: dir };

    let r = await runAddonCalls([{ fn: 'markNeedsAuth', args: ['x', opts] }]);
    assert.deepEqual(r, [{ ok: null }]);
    let got = await c.waitFor(isCache, WAIT_MS, 'cache-changed for x');
    assert.deepEqual(got.event.servers, ['x']);
    assert.equal(got.event.source, 'other-process');
    assert.equal(got.event.configDir, dir);
    assert.deepEqual(got.entries, ['a', 'b', 'x']);

    r = await runAddonCalls([{ fn: 'invalidateNeedsAuth', args: ['a', opts] }]);
    assert.deepEqual(r, [{ ok: ['a'] }]);
    got = await c.waitFor((x) => isCache(x) && x.event.servers.includes('a'), WAIT_MS, 'cache-changed for a');
    assert.deepEqual(got.event.servers, ['a']);
    assert.equal(got.event.source, 'other-process');

    // Our own invalidation: one 'invalidated' event, this-process; no cache-changed for b.
    assert.deepEqual(addon.invalidateNeedsAuth('b', opts), ['b']);
    got = await c.waitFor((x) => x.event.reason === 'invalidated', WAIT_MS, 'invalidated for b');
    assert.deepEqual(got.event.servers, ['b']);
    assert.equal(got.event.source, 'this-process');
    // Barrier: another process's later write is reported, so the watcher has seen ours by now.
    await sleep(100);
    await runAddonCalls([{ fn: 'markNeedsAuth', args: ['y', opts] }]);
    await c.waitFor((x) => isCache(x) && x.event.servers.includes('y'), WAIT_MS, 'cache-changed for y');
    await sleep(SETTLE_MS);

    assert.deepEqual(summary(c), [
      ['cache-changed', ['x'], 'other-process'],
      ['cache-changed', ['a'], 'other-process'],
      ['invalidated', ['b'], 'this-process'],
      ['cache-changed', ['y'], 'other-process'],
    ]);
    assert.deepEqual(Object.keys(readCacheFile(dir)).sort(), ['x', 'y']);
    assertNoSecrets(c.items, secrets, 'events');
    assertFileUnchanged(credFile, credBefore, 'cache traffic never touches the credentials file');
  });
});

describe('watch: false', () => {
  it('hears nothing from other processes, only this process', async (t) => {
    const { dir, stamp, secrets, credFile } = setup(t);
    const { c } = subscribe(t, { configDir: dir, credentials: 'file', watch: false });
    const fresh = secret('a-fresh');
    secrets.push(fresh);
    await runWriter(dir, [
      { fn: 'writeFreshToken', server: 'a', url: urlOf('a'), opts: { style: 'rename', token: fresh } },
    ]);
    const before = snapFile(credFile);
    await runAddonCalls([{ fn: 'markNeedsAuth', args: ['x', { configDir: dir }] }]);
    await sleep(SETTLE_MS);

    assert.deepEqual(addon.invalidateNeedsAuth('zz', { configDir: dir }), []);
    await c.waitFor((x) => x.event.reason === 'invalidated', WAIT_MS, 'the in-process invalidated event');
    await sleep(50);
    assert.deepEqual(summary(c), [['invalidated', ['zz'], 'this-process']]);
    assert.equal(readCacheFile(dir).a.timestamp, stamp, 'no watcher, so no auto-invalidation');
    assertNoSecrets(c.items, secrets, 'events');
    assertFileUnchanged(credFile, before, 'watch:false');
  });

  it('a watch:false subscriber gets no other-process events even while another subscriber watches the same dir', async (t) => {
    // index.d.ts: "`false` keeps in-process signals only".
    const { dir, secrets } = setup(t);
    const watching = subscribe(t, { configDir: dir, credentials: 'file' });
    const quiet = subscribe(t, { configDir: dir, credentials: 'file', watch: false });
    const fresh = secret('a-fresh');
    secrets.push(fresh);
    await runWriter(dir, [
      { fn: 'writeFreshToken', server: 'a', url: urlOf('a'), opts: { style: 'rename', token: fresh } },
    ]);
    await watching.c.waitFor(isCreds, WAIT_MS, 'credentials-changed at the watching subscriber');
    await runAddonCalls([{ fn: 'markNeedsAuth', args: ['x', { configDir: dir }] }]);
    await watching.c.waitFor(isCache, WAIT_MS, 'cache-changed at the watching subscriber');
    addon.invalidateNeedsAuth('zz', { configDir: dir });
    await quiet.c.waitFor((x) => x.event.reason === 'invalidated', WAIT_MS, 'the in-process event');
    await sleep(50);
    assert.deepEqual(
      summary(quiet.c),
      [['invalidated', ['zz'], 'this-process']],
      'the watch:false subscriber received other-process events',
    );
    assertNoSecrets([watching.c.items, quiet.c.items], secrets, 'events');
  });
});

describe('resources', { skip: process.platform !== 'linux' && 'needs /proc' }, () => {
  function threadCount() {
    const m = /^Threads:\s+(\d+)$/m.exec(fs.readFileSync('/proc/self/status', 'utf8'));
    return Number(m[1]);
  }
  const fdCount = () => fs.readdirSync('/proc/self/fd').length;
  const counts = () => ({ threads: threadCount(), fds: fdCount() });

  /** Waits (bounded) until threads and fds are back at or below `base`. */
  async function settle(base, ms = 3000) {
    let now;
    const deadline = Date.now() + ms;
    do {
      await sleep(20);
      now = counts();
    } while ((now.threads > base.threads || now.fds > base.fds) && Date.now() < deadline);
    return now;
  }

  it('1000 subscribe/close cycles with watch: true leave threads and fds where they were', async (t) => {
    const { dir, credFile } = setup(t);
    const before = snapFile(credFile);
    const opts = { configDir: dir, credentials: 'file' };
    let delivered = 0;
    // Warm-up: lets Node/V8/libuv start whatever they start lazily, so that the baseline
    // below is the steady state.
    for (let i = 0; i < 5; i++)
      addon
        .onAuthChanged(() => {
          delivered++;
        }, opts)
        .close();
    await sleep(300);
    const base = counts();

    let peak = 0;
    for (let i = 1; i <= 1000; i++) {
      const sub = addon.onAuthChanged(() => {
        delivered++;
      }, opts);
      sub.close();
      assert.equal(sub.closed, true);
      // close() returns before notify's own thread ("notify-rs inotify loop") has closed its
      // inotify instance and exited; back to back, up to ~120 such threads pile up and a new
      // subscribe can fail with ERR_WATCH "Too many open files" (fs.inotify.max_user_instances
      // is 128 by default). Drain every 50 cycles so this test measures leaks, not that backlog.
      if (i % 50 === 0) {
        peak = Math.max(peak, threadCount());
        await settle(base, 2000);
      }
    }
    // Equal is expected. +1 is tolerated for one lazily started runtime thread/fd that has
    // nothing to do with the addon (a V8 platform worker, a libuv handle); a leak of 1000
    // cycles would show as hundreds.
    const now = await settle(base);
    assert.ok(now.threads <= base.threads + 1, `threads ${base.threads} -> ${now.threads} (peak seen ${peak})`);
    assert.ok(now.fds <= base.fds + 1, `fds ${base.fds} -> ${now.fds}`);
    assert.equal(delivered, 0, 'nothing changed, so nothing was delivered');
    assertFileUnchanged(credFile, before, 'subscribe/close cycles');
  });
});
