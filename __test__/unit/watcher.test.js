'use strict';
// onAuthChanged's watcher in the field (issue 8): the config dir removed, renamed away, its parent
// recreated, a symlink retargeted; every subscription with exactly its own options; options
// validated before anything is registered; a worker thread that exits without close(); and the
// read memo racing a real Claude-Code-style writer. Other processes do the changing (shell
// commands, credentials writers, a racing writer); the subscriber is this process.
//
//   node --test __test__/unit/watcher.test.js

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawn, spawnSync, execFileSync } = require('node:child_process');

const {
  ADDON_DIR,
  sleep,
  tmpDir,
  deferClose,
  secret,
  urlOf,
  writeCacheLikeClaude,
  readCacheFile,
  runWriter,
  collector,
  captureWarnings,
} = require('../fixtures/creds-common.js');

const { readableAddon } = require('../helpers/readable-addon.js');
const addon = require(ADDON_DIR);
const { until } = require('../helpers/wait.js');

const WAIT_MS = 5000;
const SETTLE_MS = 400;
const FILE = 'mcp-needs-auth-cache.json';

/** Threads of this process named by the addon's watcher ("mcp-needs-auth-watch", cut to 15). */
function watcherThreads() {
  let n = 0;
  for (const task of fs.readdirSync('/proc/self/task')) {
    try {
      if (fs.readFileSync(`/proc/self/task/${task}/comm`, 'utf8').trim() === 'mcp-needs-auth-') n++;
    } catch {
      /* the thread ended meanwhile */
    }
  }
  return n;
}

/** `until` with this file's bound and poll interval. */
const waitUntil = (pred, what, timeoutMs = WAIT_MS) => until(pred, { what, timeoutMs });

function subscribe(t, options) {
  const c = collector();
  const sub = addon.onAuthChanged((event) => {
    c.push({
      event,
      cached: event.servers.filter((s) => addon.isNeedsAuthCached(s, { configDir: options.configDir })),
    });
  }, options);
  deferClose(t, () => sub.close());
  return { c, sub };
}

/** Runs a shell command in another process (the change comes from outside this process). */
function sh(script) {
  execFileSync('sh', ['-c', script], { timeout: 10_000 });
}
const q = (p) => `'${p.replace(/'/g, "'\\''")}'`;

const isCreds = (server) => (x) => x.event.reason === 'credentials-changed' && x.event.servers.includes(server);
const isCache = (server) => (x) => x.event.reason === 'cache-changed' && x.event.servers.includes(server);

/** Signs `server` in from another process and checks the subscription hears it and removed the entry. */
async function signInHeard(c, dir, server, label) {
  const stamp = Date.now() - 60_000;
  writeCacheLikeClaude(dir, { [server]: stamp });
  await c.waitFor(isCache(server), WAIT_MS, `${label}: cache-changed for ${server}`);
  await runWriter(dir, [
    { fn: 'writeFreshToken', server, url: urlOf(server), opts: { style: 'rename', token: secret(server) } },
  ]);
  const got = await c.waitFor(isCreds(server), WAIT_MS, `${label}: credentials-changed for ${server}`);
  assert.deepEqual(got.cached, [], `${label}: ${server}'s entry removed before the callback`);
  assert.equal(server in readCacheFile(dir), false, `${label}: ${server}'s entry is gone from the file`);
}

