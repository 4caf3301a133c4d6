'use strict';
// credentials: 'keychain' against a real Secret Service (private D-Bus + unlocked
// gnome-keyring, helpers/secret-service.js). The addon runs in child processes whose env holds
// the private bus (it must be set before the addon first connects).
//
// Claude Code's item: service "Claude Code-credentials-<sha256(configDir) first 8 hex>" (the
// config dir is explicit here: options.configDir), account $USER or the OS user name; the secret
// is the same JSON document as .credentials.json.
//
// Skipped locally when the binaries are missing; under CI (process.env.CI) it always runs.
//
//   cd /work/main && node --test __test__/unit/keychain.test.js

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const readline = require('node:readline');
const { spawn } = require('node:child_process');

const ss = require('../helpers/secret-service.js');
const creds = require('../../support/credentials.js');
const {
  SUBSCRIBER,
  sleep,
  tmpDir,
  deferClose,
  secret,
  urlOf,
  writeCacheLikeClaude,
  readCacheFile,
  assertNoSecrets,
  runWriter,
  runAddonCalls,
  collector,
  keychainService,
  keychainAccount,
} = require('../fixtures/creds-common.js');

const SKIP = ss.skipReason();
const WAIT_MS = 5000;
const MIN = 60_000;

/**
 * Builds credentials documents with the same helpers that write the file: each call updates
 * a scratch file and returns its JSON text, to be stored as the keychain secret.
 */
function docBuilder(t) {
  const scratch = tmpDir(t, 'mna-kc-doc-');
  return {
    scratch,
    expired(server, token) {
      creds.writeExpiredToken(scratch, server, urlOf(server), { token, refreshToken: `REFRESH-SECRET-${server}` });
      return this.text();
    },
    fresh(server, token) {
      creds.writeFreshToken(scratch, server, urlOf(server), { token, refreshToken: `REFRESH-SECRET-${server}-2` });
      return this.text();
    },
    text: () => JSON.stringify(creds.readCredentials(scratch)),
  };
}

/** The subscriber fixture in a child process; its JSON lines are collected. */
function startSubscriber(t, env, options) {
  const child = spawn(process.execPath, [SUBSCRIBER, JSON.stringify(options)], {
    env,
    stdio: ['pipe', 'pipe', 'pipe'],
  });
  const lines = collector();
  let stderr = '';
  child.stderr.setEncoding('utf8');
  child.stderr.on('data', (d) => {
    if (stderr.length < 16384) stderr += d;
  });
  readline.createInterface({ input: child.stdout }).on('line', (line) => {
    try {
      lines.push(JSON.parse(line));
    } catch {
      lines.push({ type: 'garbage', line });
    }
  });
  const exited = new Promise((resolve) => child.once('exit', (code, signal) => resolve({ code, signal })));
  deferClose(t, async () => {
    if (child.exitCode === null && child.signalCode === null) {
      child.kill('SIGKILL');
      await exited;
    }
  });
  return { child, lines, exited, stderr: () => stderr };
}

