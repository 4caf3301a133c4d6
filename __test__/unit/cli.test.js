'use strict';

// Tests of the `mcp-needs-auth` command-line interface (bin/mcp-needs-auth.js).
// Every test uses its own temp config dir; every child is bounded by a timeout and killed in cleanup.

const test = require('node:test');
const { describe, it, after } = test;
const assert = require('node:assert/strict');
const { spawn } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const addon = require('../..');
const { tmp } = require('../helpers/tmp.js');

const BIN = path.join(__dirname, '..', '..', 'bin', 'mcp-needs-auth.js');
const CACHE = 'mcp-needs-auth-cache.json';
const CHILD_TIMEOUT_MS = 15_000;

const children = new Set();

after(() => {
  for (const c of children) {
    try {
      c.kill('SIGKILL');
    } catch {}
  }
});

function childEnv(home) {
  const env = { ...process.env, HOME: home, USERPROFILE: home };
  delete env.CLAUDE_CONFIG_DIR;
  delete env.CLAUDE_SECURESTORAGE_CONFIG_DIR;
  delete env.NODE_OPTIONS;
  return env;
}

/** Starts the CLI; the child is killed after `timeoutMs` and in the file's cleanup. */
function start(args, { home = os.tmpdir(), timeoutMs = CHILD_TIMEOUT_MS } = {}) {
  const child = spawn(process.execPath, [BIN, ...args], { env: childEnv(home), stdio: ['ignore', 'pipe', 'pipe'] });
  children.add(child);
  child.stdout.setEncoding('utf8');
  child.stderr.setEncoding('utf8');
  child.out = '';
  child.err = '';
  child.stdout.on('data', (s) => (child.out += s));
  child.stderr.on('data', (s) => (child.err += s));
  const timer = setTimeout(() => child.kill('SIGKILL'), timeoutMs);
  child.done = new Promise((resolve) => {
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      children.delete(child);
      resolve({ code, signal, stdout: child.out, stderr: child.err });
    });
  });
  return child;
}

/** Runs the CLI to completion. */
function run(args, opts) {
  return start(args, opts).done;
}

/** Resolves once `pred(child)` holds, checking on every chunk of output; rejects after `ms`. */
function waitFor(child, pred, ms, what) {
  return new Promise((resolve, reject) => {
    let timer;
    const check = () => {
      if (pred(child)) {
        clearTimeout(timer);
        child.stdout.off('data', check);
        child.stderr.off('data', check);
        resolve();
      }
    };
    timer = setTimeout(() => {
      child.stdout.off('data', check);
      child.stderr.off('data', check);
      reject(
        new Error(
          `timed out waiting for ${what}; stdout=${JSON.stringify(child.out)} stderr=${JSON.stringify(child.err)}`,
        ),
      );
    }, ms);
    // Registered after start()'s own listeners, so child.out/err already hold the chunk.
    child.stdout.on('data', check);
    child.stderr.on('data', check);
    check();
  });
}

function writeCache(dir, obj) {
  fs.writeFileSync(path.join(dir, CACHE), JSON.stringify(obj));
}

function readCache(dir) {
  return JSON.parse(fs.readFileSync(path.join(dir, CACHE), 'utf8'));
}

function cfg(dir) {
  return ['--config-dir', dir];
}

describe('path', () => {
  it('prints <configDir>/mcp-needs-auth-cache.json', async (t) => {
    const dir = tmp(t, 'mcp-needs-auth-cli-');
    const r = await run(['path', ...cfg(dir)]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout, `${path.join(dir, CACHE)}\n`);
    assert.equal(r.stderr, '');
  });

  it('accepts options before the command', async (t) => {
    const dir = tmp(t, 'mcp-needs-auth-cli-');
    const r = await run([...cfg(dir), 'path']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), path.join(dir, CACHE));
  });
});