describe('the config dir goes away and comes back', () => {
  const cases = [
    ['rm -rf, then Claude Code recreates it', (dir) => sh(`rm -rf ${q(dir)}`), (dir) => sh(`mkdir -p ${q(dir)}`)],
    [
      'renamed away (a profile switch), a new one made in its place',
      (dir) => sh(`mv ${q(dir)} ${q(`${dir}.old`)}`),
      (dir) => sh(`mkdir ${q(dir)}`),
    ],
    [
      'its parent removed and recreated',
      (dir) => sh(`rm -rf ${q(path.dirname(dir))}`),
      (dir) => sh(`mkdir -p ${q(dir)}`),
    ],
  ];
  for (const [label, remove, recreate] of cases) {
    it(`${label}: one MCP_NEEDS_AUTH_WATCH warning, then sign-ins are heard and auto-invalidated again`, async (t) => {
      const warnings = captureWarnings(t);
      const base = tmpDir(t, 'mna-w-');
      const dir = path.join(base, 'profile', '.claude');
      fs.mkdirSync(dir, { recursive: true });
      const { c } = subscribe(t, { configDir: dir, credentials: 'file' });
      await signInHeard(c, dir, 'before', 'before the removal');

      remove(dir);
      await waitUntil(() => warnings.some((w) => w.code === 'MCP_NEEDS_AUTH_WATCH'), 'the watch warning');
      const w = warnings.find((x) => x.code === 'MCP_NEEDS_AUTH_WATCH');
      assert.ok(w.message.includes(dir), `the warning names the dir: ${w.message}`);
      assert.match(w.message, /does not exist/);
      await sleep(1200); // several re-checks while it is missing: still one warning
      recreate(dir);
      await signInHeard(c, dir, 'after', 'after it came back');
      assert.equal(warnings.filter((x) => x.code === 'MCP_NEEDS_AUTH_WATCH').length, 1, JSON.stringify(warnings));
    });
  }

  it('a symlinked config dir retargeted to another directory is followed at its path', async (t) => {
    const base = tmpDir(t, 'mna-w-');
    const a = path.join(base, 'a');
    const b = path.join(base, 'b');
    fs.mkdirSync(a);
    fs.mkdirSync(b);
    const dir = path.join(base, '.claude');
    fs.symlinkSync(a, dir);
    const { c } = subscribe(t, { configDir: dir, credentials: 'file' });
    await signInHeard(c, dir, 'on-a', 'through the link to a');
    sh(`ln -sfn ${q(b)} ${q(`${dir}.new`)} && mv -T ${q(`${dir}.new`)} ${q(dir)}`);
    await sleep(200);
    await signInHeard(c, dir, 'on-b', 'through the link to b');
    // The old target is no longer this path's: a change there is not reported.
    const n = c.items.length;
    writeCacheLikeClaude(a, { stray: Date.now() });
    await sleep(SETTLE_MS);
    assert.deepEqual(
      c.items.slice(n).map((x) => x.event.servers),
      [],
    );
  });

  it('a dir that does not exist yet when subscribing works once it is made', async (t) => {
    const base = tmpDir(t, 'mna-w-');
    const dir = path.join(base, 'later', '.claude');
    const { c } = subscribe(t, { configDir: dir, credentials: 'file' });
    await signInHeard(c, dir, 'late', 'in the dir made at subscription');
  });

  const IS_ROOT = typeof process.getuid === 'function' && process.getuid() === 0;
  it('no permission to watch: one warning naming the dir, then it resumes by itself once allowed', {
    skip: !IS_ROOT && 'needs root to run the subscriber as nobody (65534)',
  }, async (t) => {
    const base = tmpDir(t, 'mna-w-');
    fs.chmodSync(base, 0o755);
    const dir = path.join(base, 'locked');
    fs.mkdirSync(dir, { mode: 0o700 }); // root's, so the subscriber (nobody) cannot read it
    const child = spawn(
      process.execPath,
      [
        '-e',
        `
      const m = require(${JSON.stringify(readableAddon())});
      const send = (x) => process.stdout.write(JSON.stringify(x) + '\\n');
      process.on('warning', (w) => { if (w.code === 'MCP_NEEDS_AUTH_WATCH') send({ warning: w.message }); });
      m.onAuthChanged((e) => send({ reason: e.reason, servers: e.servers }), { configDir: ${JSON.stringify(dir)}, credentials: 'none' });
      setInterval(() => {}, 1000);
      process.stdin.on('end', () => process.exit(0)); process.stdin.resume();
      send({ subscribed: true });`,
      ],
      {
        uid: 65534,
        gid: 65534,
        cwd: '/',
        env: { PATH: process.env.PATH, HOME: '/nonexistent' },
        stdio: ['pipe', 'pipe', 'inherit'],
      },
    );
    deferClose(t, () => child.kill('SIGKILL'));
    const lines = [];
    let buf = '';
    child.stdout.on('data', (d) => {
      buf += d;
      for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
        lines.push(JSON.parse(buf.slice(0, i)));
        buf = buf.slice(i + 1);
      }
    });
    await waitUntil(() => lines.some((l) => l.warning), 'the watch warning');
    const w = lines.find((l) => l.warning).warning;
    assert.ok(w.includes(dir), `the warning names the dir: ${w}`);
    assert.match(w, /denied/i);
    await sleep(1200);
    fs.chmodSync(dir, 0o755);
    await sleep(700); // re-armed by now
    writeCacheLikeClaude(dir, { fresh: Date.now() });
    await waitUntil(
      () => lines.some((l) => l.reason === 'cache-changed' && l.servers.includes('fresh')),
      'cache-changed after access was granted',
    );
    assert.equal(lines.filter((l) => l.warning).length, 1, JSON.stringify(lines));
    child.stdin.end();
  });

  it('a missing dir is re-checked at a modest interval, never spun on', async (t) => {
    const base = tmpDir(t, 'mna-w-');
    const dir = path.join(base, '.claude');
    fs.mkdirSync(dir);
    const { sub } = subscribe(t, { configDir: dir, credentials: 'file' });
    sh(`rm -rf ${q(dir)}`);
    await sleep(300);
    const cpu0 = process.cpuUsage();
    await sleep(2000);
    const cpu = process.cpuUsage(cpu0);
    // A spinning thread would burn ~2 s of CPU here; four re-checks cost microseconds.
    assert.ok(
      cpu.user + cpu.system < 300_000,
      `${(cpu.user + cpu.system) / 1000} ms of CPU in 2 s while the dir was missing`,
    );
    sub.close();
  });
});

