'use strict';
// The check's fast paths must never give up an answer's exactness:
// - read-after-write across processes: a change another process completed before a check
//   started is seen by that check (the memo is guarded by inotify on Linux, by stat elsewhere),
//   for both ways Claude Code writes (in place; temp + rename) and for a config dir that is
//   deleted and made again;
// - the remembered config dir follows `process.env` (Node's assignments reach the C environment);
// - options are decoded afresh on every call: a mutated options object is seen, and every known
//   field is still validated.
//
//   node --test __test__/unit/check.test.js

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { fork } = require('node:child_process');

const ADDON = path.resolve(__dirname, '..', '..');
const { cachePath, isNeedsAuthCached, listNeedsAuth, markNeedsAuth } = require(ADDON);
const { tmp } = require('../helpers/tmp.js');

const FILE = 'mcp-needs-auth-cache.json';

// A child process that writes the cache file on request, the way Claude Code does, and answers
// only once the write (and, for 'recreate', the rm -r + mkdir before it) is complete.
const WRITER = `
const fs = require('node:fs');
const path = require('node:path');
process.on('message', ({ dir, style, server }) => {
  const file = path.join(dir, '${FILE}');
  const bytes = JSON.stringify({ [server]: { timestamp: Date.now() } });
  if (style === 'in-place') fs.writeFileSync(file, bytes);
  else if (style === 'rename') {
    const tmp = path.join(dir, '.w-' + process.pid);
    fs.writeFileSync(tmp, bytes);
    fs.renameSync(tmp, file);
  } else if (style === 'recreate') {
    fs.rmSync(dir, { recursive: true, force: true });
    fs.mkdirSync(dir);
    fs.writeFileSync(file, bytes);
  } else if (style === 'remove') fs.rmSync(file, { force: true });
  process.send('done');
});
process.send('ready');
`;

async function startWriter(t) {
  const child = fork('-e', [WRITER], { execArgv: [], stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const timer = setTimeout(() => child.kill('SIGKILL'), 120_000);
  t.after(() => {
    clearTimeout(timer);
    child.kill('SIGKILL');
  });
  await new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) => reject(new Error(`writer exited ${code}`)));
  });
  return (msg) =>
    new Promise((resolve) => {
      child.once('message', resolve);
      child.send(msg);
    });
}

describe('read-after-write across processes', () => {
  for (const style of ['in-place', 'rename']) {
    it(`sees every ${style} write by another process in the very next check`, async (t) => {
      const dir = tmp(t, 'mna-check-', { realpath: true });
      const opts = { configDir: dir };
      const write = await startWriter(t);
      assert.equal(isNeedsAuthCached('s-1', opts), false, 'no file yet');
      for (let i = 0; i < 300; i++) {
        // The check right before the write memoises the old document...
        assert.equal(isNeedsAuthCached(`s${i - 1}`, opts), i > 0, `before write ${i}`);
        await write({ dir, style, server: `s${i}` });
        // ...and the first check after it must see the new one.
        assert.equal(isNeedsAuthCached(`s${i}`, opts), true, `write ${i} not seen`);
        assert.equal(isNeedsAuthCached(`s${i - 1}`, opts), false, `write ${i} only half seen`);
      }
      await write({ dir, style: 'remove' });
      assert.deepEqual(listNeedsAuth(opts), [], 'removal seen');
    });
  }

  it('follows a config dir that is deleted and made again, in place and by rename', async (t) => {
    const dir = tmp(t, 'mna-check-', { realpath: true });
    const opts = { configDir: dir };
    const write = await startWriter(t);
    for (let i = 0; i < 60; i++) {
      assert.equal(isNeedsAuthCached(`w${i - 1}`, opts), i > 0, `before recreate ${i}`);
      await write({ dir, style: 'recreate', server: `r${i}` });
      assert.equal(isNeedsAuthCached(`r${i}`, opts), true, `recreated dir ${i} not seen`);
      // Later writes into the new directory are seen too (the watch was re-armed, or stat is used).
      const style = i % 2 ? 'rename' : 'in-place';
      await write({ dir, style, server: `w${i}` });
      assert.equal(isNeedsAuthCached(`w${i}`, opts), true, `${style} write ${i} into the new dir not seen`);
    }
  });

  it("sees this process's own writes and a file written through a symlinked dir", async (t) => {
    const root = tmp(t, 'mna-check-', { realpath: true });
    const real = path.join(root, 'real');
    fs.mkdirSync(real);
    fs.symlinkSync(real, path.join(root, 'link'));
    const viaLink = { configDir: path.join(root, 'link') };
    const write = await startWriter(t);
    for (let i = 0; i < 50; i++) {
      await write({ dir: real, style: i % 2 ? 'rename' : 'in-place', server: `l${i}` });
      assert.equal(isNeedsAuthCached(`l${i}`, viaLink), true, `write ${i} through the link not seen`);
      markNeedsAuth(`own${i}`, viaLink);
      assert.equal(isNeedsAuthCached(`own${i}`, viaLink), true);
    }
  });
});