describe('list', () => {
  it('says there are no entries and names the cache path when empty', async (t) => {
    const dir = tmp(t, 'mcp-needs-auth-cli-');
    const r = await run(['list', ...cfg(dir)]);
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /no needs-auth entries/i);
    assert.ok(r.stdout.includes(path.join(dir, CACHE)), r.stdout);
  });

  it('--json prints [] when empty', async (t) => {
    const dir = tmp(t, 'mcp-needs-auth-cli-');
    const r = await run(['list', '--json', ...cfg(dir)]);
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), []);
  });

  it('prints a table with age, time left and cached', async (t) => {
    const dir = tmp(t, 'mcp-needs-auth-cli-');
    const now = Date.now();
    writeCache(dir, {
      github: { timestamp: now - (3 * 60 + 12) * 1000 },
      linear: { timestamp: now - 60 * 60 * 1000 },
      broken: {},
    });
    const r = await run(['list', ...cfg(dir)]);
    assert.equal(r.code, 0, r.stderr);
    const lines = r.stdout.trimEnd().split('\n');
    assert.match(lines[0], /^SERVER\s+AGE\s+EXPIRES IN\s+CACHED$/);
    assert.equal(lines.length, 4);
    assert.match(lines[1], /^github\s+3m1\ds ago\s+11m[34]\ds\s+yes$/);
    assert.match(lines[2], /^linear\s+1h00m ago\s+expired\s+no$/);
    assert.match(lines[3], /^broken\s+-\s+-\s+no$/);
  });

  it('--default-ttl-ms changes the verdict', async (t) => {
    const dir = tmp(t, 'mcp-needs-auth-cli-');
    writeCache(dir, { linear: { timestamp: Date.now() - 60 * 60 * 1000 } });
    const r = await run(['list', '--default-ttl-ms', '14400000', ...cfg(dir)]);
    assert.equal(r.code, 0, r.stderr);
    // 3 h left, less the CLI's start-up: rounded to the second, that reads 3h00m (2h59m if slow).
    assert.match(r.stdout, /^linear\s+1h00m ago\s+(?:3h00m|2h59m)\s+yes$/m);
  });

  it('--json prints the listNeedsAuth array', async (t) => {
    const dir = tmp(t, 'mcp-needs-auth-cli-');
    const now = Date.now();
    writeCache(dir, {
      github: { timestamp: now - 1000 },
      linear: { timestamp: now - 3_600_000, ttlMs: 90_000, id: 'mcpsrv_1' },
    });
    const r = await run(['list', '--json', ...cfg(dir)]);
    assert.equal(r.code, 0, r.stderr);
    const got = JSON.parse(r.stdout);
    assert.deepEqual(got, addon.listNeedsAuth({ configDir: dir }));
    assert.deepEqual(
      got.map((e) => [e.server, e.cached, e.ttlMs]),
      [
        ['github', true, 900_000],
        ['linear', false, 90_000],
      ],
    );
    assert.equal(got[1].id, 'mcpsrv_1');
  });
});

describe('clear', () => {
  it('removes the given servers and prints them', async (t) => {
    const dir = tmp(t, 'mcp-needs-auth-cli-');
    const now = Date.now();
    writeCache(dir, { a: { timestamp: now }, b: { timestamp: now }, c: { timestamp: now } });
    const r = await run(['clear', 'a', 'c', 'zzz', ...cfg(dir)]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'removed: a, c');
    assert.deepEqual(Object.keys(readCache(dir)), ['b']);
  });

  it('removes everything without arguments', async (t) => {
    const dir = tmp(t, 'mcp-needs-auth-cli-');
    const now = Date.now();
    writeCache(dir, { a: { timestamp: now }, b: { timestamp: now - 10_000_000 } });
    const r = await run(['clear', ...cfg(dir)]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'removed: a, b');
    assert.deepEqual(addon.listNeedsAuth({ configDir: dir }), []);
  });

  it('says when there is nothing to remove', async (t) => {
    const dir = tmp(t, 'mcp-needs-auth-cli-');
    const r = await run(['clear', 'a', ...cfg(dir)]);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'nothing to remove');
  });

  it('an invalid server name fails with its code', async (t) => {
    const dir = tmp(t, 'mcp-needs-auth-cli-');
    const r = await run(['clear', '', ...cfg(dir)]);
    assert.equal(r.code, 1);
    assert.match(r.stderr, /^mcp-needs-auth: .+ \(ERR_INVALID_SERVER_NAME\)\n$/);
  });
});

describe('usage', () => {
  const cases = [
    ['no command', []],
    ['unknown command', ['frobnicate']],
    ['unknown flag', ['list', '--frob']],
    ['flag the command does not take', ['path', '--json']],
    ['why without a server', ['why']],
    ['why with two servers', ['why', 'a', 'b']],
    ['stray argument', ['list', 'extra']],
    ['bad --default-ttl-ms', ['list', '--default-ttl-ms', 'soon']],
    ['bad --credentials', ['why', 'x', '--credentials', 'vault']],
    ['--config-dir without a value', ['list', '--config-dir']],
  ];
  for (const [name, args] of cases) {
    it(`${name} exits 2 with the help text on stderr`, async () => {
      const r = await run(args);
      assert.equal(r.code, 2, `stdout=${r.stdout} stderr=${r.stderr}`);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /^mcp-needs-auth: /);
      assert.match(r.stderr, /Usage: mcp-needs-auth <command> \[options\]/);
    });
  }

  for (const args of [['--help'], ['-h'], ['help'], ['list', '--help']]) {
    it(`${args.join(' ')} prints help on stdout and exits 0`, async () => {
      const r = await run(args);
      assert.equal(r.code, 0, r.stderr);
      assert.match(r.stdout, /^Usage: mcp-needs-auth <command> \[options\]/);
      for (const cmd of ['list', 'clear', 'path', 'purge', 'why', 'watch'])
        assert.match(r.stdout, new RegExp(`^  ${cmd}\\b`, 'm'));
    });
  }

  it('--version prints the package version', async () => {
    const r = await run(['--version']);
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), require('../../package.json').version);
  });
});