describe('every subscription gets exactly its own options', () => {
  for (const order of [
    ['none', 'file'],
    ['file', 'none'],
  ]) {
    it(`credentials '${order[0]}' then '${order[1]}' on one dir: only the 'file' one hears the sign-in, whatever closes first`, async (t) => {
      const dir = tmpDir(t, 'mna-w-');
      const subs = {};
      for (const credentials of order)
        subs[credentials] = subscribe(t, { configDir: dir, credentials, autoInvalidate: credentials === 'file' });
      await signInHeard(subs.file.c, dir, 'a', 'both open');
      await sleep(SETTLE_MS);
      assert.equal(
        subs.none.c.items.filter((x) => x.event.reason === 'credentials-changed').length,
        0,
        "credentials: 'none' heard a sign-in",
      );
      // The first one closes; the second keeps its own semantics.
      subs[order[0]].sub.close();
      if (order[0] === 'none') {
        await signInHeard(subs.file.c, dir, 'b', "after 'none' closed");
      } else {
        const n = subs.none.c.items.length;
        writeCacheLikeClaude(dir, { c: Date.now() });
        await subs.none.c.waitFor(isCache('c'), WAIT_MS, "cache-changed at the 'none' subscriber");
        await runWriter(dir, [{ fn: 'writeFreshToken', server: 'c', url: urlOf('c'), opts: { token: secret('c') } }]);
        await sleep(SETTLE_MS * 2);
        assert.deepEqual(
          subs.none.c.items.slice(n).map((x) => x.event.reason),
          ['cache-changed'],
        );
        assert.equal('c' in readCacheFile(dir), true, "nothing auto-invalidated for the 'none' store");
      }
    });
  }

  it('watch: false and autoInvalidate: false subscribers beside a watching one keep their own semantics', async (t) => {
    const dir = tmpDir(t, 'mna-w-');
    const quiet = subscribe(t, { configDir: dir, credentials: 'file', watch: false });
    const keep = subscribe(t, { configDir: dir, credentials: 'file', autoInvalidate: false });
    writeCacheLikeClaude(dir, { a: Date.now() - 60_000 });
    await keep.c.waitFor(isCache('a'), WAIT_MS, 'cache-changed');
    await runWriter(dir, [{ fn: 'writeFreshToken', server: 'a', url: urlOf('a'), opts: { token: secret('a') } }]);
    const got = await keep.c.waitFor(isCreds('a'), WAIT_MS, 'credentials-changed');
    assert.deepEqual(got.cached, ['a'], 'no subscriber asked for auto-invalidation: the entry stays');
    // A second subscriber of the same store that asks for it turns it on for that watcher.
    const auto = subscribe(t, { configDir: dir, credentials: 'file', autoInvalidate: true });
    await runWriter(dir, [{ fn: 'writeFreshToken', server: 'a', url: urlOf('a'), opts: { token: secret('a2') } }]);
    await auto.c.waitFor(isCreds('a'), WAIT_MS, 'credentials-changed at the auto subscriber');
    assert.equal('a' in readCacheFile(dir), false);
    // ...and off again when it leaves.
    auto.sub.close();
    writeCacheLikeClaude(dir, { b: Date.now() - 60_000 });
    await keep.c.waitFor(isCache('b'), WAIT_MS, 'cache-changed for b');
    await runWriter(dir, [{ fn: 'writeFreshToken', server: 'b', url: urlOf('b'), opts: { token: secret('b') } }]);
    await keep.c.waitFor(isCreds('b'), WAIT_MS, 'credentials-changed for b');
    await sleep(100);
    assert.equal('b' in readCacheFile(dir), true, 'auto-invalidation ended with its last subscriber');
    assert.deepEqual(
      quiet.c.items.map((x) => x.event.reason),
      [],
      'watch: false heard other processes',
    );
  });
});