describe('the remembered config dir follows process.env', () => {
  it('sees CLAUDE_CONFIG_DIR and HOME assigned from JavaScript at once', (t) => {
    const saved = { c: process.env.CLAUDE_CONFIG_DIR, h: process.env.HOME };
    t.after(() => {
      for (const [k, v] of [
        ['CLAUDE_CONFIG_DIR', saved.c],
        ['HOME', saved.h],
      ]) {
        if (v === undefined) delete process.env[k];
        else process.env[k] = v;
      }
    });
    const a = tmp(t, 'mna-check-', { realpath: true });
    const b = tmp(t, 'mna-check-', { realpath: true });
    process.env.CLAUDE_CONFIG_DIR = a;
    assert.equal(cachePath(), path.join(a, FILE));
    process.env.CLAUDE_CONFIG_DIR = b;
    assert.equal(cachePath(), path.join(b, FILE), 'a new value is seen by the next call');
    fs.writeFileSync(path.join(a, FILE), JSON.stringify({ x: { timestamp: Date.now() } }));
    assert.equal(isNeedsAuthCached('x'), false, 'the check reads b');
    process.env.CLAUDE_CONFIG_DIR = a;
    assert.equal(isNeedsAuthCached('x'), true, 'and a again');
    delete process.env.CLAUDE_CONFIG_DIR;
    process.env.HOME = b;
    assert.equal(cachePath(), path.join(b, '.claude', FILE), 'unset: HOME decides');
    process.env.HOME = a;
    assert.equal(cachePath(), path.join(a, '.claude', FILE), 'HOME changes are seen too');
    process.env.CLAUDE_CONFIG_DIR = 'cafe\u0301';
    assert.equal(cachePath(), path.join('caf\u00e9', FILE), 'still NFC-normalised');
  });
});