describe('failures', () => {
  it('a cache file over 1 MiB exits 1 with ERR_CACHE_TOO_LARGE', async (t) => {
    const dir = tmp(t, 'mcp-needs-auth-cli-');
    fs.writeFileSync(path.join(dir, CACHE), `{"a":{"timestamp":1}, "pad":"${'x'.repeat(1024 * 1024)}"}`);
    for (const args of [['list'], ['list', '--json'], ['clear', 'a']]) {
      const r = await run([...args, ...cfg(dir)]);
      assert.equal(r.code, 1, `${args}: ${r.stderr}`);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /^mcp-needs-auth: .+ \(ERR_CACHE_TOO_LARGE\)\n$/);
    }
  });
});

describe('watch', () => {
  it('--json prints a cache-changed line when another process removes an entry; SIGINT exits 0', async (t) => {
    const dir = tmp(t, 'mcp-needs-auth-cli-');
    addon.markNeedsAuth('github', { configDir: dir });
    const child = start(['watch', '--json', '--credentials', 'file', ...cfg(dir)], { home: dir });
    await waitFor(child, (c) => /watching/.test(c.err), 5_000, 'the watching line');

    const t0 = Date.now();
    assert.deepEqual(addon.invalidateNeedsAuth('github', { configDir: dir }), ['github']);
    await waitFor(child, (c) => c.out.includes('\n'), 5_000, 'an event line');
    const latency = Date.now() - t0;

    const events = child.out
      .trimEnd()
      .split('\n')
      .map((l) => JSON.parse(l));
    const ev = events.find((e) => e.reason === 'cache-changed' && e.servers.includes('github'));
    assert.ok(ev, JSON.stringify(events));
    assert.equal(ev.source, 'other-process');
    assert.equal(typeof ev.at, 'number');
    assert.equal(fs.realpathSync(ev.configDir), fs.realpathSync(dir));

    const t1 = Date.now();
    child.kill('SIGINT');
    let timer;
    const r = await Promise.race([
      child.done,
      new Promise((res) => (timer = setTimeout(() => res({ timedOut: true }), 5_000))),
    ]);
    clearTimeout(timer);
    assert.ok(!r.timedOut, 'watch did not exit within 5 s of SIGINT');
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.signal, null);
    t.diagnostic(`event latency ${latency} ms, exit after SIGINT ${Date.now() - t1} ms`);
  });

  it('text mode prints one line per event; SIGTERM exits 0', async (t) => {
    const dir = tmp(t, 'mcp-needs-auth-cli-');
    const child = start(['watch', ...cfg(dir)], { home: dir });
    await waitFor(child, (c) => /watching/.test(c.err), 5_000, 'the watching line');
    addon.markNeedsAuth('linear', { configDir: dir });
    await waitFor(child, (c) => /\blinear\b/.test(c.out), 5_000, 'an event line naming linear');
    assert.match(child.out, /^\d{4}-\d\d-\d\dT\S+Z\s+cache-changed\s+linear\s+\(other-process\)$/m);
    child.kill('SIGTERM');
    const r = await child.done;
    assert.equal(r.code, 0, r.stderr);
  });

  it('stays alive with no events until signalled', async (t) => {
    const dir = tmp(t, 'mcp-needs-auth-cli-');
    const child = start(['watch', ...cfg(dir)], { home: dir });
    await waitFor(child, (c) => /watching/.test(c.err), 5_000, 'the watching line');
    await new Promise((res) => setTimeout(res, 500));
    assert.equal(child.exitCode, null, 'watch exited on its own');
    child.kill('SIGINT');
    assert.equal((await child.done).code, 0);
  });
});

// --- purge and why need purgeStale/diagnose in the addon ---------------------------------------

function writeCredentials(dir, mcpOAuth) {
  fs.writeFileSync(path.join(dir, '.credentials.json'), JSON.stringify({ mcpOAuth }), { mode: 0o600 });
}

