'use strict';
// Many processes writing the same cache at once: 16 workers (fixtures/storm-worker.js), each
// doing 200 mixed markNeedsAuth / invalidateNeedsAuth calls on its own servers, while this
// process keeps reading the file both raw (readFileSync + JSON.parse, as Claude Code reads it)
// and through listNeedsAuth. Every write is a locked read-modify-write replaced by rename, so:
// no lost update, every invalidate returns exactly what its worker's model predicts, and a
// reader never sees a half-written file.
//
//   cd /work/main && node --test __test__/unit/concurrency.test.js

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawn } = require('node:child_process');

const { listNeedsAuth, isNeedsAuthCached } = require('../..');
const { plan, simulate } = require('../fixtures/storm-worker.js');
const { tmp } = require('../helpers/tmp.js');

const WORKERS = 16;
const OPS = 200;
const WORKER_TIMEOUT_MS = 55000;
const FILE = 'mcp-needs-auth-cache.json';

function runWorker(configDir, w, startAt) {
  return new Promise((resolve) => {
    const child = spawn(
      process.execPath,
      [path.join(__dirname, '..', 'fixtures', 'storm-worker.js'), configDir, String(w), String(OPS), String(startAt)],
      { stdio: ['ignore', 'pipe', 'pipe'], timeout: WORKER_TIMEOUT_MS, killSignal: 'SIGKILL' },
    );
    let out = '';
    let err = '';
    child.stdout.on('data', (d) => {
      out += d;
    });
    child.stderr.on('data', (d) => {
      err += d;
    });
    child.on('close', (code, signal) => resolve({ w, code, signal, out, err }));
    child.on('error', (e) => resolve({ w, code: null, signal: null, out, err: String(e) }));
  });
}

describe('16 processes x 200 calls on one cache file', () => {
  it('loses no update and never exposes invalid JSON', { timeout: 90000 }, async (t) => {
    const dir = tmp(t, 'mna-storm-');
    const file = path.join(dir, FILE);
    const opts = { configDir: dir };

    // Claude Code's own entries from before the storm must survive it byte for byte.
    const foreign = {
      'claude.ai Figma': { timestamp: 1795668795083, ttlMs: 14400000, id: 'mcpsrv_1', extra: [1, { a: null }] },
    };
    fs.writeFileSync(file, JSON.stringify(foreign));

    // The expected final file: the foreign entry, then each worker's surviving servers.
    const expected = new Map(Object.entries(foreign).map(([k, v]) => [k, v]));
    for (let w = 0; w < WORKERS; w++) {
      for (const [server, ttlMs] of simulate(plan(w, OPS))) expected.set(server, ttlMs);
    }
    assert.ok(expected.size > WORKERS * 10, `the plan leaves plenty of entries (${expected.size})`);

    const started = Date.now();
    const startAt = started + 1500;
    const workers = Array.from({ length: WORKERS }, (_, w) => runWorker(dir, w, startAt));
    let done = false;
    const all = Promise.all(workers).finally(() => {
      done = true;
    });

    // Reader: until every worker has exited (bounded by the deadline), read as fast as the
    // event loop allows, alternating raw reads and listNeedsAuth.
    const deadline = started + WORKER_TIMEOUT_MS + 5000;
    const stats = { raw: 0, list: 0, isCached: 0, maxEntries: 0, sizes: new Set() };
    const problems = [];
    while (!done && Date.now() < deadline && problems.length < 5) {
      let text;
      try {
        text = fs.readFileSync(file, 'utf8');
      } catch (e) {
        problems.push(`raw read #${stats.raw}: ${e.code} ${e.message}`);
        continue;
      }
      try {
        const doc = JSON.parse(text);
        if (doc === null || typeof doc !== 'object' || Array.isArray(doc))
          problems.push(`raw read #${stats.raw}: root is not an object: ${text.slice(0, 80)}`);
        else if (!Object.hasOwn(doc, 'claude.ai Figma')) problems.push(`raw read #${stats.raw}: foreign entry missing`);
        stats.maxEntries = Math.max(stats.maxEntries, Object.keys(doc).length);
      } catch (e) {
        problems.push(`raw read #${stats.raw}: invalid JSON (${e.message}): ${JSON.stringify(text.slice(0, 120))}`);
      }
      stats.raw++;
      stats.sizes.add(text.length);
      try {
        const list = listNeedsAuth(opts);
        stats.list++;
        if (list[0]?.server !== 'claude.ai Figma')
          problems.push(`listNeedsAuth #${stats.list}: first entry is ${list[0]?.server}`);
        for (const e of list) {
          if (e.server !== 'claude.ai Figma' && !/^w\d+-s\d+$/.test(e.server))
            problems.push(`listNeedsAuth: odd server ${e.server}`);
        }
        isNeedsAuthCached('w0-s0', opts);
        stats.isCached++;
      } catch (e) {
        problems.push(`listNeedsAuth/isNeedsAuthCached threw ${e.code}: ${e.message}`);
      }
      await new Promise((r) => setImmediate(r));
    }
    const results = await all;
    const elapsed = Date.now() - started;
    t.diagnostic(
      `storm: ${WORKERS} workers x ${OPS} ops in ${elapsed} ms; reader: ${stats.raw} raw reads, ` +
        `${stats.list} listNeedsAuth, ${stats.isCached} isNeedsAuthCached, ${stats.sizes.size} distinct sizes, ` +
        `up to ${stats.maxEntries} entries`,
    );

    for (const r of results) {
      assert.equal(r.code, 0, `worker ${r.w} exited ${r.code} ${r.signal}: ${r.err}`);
      const report = JSON.parse(r.out);
      assert.equal(report.ops, OPS);
      assert.deepEqual(report.mismatches, [], `worker ${r.w}: invalidate returned something else than its model`);
    }
    assert.deepEqual(problems, [], 'the reader saw a bad state');
    assert.ok(stats.raw >= 50, `the reader ran during the storm (${stats.raw} reads)`);
    assert.ok(stats.sizes.size > 1, 'the reader saw the file change');

    // The final file: valid compact JSON holding exactly the expected entries.
    const text = fs.readFileSync(file, 'utf8');
    const doc = JSON.parse(text);
    assert.equal(text, JSON.stringify(doc));
    assert.deepEqual(Object.keys(doc).sort(), [...expected.keys()].sort(), 'exactly the expected servers');
    assert.equal(Object.keys(doc)[0], 'claude.ai Figma', 'the foreign entry keeps its place');
    assert.equal(
      text.slice(1, 1 + JSON.stringify(foreign).length - 2),
      JSON.stringify(foreign).slice(1, -1),
      'foreign entry byte-identical',
    );
    for (const [server, ttlMs] of expected) {
      if (server === 'claude.ai Figma') continue;
      assert.deepEqual(Object.keys(doc[server]), ['timestamp', 'ttlMs'], server);
      assert.equal(doc[server].ttlMs, ttlMs, `${server}: the last mark won`);
    }
    const listed = listNeedsAuth(opts);
    assert.equal(listed.length, expected.size);
    // No temp files or corrupt copies are left behind.
    assert.deepEqual(fs.readdirSync(dir).sort(), [FILE, `${FILE}.lock`]);
  });
});