describe('bad options leave nothing behind', () => {
  it('signal {aborted:false} (not an AbortSignal) throws ERR_INVALID_ARGUMENT: no watcher, no delivery', async (t) => {
    const dir = tmpDir(t, 'mna-w-');
    const before = watcherThreads();
    let delivered = 0;
    const bad = [
      { signal: { aborted: false } },
      { signal: { aborted: 'no', addEventListener() {} } },
      { signal: 5 },
      { credentials: 'nope' },
      { pollIntervalMs: -1 },
      { autoInvalidate: 'yes' },
    ];
    for (const extra of bad) {
      let err;
      try {
        addon
          .onAuthChanged(
            () => {
              delivered++;
            },
            { configDir: dir, ...extra },
          )
          .close();
      } catch (e) {
        err = e;
      }
      assert.ok(err, `${JSON.stringify(extra)}: no throw`);
      assert.equal(err.code, 'ERR_INVALID_ARGUMENT', `${JSON.stringify(extra)}: ${err.code} ${err.message}`);
    }
    assert.equal(watcherThreads(), before, 'a watcher thread was left running');
    addon.invalidateNeedsAuth('x', { configDir: dir });
    writeCacheLikeClaude(dir, { y: Date.now() });
    await sleep(SETTLE_MS);
    assert.equal(delivered, 0, 'a rejected subscription delivered events');
  });

  it('no napi status name ever reaches a user as code', () => {
    const NAPI =
      /^(Ok|InvalidArg|ObjectExpected|StringExpected|NameExpected|FunctionExpected|NumberExpected|BooleanExpected|ArrayExpected|GenericFailure|PendingException|Cancelled|EscapeCalledTwice|HandleScopeMismatch|CallbackScopeMismatch|QueueFull|Closing|BigintExpected|DateExpected|ArrayBufferExpected|DetachableArraybufferExpected|WouldDeadlock|NoExternalBuffersAllowed|Unknown)$/;
    const codes = new Set();
    const attempts = [
      () => addon.onAuthChanged(() => {}, { signal: { aborted: false } }),
      () => addon.onAuthChanged(() => {}, { signal: Object.create(null) }),
      () => addon.Subscription.prototype.close.call({}),
      () => addon.isNeedsAuthCached(Symbol('s')),
      () => addon.listNeedsAuth({ configDir: Symbol('d') }),
      // Arguments napi decodes through the addon's own types (`ServerName`, `NeedsAuthOptions`).
      () => addon.isNeedsAuthCached(5),
      () => addon.markNeedsAuth(undefined),
      () => addon.diagnose({}),
      () => addon.cachePath(7),
      () => addon.purgeStale({ credentials: 5 }),
      () => addon.listNeedsAuth({ defaultTtlMs: -1 }),
      () => addon.invalidateNeedsAuth(5),
      () => addon.invalidateNeedsAuth([1]),
      () => addon.onAuthChanged(5),
    ];
    for (const f of attempts) {
      try {
        f();
      } catch (e) {
        codes.add(e.code);
      }
    }
    for (const [f, code, message] of [
      [() => addon.isNeedsAuthCached(5), 'ERR_INVALID_SERVER_NAME', /server must be a string/],
      [() => addon.cachePath(7), 'ERR_INVALID_ARGUMENT', /options must be an object/],
      [() => addon.invalidateNeedsAuth([1]), 'ERR_INVALID_SERVER_NAME', /server must be a string/],
      [() => addon.onAuthChanged(5), 'ERR_INVALID_ARGUMENT', /onAuthChanged needs a callback function/],
      [() => addon.purgeStale({ credentials: 5 }), 'ERR_INVALID_ARGUMENT', /options\.credentials must be/],
      [
        () => addon.listNeedsAuth({ defaultTtlMs: -1 }),
        'ERR_INVALID_ARGUMENT',
        /options\.defaultTtlMs must be a finite number >= 0/,
      ],
    ]) {
      assert.throws(f, (e) => e instanceof Error && e.code === code && message.test(e.message));
    }
    assert.ok(codes.size > 0);
    // V8's own TypeError ("Illegal invocation") has no code; ours all start with ERR_.
    for (const code of codes) {
      assert.ok(code === undefined || /^ERR_[A-Z_]+$/.test(code), `code ${code}`);
      assert.doesNotMatch(String(code), NAPI);
    }
  });
});