describe('purge', () => {
  it('removes an entry older than 15 min as expired and keeps a fresh one', async (t) => {
    const dir = tmp(t, 'mcp-needs-auth-cli-');
    const now = Date.now();
    writeCache(dir, { old: { timestamp: now - 16 * 60 * 1000 }, fresh: { timestamp: now - 1000 } });
    const r = await run(['purge', '--credentials', 'file', ...cfg(dir)], { home: dir });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^removed old\s+expired\b/m);
    assert.doesNotMatch(r.stdout, /fresh/);
    assert.deepEqual(Object.keys(readCache(dir)), ['fresh']);
  });

  it('--json lists {server, reason}', async (t) => {
    const dir = tmp(t, 'mcp-needs-auth-cli-');
    writeCache(dir, { old: { timestamp: Date.now() - 16 * 60 * 1000 } });
    const r = await run(['purge', '--json', '--credentials', 'file', ...cfg(dir)], { home: dir });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), [{ server: 'old', reason: 'expired' }]);
  });

  it('--default-ttl-ms keeps an entry the longer TTL still covers', async (t) => {
    const dir = tmp(t, 'mcp-needs-auth-cli-');
    writeCache(dir, { old: { timestamp: Date.now() - 16 * 60 * 1000 } });
    const r = await run(['purge', '--json', '--default-ttl-ms', '14400000', '--credentials', 'file', ...cfg(dir)], {
      home: dir,
    });
    assert.equal(r.code, 0, r.stderr);
    assert.deepEqual(JSON.parse(r.stdout), []);
    assert.deepEqual(Object.keys(readCache(dir)), ['old']);
  });

  it('reports superseded when tokens were saved after the failure', async (t) => {
    const dir = tmp(t, 'mcp-needs-auth-cli-');
    const now = Date.now();
    writeCache(dir, { github: { timestamp: now - 5 * 60 * 1000 } });
    writeCredentials(dir, {
      'github|0123456789abcdef': {
        serverName: 'github',
        serverUrl: 'http://127.0.0.1:1/mcp',
        accessToken: 'SECRET-ACCESS-TOKEN',
        refreshToken: 'SECRET-REFRESH-TOKEN',
        expiresAt: now + 3_600_000,
        discoveryState: { oauthMetadataFound: true },
      },
    });
    const r = await run(['purge', '--credentials', 'file', ...cfg(dir)], { home: dir });
    assert.equal(r.code, 0, r.stderr);
    assert.match(r.stdout, /^removed github\s+superseded\b/m);
    assert.doesNotMatch(r.stdout + r.stderr, /SECRET/);
  });

  it('says nothing to remove on an empty cache', async (t) => {
    const dir = tmp(t, 'mcp-needs-auth-cli-');
    const r = await run(['purge', '--credentials', 'none', ...cfg(dir)], { home: dir });
    assert.equal(r.code, 0, r.stderr);
    assert.equal(r.stdout.trim(), 'nothing to remove');
  });
});