describe('credentials: keychain (Secret Service)', { skip: SKIP }, () => {
  let svc;
  const account = keychainAccount();

  before(async () => {
    svc = await ss.startSecretService();
  });
  // Never leave dbus-daemon / gnome-keyring-daemon running (the helper also kills them on exit).
  after(async () => {
    if (svc) await svc.stop();
  });

  it("a subscriber sees another process's keychain sign-in for a, and a's entry is gone before its callback", async (t) => {
    assert.ok(svc, 'no Secret Service');
    const dir = tmpDir(t, 'mna-kc-');
    const service = keychainService(dir);
    t.after(() => svc.deleteItem(service, account).catch(() => {}));
    const docs = docBuilder(t);
    const secrets = [];
    for (const s of ['a', 'b']) {
      const token = secret(`${s}-expired`);
      secrets.push(token);
      docs.expired(s, token);
    }
    await svc.storeItem(service, account, docs.text());
    const stamp = Date.now() - MIN;
    writeCacheLikeClaude(dir, { a: stamp, b: stamp });

    const env = { ...process.env, ...svc.env };
    const sub = startSubscriber(t, env, { configDir: dir, credentials: 'keychain', pollIntervalMs: 200 });
    await sub.lines
      .waitFor((l) => l.type === 'ready', 10000, 'the subscriber to be ready')
      .catch((e) => {
        throw new Error(`${e.message}\nstderr: ${sub.stderr()}`);
      });
    await sleep(300); // at least one poll on the unchanged item: no event for it

    // A decoy: the file is not the store here, so a sign-in written there is not reported.
    const decoy = secret('decoy');
    secrets.push(decoy);
    await runWriter(dir, [
      { fn: 'writeFreshToken', server: 'b', url: urlOf('b'), opts: { style: 'rename', token: decoy } },
    ]);
    await sleep(500);
    assert.deepEqual(
      sub.lines.items.filter((l) => l.type !== 'ready'),
      [],
      'no event before the keychain changes',
    );

    // Another process (secret-tool) replaces the item: a signed in.
    const fresh = secret('a-fresh');
    secrets.push(fresh);
    const newDoc = docs.fresh('a', fresh);
    await svc.storeItem(service, account, newDoc);
    const got = await sub.lines.waitFor(
      (l) => l.type === 'event' && l.event.reason === 'credentials-changed',
      WAIT_MS,
      'credentials-changed from the keychain',
    );
    assert.deepEqual(got.event.servers, ['a']);
    assert.equal(got.event.source, 'other-process');
    assert.equal(got.event.configDir, dir);
    assert.deepEqual(got.entries, ['b'], "a's entry removed before the callback, b's kept");
    await sleep(600); // a few more polls: nothing else comes
    assert.deepEqual(readCacheFile(dir), { b: { timestamp: stamp } });

    sub.child.stdin.end();
    await sub.lines.waitFor((l) => l.type === 'closed', WAIT_MS, 'the subscriber to close');
    const exit = await Promise.race([sub.exited, sleep(WAIT_MS).then(() => ({ timeout: true }))]);
    assert.deepEqual(
      exit,
      { code: 0, signal: null },
      'the child exits once closed (the subscription keeps nothing alive)',
    );

    const events = sub.lines.items.filter((l) => l.type === 'event');
    assert.deepEqual(
      events.map((l) => [l.event.reason, l.event.servers]),
      [['credentials-changed', ['a']]],
    );
    assert.deepEqual(
      sub.lines.items.filter((l) => l.type === 'warning' || l.type === 'garbage'),
      [],
      sub.stderr(),
    );
    assertNoSecrets([sub.lines.items, sub.stderr()], secrets, 'subscriber output');
    assert.equal(await svc.lookupItem(service, account), newDoc, 'the keychain item is unchanged by the addon');
  });

  it("purgeStale and diagnose read the keychain: the bug report's scenario, and its negative twin", async (t) => {
    assert.ok(svc, 'no Secret Service');
    const env = { ...process.env, ...svc.env };
    const dir = tmpDir(t, 'mna-kc-');
    const service = keychainService(dir);
    t.after(() => svc.deleteItem(service, account).catch(() => {}));
    const docs = docBuilder(t);
    const secrets = [];
    const now = Date.now();
    const entryTs = now - MIN;
    writeCacheLikeClaude(dir, { a: entryTs, b: entryTs, old: now - 20 * MIN });
    for (const s of ['a', 'b']) {
      const token = secret(`${s}-expired`);
      secrets.push(token);
      docs.expired(s, token);
    }
    await runWriter(docs.scratch, [{ fn: 'writeStub', server: 'c', url: urlOf('c'), opts: {} }]);
    const fresh = secret('a-fresh');
    secrets.push(fresh);
    const doc = docs.fresh('a', fresh); // signed in after the entry: the item is modified now
    await svc.storeItem(service, account, doc);
    // A decoy file with the old, expired tokens: 'file' must judge differently from 'keychain'.
    fs.copyFileSync(path.join(docs.scratch, '.credentials.json'), path.join(dir, '.credentials.json'));
    creds.writeExpiredToken(dir, 'a', urlOf('a'), { token: secret('decoy') });
    fs.utimesSync(path.join(dir, '.credentials.json'), (entryTs - 10 * MIN) / 1000, (entryTs - 10 * MIN) / 1000);

    const kc = { configDir: dir, credentials: 'keychain' };
    const [diagA, diagB, diagC, diagAFile, purged, list] = (
      await runAddonCalls(
        [
          { fn: 'diagnose', args: ['a', kc] },
          { fn: 'diagnose', args: ['b', kc] },
          { fn: 'diagnose', args: ['c', kc] },
          { fn: 'diagnose', args: ['a', { configDir: dir, credentials: 'file' }] },
          { fn: 'purgeStale', args: [kc] },
          { fn: 'listNeedsAuth', args: [{ configDir: dir }] },
        ],
        { env },
      )
    ).map((r) => {
      assert.ok(!r.error, `addon call failed in the child: ${JSON.stringify(r.error)}`);
      return r.ok;
    });

    assert.equal(diagA.credentials.present, true);
    assert.equal(diagA.credentials.hasAccessToken, true);
    assert.equal(diagA.credentials.hasRefreshToken, true);
    assert.equal(diagA.credentials.tokenlessStub, false);
    assert.ok(
      diagA.credentials.expiresAt > now + 50 * MIN,
      `a's fresh expiresAt from the keychain: ${diagA.credentials.expiresAt}`,
    );
    assert.equal(diagA.reasons[0].kind, 'needs-auth-cache');
    assert.equal(diagA.reasons[0].superseded, true);
    assert.ok(diagB.credentials.hasAccessToken && diagB.credentials.expiresAt < now, 'b: expired token');
    assert.equal(diagB.reasons[0].superseded, false);
    assert.equal(diagC.skipped, true);
    assert.deepEqual(
      diagC.reasons.map((r) => r.kind),
      ['tokenless-stub'],
    );
    assert.ok(diagC.reasons[0].message.includes('claude mcp login c'));
    assert.equal(diagC.credentials.tokenlessStub, true);
    assert.ok(diagAFile.credentials.expiresAt < now, 'the file (decoy) says expired: the sources differ');
    assert.equal(diagAFile.reasons[0].superseded, false);

    assert.deepEqual(
      [...purged].sort((x, y) => x.server.localeCompare(y.server)),
      [
        { server: 'a', reason: 'superseded' },
        { server: 'old', reason: 'expired' },
      ],
    );
    assert.deepEqual(
      list.map((e) => e.server),
      ['b'],
    );
    assertNoSecrets([diagA, diagB, diagC, diagAFile, purged, list], secrets, 'results');
    assert.equal(await svc.lookupItem(service, account), doc, 'the keychain item is unchanged');

    // Negative twin: an entry written after the item was last modified (the keychain gives
    // whole seconds; wait past that second) is kept although a holds an unexpired token.
    await sleep(1000 - (Date.now() % 1000) + 100);
    writeCacheLikeClaude(dir, { a: Date.now() });
    const [purged2, diag2] = (
      await runAddonCalls(
        [
          { fn: 'purgeStale', args: [kc] },
          { fn: 'diagnose', args: ['a', kc] },
        ],
        { env },
      )
    ).map((r) => {
      assert.ok(!r.error, `addon call failed in the child: ${JSON.stringify(r.error)}`);
      return r.ok;
    });
    assert.deepEqual(purged2, [], 'nothing changed in the keychain since the entry');
    assert.equal(diag2.reasons[0].superseded, false);
    assert.equal(diag2.credentials.hasAccessToken, true);
  });

  it("an explicit configDir reads the suffixed item only, not plain 'Claude Code-credentials'", async (t) => {
    assert.ok(svc, 'no Secret Service');
    const env = { ...process.env, ...svc.env };
    const dir = tmpDir(t, 'mna-kc-');
    t.after(() => svc.deleteItem('Claude Code-credentials', account).catch(() => {}));
    const docs = docBuilder(t);
    const token = secret('plain');
    await svc.storeItem('Claude Code-credentials', account, docs.fresh('a', token));
    const [d] = (
      await runAddonCalls([{ fn: 'diagnose', args: ['a', { configDir: dir, credentials: 'keychain' }] }], { env })
    ).map((r) => {
      assert.ok(!r.error, `addon call failed in the child: ${JSON.stringify(r.error)}`);
      return r.ok;
    });
    assert.equal(
      d.credentials.present,
      false,
      `read the unsuffixed item for an explicit config dir: ${JSON.stringify(d)}`,
    );

    // Positive control: the same document under the suffixed name is found.
    const service = keychainService(dir);
    t.after(() => svc.deleteItem(service, account).catch(() => {}));
    await svc.storeItem(service, account, docs.text());
    const [d2] = (
      await runAddonCalls([{ fn: 'diagnose', args: ['a', { configDir: dir, credentials: 'keychain' }] }], { env })
    ).map((r) => r.ok);
    assert.equal(d2.credentials.present, true, `the suffixed item ${service} is read: ${JSON.stringify(d2)}`);
    assert.equal(d2.credentials.hasAccessToken, true);
    assertNoSecrets([d, d2], [token], 'diagnose()');
  });
});