describe('worker threads', () => {
  it('a worker that exits without close() releases its subscription and its watcher', async (t) => {
    const dir = tmpDir(t, 'mna-w-');
    const before = watcherThreads();
    const { Worker } = require('node:worker_threads');
    const code = `
      const { parentPort } = require('node:worker_threads');
      const m = require(${JSON.stringify(ADDON_DIR)});
      m.onAuthChanged(() => parentPort.postMessage('event'), { configDir: ${JSON.stringify(dir)}, credentials: 'file' });
      setInterval(() => {}, 1000); // alive until terminated (the subscription never keeps it alive)
      parentPort.postMessage('subscribed');`;
    const w = new Worker(code, { eval: true });
    const events = [];
    w.on('message', (m) => events.push(m));
    await waitUntil(() => events.includes('subscribed'), 'the worker to subscribe');
    await sleep(200);
    assert.equal(watcherThreads(), before + 1, "the worker's watcher runs while the worker lives");
    await w.terminate();
    await waitUntil(() => watcherThreads() === before, 'the watcher thread to stop after the worker exited');
    // The main thread can still subscribe to the same dir and hear changes.
    const main = subscribe(t, { configDir: dir, credentials: 'file' });
    await signInHeard(main.c, dir, 'm', 'after the worker');
  });

  it('a process whose worker subscribed and exited still exits by itself', () => {
    const dir = path.join(require('node:os').tmpdir(), `mna-w-exit-${process.pid}`);
    const code = `
      const { Worker } = require('node:worker_threads');
      const w = new Worker(\`
        const m = require(${JSON.stringify(ADDON_DIR)});
        m.onAuthChanged(() => {}, { configDir: ${JSON.stringify(dir)} });
        require('node:worker_threads').parentPort.postMessage('ok');\`, { eval: true });
      w.on('message', () => process.stdout.write('subscribed'));`;
    const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', timeout: 15_000, killSignal: 'SIGKILL' });
    fs.rmSync(dir, { recursive: true, force: true });
    assert.equal(r.signal, null, "killed: the worker's subscription kept the process alive");
    assert.equal(r.status, 0, r.stderr);
    assert.equal(r.stdout, 'subscribed');
  });
});

describe("the read memo never takes another writer's file for ours", () => {
  it('a Claude-Code-style writer that rewrites the file right after each of our renames is always seen', {
    timeout: 60_000,
  }, async (t) => {
    const dir = tmpDir(t, 'mna-w-');
    const file = path.join(dir, FILE);
    // The racer reacts to our rename (fs.watch) with Claude Code's read-modify-writeFile, and
    // says on stdout which round it wrote.
    const racer = spawn(
      process.execPath,
      [
        '-e',
        `
      const fs = require('fs'), path = require('path');
      const dir = ${JSON.stringify(dir)}, file = path.join(dir, ${JSON.stringify(FILE)});
      let round = 0;
      fs.watch(dir, (type, name) => {
        if (type !== 'rename' || name !== ${JSON.stringify(FILE)}) return;
        let doc = {};
        try { doc = JSON.parse(fs.readFileSync(file, 'utf8')); } catch {}
        round++;
        doc['cc-' + round] = { timestamp: Date.now() };
        fs.writeFileSync(file, JSON.stringify(doc));
        process.stdout.write(round + '\\n');
      });
      process.stdout.write('ready\\n');
      process.stdin.on('end', () => process.exit(0)); process.stdin.resume();`,
      ],
      { stdio: ['pipe', 'pipe', 'inherit'] },
    );
    deferClose(t, () => racer.kill('SIGKILL'));
    let out = '';
    racer.stdout.on('data', (d) => {
      out += d;
    });
    await waitUntil(() => out.includes('ready'), 'the racer');
    const ROUNDS = 60;
    let stale = 0;
    for (let i = 1; i <= ROUNDS; i++) {
      const wrote = () =>
        out
          .split('\n')
          .map(Number)
          .filter((n) => n > 0).length;
      const seen = wrote();
      addon.markNeedsAuth(`mine-${i}`, { configDir: dir });
      try {
        await waitUntil(() => wrote() > seen, `the racer's write after round ${i}`, 3000);
      } catch {
        continue;
      } // it reacted to an earlier event of ours: nothing to check this round
      await sleep(20); // its write has landed; nothing writes now
      const onDisk = Object.keys(JSON.parse(fs.readFileSync(file, 'utf8'))).sort();
      const listed = addon
        .listNeedsAuth({ configDir: dir })
        .map((e) => e.server)
        .sort();
      if (JSON.stringify(onDisk) !== JSON.stringify(listed)) stale++;
    }
    racer.stdin.end();
    assert.equal(
      stale,
      0,
      `${stale}/${ROUNDS} reads answered from a memo of our own write after the racer replaced it`,
    );
  });
});