describe('why', () => {
  it("prints the entry's age exactly as the addon's own message spells it", async (ctx) => {
    const dir = tmp(ctx, 'mcp-needs-auth-cli-');
    // 179.75 s old: rounds to 3m00s. Both the message (made in the addon) and the CLI's own
    // "written ... ago" line must say the same, so durations have one spelling.
    writeCache(dir, { github: { timestamp: Date.now() - 179_750 } });
    const t = await run(['why', 'github', '--credentials', 'none', ...cfg(dir)], { home: dir });
    assert.equal(t.code, 0, t.stderr);
    const inMessage = /answered 401 (\S+) ago/.exec(t.stdout);
    const inEntryLine = /^Cache entry: written (\S+) ago/m.exec(t.stdout);
    assert.ok(inMessage && inEntryLine, t.stdout);
    assert.equal(inEntryLine[1], inMessage[1], t.stdout);
    assert.equal(addon.formatDuration(179_750), '3m00s');
  });

  it('a cached entry: skipped, with a needs-auth-cache reason', async (ctx) => {
    const dir = tmp(ctx, 'mcp-needs-auth-cli-');
    writeCache(dir, { github: { timestamp: Date.now() - 60_000 } });
    const j = await run(['why', 'github', '--json', '--credentials', 'file', ...cfg(dir)], { home: dir });
    assert.equal(j.code, 0, j.stderr);
    const d = JSON.parse(j.stdout);
    assert.equal(d.server, 'github');
    assert.equal(d.skipped, true);
    assert.ok(
      d.reasons.some((r) => r.kind === 'needs-auth-cache'),
      JSON.stringify(d.reasons),
    );
    assert.equal(d.cacheEntry.server, 'github');
    assert.equal(d.credentials.present, false);

    const t = await run(['why', 'github', '--credentials', 'file', ...cfg(dir)], { home: dir });
    assert.equal(t.code, 0, t.stderr);
    assert.match(t.stdout, /^github: SKIPPED/);
    assert.match(t.stdout, /\[needs-auth-cache\] /);
    // The messages carry durations, which move between the two runs.
    const digitless = (s) => s.replace(/\d+/g, 'N');
    for (const r of d.reasons)
      assert.ok(digitless(t.stdout).includes(digitless(r.message)), `text output lacks ${r.message}`);
  });

  it('a token-less stub: tokenless-stub reason that says `claude mcp login name`', async (ctx) => {
    const dir = tmp(ctx, 'mcp-needs-auth-cli-');
    writeCredentials(dir, {
      'name|0123456789abcdef': {
        serverName: 'name',
        serverUrl: 'http://127.0.0.1:1/mcp',
        accessToken: '',
        discoveryState: { oauthMetadataFound: true },
      },
    });
    const j = await run(['why', 'name', '--json', '--credentials', 'file', ...cfg(dir)], { home: dir });
    assert.equal(j.code, 0, j.stderr);
    const d = JSON.parse(j.stdout);
    const reason = d.reasons.find((r) => r.kind === 'tokenless-stub');
    assert.ok(reason, JSON.stringify(d.reasons));
    assert.match(reason.message, /claude mcp login name/);
    assert.equal(d.credentials.tokenlessStub, true);
    assert.equal(d.credentials.hasAccessToken, false);
    assert.equal(d.cacheEntry, null);

    const t = await run(['why', 'name', '--credentials', 'file', ...cfg(dir)], { home: dir });
    assert.equal(t.code, 0, t.stderr);
    assert.match(t.stdout, /\[tokenless-stub\] .*claude mcp login name/);
    assert.match(t.stdout, /token-less stub yes/);
  });

  it('a server with tokens and no entry: not skipped, and no token is printed', async (t) => {
    const dir = tmp(t, 'mcp-needs-auth-cli-');
    writeCredentials(dir, {
      'github|0123456789abcdef': {
        serverName: 'github',
        serverUrl: 'http://127.0.0.1:1/mcp',
        accessToken: 'SECRET-ACCESS-TOKEN',
        refreshToken: 'SECRET-REFRESH-TOKEN',
        clientSecret: 'SECRET-CLIENT',
        expiresAt: Date.now() + 3_600_000,
        discoveryState: { oauthMetadataFound: true },
      },
    });
    for (const extra of [[], ['--json']]) {
      const r = await run(['why', 'github', ...extra, '--credentials', 'file', ...cfg(dir)], { home: dir });
      assert.equal(r.code, 0, r.stderr);
      assert.doesNotMatch(r.stdout + r.stderr, /SECRET/);
      if (extra.length) {
        const d = JSON.parse(r.stdout);
        assert.equal(d.skipped, false);
        assert.deepEqual(d.reasons, []);
        assert.equal(d.credentials.hasAccessToken, true);
        assert.equal(d.credentials.hasRefreshToken, true);
      } else {
        assert.match(r.stdout, /^github: not skipped/);
        assert.match(r.stdout, /access token yes \(expires in (?:\d+h\d\dm|\d+m\d\ds)\), refresh token yes/);
      }
    }
  });

  it('a corrupt credentials file exits 1 with ERR_CREDENTIALS_CORRUPT and echoes none of it', async (t) => {
    const dir = tmp(t, 'mcp-needs-auth-cli-');
    fs.writeFileSync(path.join(dir, '.credentials.json'), '{"mcpOAuth": {"x|0": {"accessToken": "SECRET-ACCESS', {
      mode: 0o600,
    });
    for (const args of [['why', 'x'], ['why', 'x', '--json'], ['purge']]) {
      const r = await run([...args, '--credentials', 'file', ...cfg(dir)], { home: dir });
      assert.equal(r.code, 1, `${args}: ${r.stdout}`);
      assert.equal(r.stdout, '');
      assert.match(r.stderr, /^mcp-needs-auth: .+ \(ERR_CREDENTIALS_CORRUPT\)\n$/);
      assert.doesNotMatch(r.stderr, /SECRET/);
    }
  });

  it('an invalid server name exits 1 with its code', async (t) => {
    const dir = tmp(t, 'mcp-needs-auth-cli-');
    const r = await run(['why', '', '--credentials', 'none', ...cfg(dir)], { home: dir });
    assert.equal(r.code, 1);
    assert.match(r.stderr, /\(ERR_INVALID_SERVER_NAME\)\n$/);
  });
});