describe('options are decoded afresh on every call', () => {
  it('sees a mutated options object', (t) => {
    const a = tmp(t, 'mna-check-', { realpath: true });
    const b = tmp(t, 'mna-check-', { realpath: true });
    markNeedsAuth('only-in-a', { configDir: a });
    const opts = { configDir: a };
    assert.equal(isNeedsAuthCached('only-in-a', opts), true);
    opts.configDir = b;
    assert.equal(isNeedsAuthCached('only-in-a', opts), false, 'configDir changed');
    opts.configDir = a;
    opts.defaultTtlMs = 0;
    assert.equal(isNeedsAuthCached('only-in-a', opts), false, 'a field added');
    delete opts.defaultTtlMs;
    assert.equal(isNeedsAuthCached('only-in-a', opts), true, 'a field removed');
    opts.defaultTtlMs = 'soon';
    assert.throws(
      () => isNeedsAuthCached('only-in-a', opts),
      (e) => e.code === 'ERR_INVALID_ARGUMENT' && /options\.defaultTtlMs/.test(e.message),
    );
    opts.defaultTtlMs = -1;
    assert.throws(
      () => isNeedsAuthCached('only-in-a', opts),
      (e) => e.code === 'ERR_INVALID_ARGUMENT' && /options\.defaultTtlMs/.test(e.message),
    );
    delete opts.defaultTtlMs;
    opts.configDir = 42;
    assert.throws(
      () => isNeedsAuthCached('only-in-a', opts),
      (e) => e.code === 'ERR_INVALID_ARGUMENT' && /options\.configDir/.test(e.message),
    );
  });

  it('validates every known field whichever function gets it, and ignores unknown ones', () => {
    for (const [bad, name] of [
      [{ watch: 'yes' }, 'watch'],
      [{ credentials: 'disk' }, 'credentials'],
      [{ pollIntervalMs: Infinity }, 'pollIntervalMs'],
      [{ id: 7 }, 'id'],
      [{ configDir: '' }, 'configDir'],
    ]) {
      assert.throws(
        () => cachePath({ ...bad, configDir: bad.configDir ?? '/x' }),
        (e) => e.code === 'ERR_INVALID_ARGUMENT' && e.message.includes(`options.${name}`),
        name,
      );
    }
    assert.equal(cachePath({ configDir: '/x', somethingElse: 1, 0: 'n', [Symbol('s')]: 1 }), path.join('/x', FILE));
    assert.throws(
      () => cachePath('x'),
      (e) => e.code === 'ERR_INVALID_ARGUMENT',
    );
  });

  it('reads inherited options from class instances and Object.create, and null-prototype objects', () => {
    class Opts {
      constructor() {
        this.configDir = '/from-class';
      }
    }
    assert.equal(cachePath(new Opts()), path.join('/from-class', FILE));
    assert.equal(cachePath(Object.create({ configDir: '/from-proto' })), path.join('/from-proto', FILE));
    const bare = Object.create(null);
    bare.configDir = '/bare';
    assert.equal(cachePath(bare), path.join('/bare', FILE));
    assert.throws(
      () => cachePath(Object.create({ configDir: 1 })),
      (e) => e.code === 'ERR_INVALID_ARGUMENT',
    );
  });

  it('decodes a reused options object afresh on every call (mutations, getters, patched builtins)', (t) => {
    const [a, b] = [tmp(t, 'mna-check-', { realpath: true }), tmp(t, 'mna-check-', { realpath: true })];
    markNeedsAuth('only-in-a', { configDir: a });
    const opts = { configDir: a };
    assert.equal(isNeedsAuthCached('only-in-a', opts), true);
    opts.configDir = b;
    assert.equal(isNeedsAuthCached('only-in-a', opts), false, 'the new dir is read');
    opts.watch = 'yes';
    assert.throws(
      () => isNeedsAuthCached('only-in-a', opts),
      (e) => e.code === 'ERR_INVALID_ARGUMENT' && e.message.includes('options.watch'),
    );
    delete opts.watch;
    opts.configDir = a;
    assert.equal(isNeedsAuthCached('only-in-a', opts), true);
    let reads = 0;
    const getter = Object.defineProperty({}, 'configDir', {
      enumerable: true,
      get: () => {
        reads++;
        return a;
      },
    });
    assert.equal(isNeedsAuthCached('only-in-a', getter), true);
    assert.equal(reads, 1, 'a getter runs once per call');
    const keys = Object.keys;
    Object.keys = () => [];
    try {
      assert.equal(isNeedsAuthCached('only-in-a', { configDir: b }), false, 'patched Object.keys changes nothing');
    } finally {
      Object.keys = keys;
    }
  });

  it('follows configDir from call to call, alternating, and in a worker thread at the same time', async (t) => {
    const [a, b] = [tmp(t, 'mna-check-', { realpath: true }), tmp(t, 'mna-check-', { realpath: true })];
    markNeedsAuth('only-in-a', { configDir: a });
    markNeedsAuth('only-in-b', { configDir: b });
    const { Worker } = require('node:worker_threads');
    const worker = new Worker(
      `const { parentPort, workerData } = require('node:worker_threads');
       const { isNeedsAuthCached } = require(workerData.addon);
       let wrong = 0;
       for (let i = 0; i < 2000; i++) {
         const inA = i % 3 === 0;
         if (isNeedsAuthCached('only-in-a', { configDir: inA ? workerData.a : workerData.b }) !== inA) wrong++;
       }
       parentPort.postMessage(wrong);`,
      { eval: true, workerData: { addon: ADDON, a, b } },
    );
    t.after(() => worker.terminate());
    for (let i = 0; i < 2000; i++) {
      const inA = i % 2 === 0;
      // A fresh string each time: equal content, another string object.
      const dir = `${inA ? a : b}`.slice(0);
      assert.equal(isNeedsAuthCached('only-in-a', { configDir: dir }), inA, `call ${i}`);
      assert.equal(isNeedsAuthCached('only-in-b', { configDir: inA ? a : b }), !inA, `call ${i}, b`);
    }
    const wrong = await new Promise((resolve, reject) => {
      worker.once('message', resolve);
      worker.once('error', reject);
    });
    assert.equal(wrong, 0, 'the worker saw its own dirs');
  });

  it('reads server names of every length around the size of the first read exactly', (t) => {
    const dir = tmp(t, 'mna-check-', { realpath: true });
    for (let n = 244; n <= 260; n++) {
      const server = `${'n'.repeat(n - 1)}\u00e9`;
      markNeedsAuth(server, { configDir: dir });
      assert.equal(isNeedsAuthCached(server, { configDir: dir }), true, `${n} chars`);
      assert.equal(isNeedsAuthCached(`m${server.slice(1)}`, { configDir: dir }), false, `${n} chars, first differs`);
      assert.equal(isNeedsAuthCached(`${server.slice(0, -1)}e`, { configDir: dir }), false, `${n} chars, last differs`);
    }
  });

  it("isNeedsAuthCached's own entry point decodes and throws exactly as the generated ones do", () => {
    // isNeedsAuthCached is a plain Node-API callback (crates/node/src/fast_call.rs); diagnose takes
    // the same (server, options) through napi-rs's generated wrapper.
    const { diagnose } = require(ADDON);
    const cases = [
      [],
      [5],
      [null],
      [''],
      ['a\u0000b'],
      ['x', 7],
      ['x', 'dir'],
      ['x', { configDir: '' }],
      ['x', { configDir: 1 }],
      ['x', { defaultTtlMs: -1, configDir: '/x' }],
      ['x', { watch: 'yes', configDir: '/x' }],
      ['x', { serverConfig: [], configDir: '/x' }],
      ['x', Object.create({ configDir: 2 })],
    ];
    for (const args of cases) {
      const thrown = (fn) => {
        try {
          fn(...args);
        } catch (e) {
          return { code: e.code, message: e.message, isError: e instanceof Error };
        }
        return 'no throw';
      };
      assert.deepEqual(thrown(isNeedsAuthCached), thrown(diagnose), JSON.stringify(args));
      assert.notEqual(thrown(isNeedsAuthCached), 'no throw', JSON.stringify(args));
    }
    assert.equal(isNeedsAuthCached('x', null), false);
    assert.equal(isNeedsAuthCached('x', undefined), false);
  });

  it('reads long strings exactly', (t) => {
    const dir = tmp(t, 'mna-check-', { realpath: true });
    const deep = path.join(dir, 'd'.repeat(200), 'e\u00e9'.repeat(80), 'x'.repeat(100));
    assert.equal(cachePath({ configDir: deep }), path.join(deep, FILE));
    fs.mkdirSync(deep, { recursive: true });
    const server = 's\u00e9'.repeat(300);
    markNeedsAuth(server, { configDir: deep });
    assert.deepEqual(
      listNeedsAuth({ configDir: deep }).map((e) => e.server),
      [server],
    );
    assert.equal(isNeedsAuthCached(server, { configDir: deep }), true);
  });
});
