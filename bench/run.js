'use strict';
// `npm run bench`: measures the addon against the JS baselines in the same run, writes the
// figures to bench/results.json and renders them into BENCHMARKS.md with bench/render.js (which
// holds all the prose). Every temp dir lives under os.tmpdir() and is removed at the end.
//
// Baselines:
//   J1 = Claude Code's own way (2.1.108): readFile + JSON.parse per check; read-modify-write with
//        a plain writeFile per change, no lock.
//   J2 = the careful JS way: proper-lockfile + write-file-atomic for changes; fs.watch (or
//        chokidar) + re-read + JSON.parse + compare for watching.
//
// Section remote lives in bench/remote.js: a config dir on a real FUSE mount (Linux, root).
// Section e2e lives in bench/e2e.js: live Agent SDK sessions of both Claude Code stacks
// (support/stacks.js), reconnectOnAuthChange against claude-agent-acp's way, ~4 min.
//
// Env: BENCH_QUICK=1 shrinks every section (for a smoke run; the numbers are then not reported
// as a full run). BENCH_RESULTS and BENCH_OUT write the JSON and the Markdown elsewhere.
// BENCH_BASELINE=<file.node> loads another build of the addon beside this one (say, the last
// release's, built from its commit) and times it in turns with this one in the check and
// propagation sections: an A/B of two builds in one run, on one machine state.

const fs = require('node:fs');
const fsp = require('node:fs/promises');
const os = require('node:os');
const path = require('node:path');
const { fork } = require('node:child_process');
const { performance } = require('node:perf_hooks');

const ROOT = path.resolve(__dirname, '..');
const addon = require(ROOT);
const baseline = process.env.BENCH_BASELINE ? require(path.resolve(process.env.BENCH_BASELINE)) : null;
const lockfile = require('proper-lockfile');
const writeFileAtomic = require('write-file-atomic');
const chokidar = require('chokidar');
const { writeFreshToken } = require(path.join(ROOT, 'support', 'credentials.js'));
const { report, RESULTS } = require('./render.js');
const { benchE2e } = require('./e2e.js');
const { benchRemote } = require('./remote.js');

const QUICK = process.env.BENCH_QUICK === '1';
const CACHE = 'mcp-needs-auth-cache.json';
const WORKER = path.join(__dirname, 'worker.js');
const TMP = fs.mkdtempSync(path.join(os.tmpdir(), 'mna-bench-'));
const nowHr = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
const log = (...a) => console.error('[bench]', ...a);

let dirSeq = 0;
function freshDir(label) {
  const d = path.join(TMP, `${label}-${dirSeq++}`);
  fs.mkdirSync(d, { recursive: true });
  return d;
}

// ---- statistics --------------------------------------------------------------------------------

function quantile(sorted, q) {
  if (sorted.length === 0) return NaN;
  const idx = Math.min(sorted.length - 1, Math.max(0, Math.ceil(q * sorted.length) - 1));
  return sorted[idx];
}
function stats(samples) {
  const s = Float64Array.from(samples).sort();
  return { n: s.length, median: quantile(s, 0.5), p99: quantile(s, 0.99), max: s[s.length - 1], min: s[0] };
}

/**
 * Times several rows in turns (one batch or call of each row, then the next round), so that a
 * noisy stretch of the machine falls on every row alike: `batches` batches of `per` calls each
 * (per-call µs statistics over the batches), then `n` single calls each (µs per call).
 * Returns `{ [row]: { batch, each } }`.
 */
function timeRowsInTurns(batches, per, n, rows) {
  const names = Object.keys(rows);
  const batch = Object.fromEntries(names.map((k) => [k, new Float64Array(batches)]));
  const each = Object.fromEntries(names.map((k) => [k, new Float64Array(n)]));
  for (let b = 0; b < batches; b++) {
    for (const k of names) {
      const fn = rows[k];
      const t = process.hrtime.bigint();
      for (let i = 0; i < per; i++) fn(i);
      batch[k][b] = Number(process.hrtime.bigint() - t) / 1e3 / per;
    }
  }
  for (let i = 0; i < n; i++) {
    for (const k of names) {
      const fn = rows[k];
      const t = process.hrtime.bigint();
      fn(i);
      each[k][i] = Number(process.hrtime.bigint() - t) / 1e3;
    }
  }
  return Object.fromEntries(names.map((k) => [k, { batch: stats(batch[k]), each: stats(each[k]) }]));
}
/** Times `fn` call by call (ns -> µs). */
function timeEach(n, fn) {
  return timeRowsInTurns(0, 0, n, { fn }).fn.each;
}
/** Times batches of `per` calls; returns per-call µs statistics over the batches. */
function timeBatches(batches, per, fn) {
  return timeRowsInTurns(batches, per, 0, { fn }).fn.batch;
}
async function timeEachAsync(n, fn) {
  const out = new Float64Array(n);
  for (let i = 0; i < n; i++) {
    const t = process.hrtime.bigint();
    await fn(i);
    out[i] = Number(process.hrtime.bigint() - t) / 1e3;
  }
  return stats(out);
}

// ---- J1 / J2 implementations -------------------------------------------------------------------

function j1Read(file) {
  try {
    return JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return {};
  }
}
function j1Cached(file, server) {
  const e = j1Read(file)[server];
  if (!e || typeof e.timestamp !== 'number') return false;
  const age = Date.now() - e.timestamp;
  return age < (typeof e.ttlMs === 'number' ? e.ttlMs : 900000) && age > -60000;
}
async function j1CachedAsync(file, server) {
  let doc;
  try {
    doc = JSON.parse(await fsp.readFile(file, 'utf8'));
  } catch {
    doc = {};
  }
  const e = doc[server];
  if (!e || typeof e.timestamp !== 'number') return false;
  const age = Date.now() - e.timestamp;
  return age < (typeof e.ttlMs === 'number' ? e.ttlMs : 900000) && age > -60000;
}
function j1Change(file, edit) {
  const doc = j1Read(file);
  edit(doc);
  fs.writeFileSync(file, JSON.stringify(doc));
}
// proper-lockfile's default lock is the DIRECTORY `<file>.lock`, which is the name of the addon's
// sidecar lock FILE: once the addon has run in a dir, a default proper-lockfile lock there fails
// with ELOCKED forever. J2 therefore uses its own lock path.
const j2LockPath = (file) => `${file}.j2lock`;
const LOCK_OPTS = { realpath: false, retries: { retries: 100, minTimeout: 2, maxTimeout: 50 } };
async function j2Change(file, edit) {
  const release = await lockfile.lock(file, { ...LOCK_OPTS, lockfilePath: j2LockPath(file) });
  try {
    let doc;
    try {
      doc = JSON.parse(await fsp.readFile(file, 'utf8'));
    } catch {
      doc = {};
    }
    edit(doc);
    await writeFileAtomic(file, JSON.stringify(doc));
  } finally {
    await release();
  }
}
function j2ChangeSync(file, edit) {
  const release = lockfile.lockSync(file, { realpath: false, lockfilePath: j2LockPath(file) });
  try {
    const doc = j1Read(file);
    edit(doc);
    writeFileAtomic.sync(file, JSON.stringify(doc));
  } finally {
    release();
  }
}

function writeCache(dir, n, ts = Date.now()) {
  const doc = {};
  for (let i = 0; i < n; i++) doc[`s${i}`] = { timestamp: ts };
  fs.writeFileSync(path.join(dir, CACHE), JSON.stringify(doc));
}

// ---- 1. check ----------------------------------------------------------------------------------

async function benchCheck() {
  log('1. check');
  const dir = freshDir('check');
  writeCache(dir, 5);
  const file = path.join(dir, CACHE);
  const opts = { configDir: dir };
  const N = QUICK ? 2000 : 20000;
  const savedEnv = process.env.CLAUDE_CONFIG_DIR;
  process.env.CLAUDE_CONFIG_DIR = dir; // for the "no options" row: the dir comes from the environment
  for (let i = 0; i < 2000; i++) {
    for (const a of [addon, baseline].filter(Boolean)) {
      a.isNeedsAuthCached('s1', opts);
      a.isNeedsAuthCached('s1');
    }
    j1Cached(file, 's1');
  }
  const batches = QUICK ? 50 : 300;
  const res = timeRowsInTurns(batches, 100, N, {
    addon: () => addon.isNeedsAuthCached('s1', opts),
    j1sync: () => j1Cached(file, 's1'),
    addonNoOptions: () => addon.isNeedsAuthCached('s1'),
    addonNewOptions: () => addon.isNeedsAuthCached('s1', { configDir: dir }),
    ...(baseline && {
      baseline: () => baseline.isNeedsAuthCached('s1', opts),
      baselineNoOptions: () => baseline.isNeedsAuthCached('s1'),
      baselineNewOptions: () => baseline.isNeedsAuthCached('s1', { configDir: dir }),
    }),
  });
  if (savedEnv === undefined) delete process.env.CLAUDE_CONFIG_DIR;
  else process.env.CLAUDE_CONFIG_DIR = savedEnv;
  res.statFloor = { batch: timeBatches(batches, 100, () => fs.statSync(file)) };
  const nA = QUICK ? 500 : 5000;
  for (let i = 0; i < 200; i++) await j1CachedAsync(file, 's1');
  res.j1async = { each: await timeEachAsync(nA, () => j1CachedAsync(file, 's1')) };
  // A check that must first see another process's change (the memo is stale on every call).
  {
    const n = QUICK ? 300 : 2000;
    const a = new Float64Array(n);
    const j = new Float64Array(n);
    for (let i = 0; i < n; i++) {
      fs.writeFileSync(file, `{"s1":{"timestamp":${Date.now() - (i % 2)}},"s2":{"timestamp":1}}`);
      let t = process.hrtime.bigint();
      addon.isNeedsAuthCached('s1', opts);
      a[i] = Number(process.hrtime.bigint() - t) / 1e3;
      fs.writeFileSync(file, `{"s1":{"timestamp":${Date.now() - (i % 2)}},"s2":{"timestamp":2}}`);
      t = process.hrtime.bigint();
      j1Cached(file, 's1');
      j[i] = Number(process.hrtime.bigint() - t) / 1e3;
    }
    res.afterChange = { addon: stats(a), j1: stats(j) };
  }
  if (!addon.isNeedsAuthCached('s1', opts) || !j1Cached(file, 's1')) throw new Error('check sanity failed');
  return res;
}

// ---- 2. change ---------------------------------------------------------------------------------

async function benchChange() {
  log('2. change');
  const N = QUICK ? 60 : 400;
  const res = {};
  {
    const dir = freshDir('chg-addon');
    writeCache(dir, 5);
    const opts = { configDir: dir };
    for (let i = 0; i < 20; i++) addon.markNeedsAuth(`w${i % 10}`, opts);
    res.addonMark = timeEach(N, (i) => addon.markNeedsAuth(`w${i % 10}`, opts));
    const inv = new Float64Array(N);
    for (let i = 0; i < N; i++) {
      addon.markNeedsAuth('gone', opts);
      const t = process.hrtime.bigint();
      const removed = addon.invalidateNeedsAuth('gone', opts);
      inv[i] = Number(process.hrtime.bigint() - t) / 1e3;
      if (removed.length !== 1) throw new Error('invalidate sanity failed');
    }
    res.addonInvalidate = stats(inv);
    res.addonInvalidateNoop = timeEach(N, () => addon.invalidateNeedsAuth('never-there', opts));
  }
  for (const [key, fn, isAsync] of [
    ['j2', j2Change, true],
    ['j2sync', j2ChangeSync, false],
    ['j1', j1Change, false],
  ]) {
    const dir = freshDir(`chg-${key}`);
    writeCache(dir, 5);
    const file = path.join(dir, CACHE);
    const mark = (i) =>
      fn(file, (d) => {
        d[`w${i % 10}`] = { timestamp: Date.now() };
      });
    const del = () =>
      fn(file, (d) => {
        delete d.gone;
      });
    const add = () =>
      fn(file, (d) => {
        d.gone = { timestamp: Date.now() };
      });
    if (isAsync) {
      for (let i = 0; i < 20; i++) await mark(i);
      res[`${key}Mark`] = await timeEachAsync(N, mark);
      const inv = new Float64Array(N);
      for (let i = 0; i < N; i++) {
        await add();
        const t = process.hrtime.bigint();
        await del();
        inv[i] = Number(process.hrtime.bigint() - t) / 1e3;
      }
      res[`${key}Invalidate`] = stats(inv);
    } else {
      for (let i = 0; i < 20; i++) mark(i);
      res[`${key}Mark`] = timeEach(N, mark);
      const inv = new Float64Array(N);
      for (let i = 0; i < N; i++) {
        add();
        const t = process.hrtime.bigint();
        del();
        inv[i] = Number(process.hrtime.bigint() - t) / 1e3;
      }
      res[`${key}Invalidate`] = stats(inv);
    }
  }
  return res;
}

// ---- 3. propagation ----------------------------------------------------------------------------

function forkWorker(args) {
  const child = fork(WORKER, args, { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const ready = new Promise((resolve, reject) => {
    child.once('message', (m) => (m === 'ready' ? resolve() : reject(new Error(`unexpected ${m}`))));
    child.once('exit', (code) => reject(new Error(`worker ${args.join(' ')} exited ${code}`)));
  });
  return { child, ready };
}

/** Reads .credentials.json and returns {serverName: accessToken}; null when it does not parse. */
function tokensOf(credPath) {
  let doc;
  try {
    doc = JSON.parse(fs.readFileSync(credPath, 'utf8'));
  } catch {
    return null;
  }
  const out = {};
  for (const e of Object.values(doc?.mcpOAuth || {})) if (e?.serverName) out[e.serverName] = e.accessToken;
  return out;
}

/**
 * The cheapest way a JS handler can remove servers' needs-auth entries atomically: read, parse,
 * write a temp file, rename it over the cache. No lock and no fsync, so less than the addon does:
 * a lower bound for any JS handler that removes the entry before it calls back.
 */
function removeEntriesAtomically(dir, servers) {
  const file = path.join(dir, CACHE);
  let doc;
  try {
    doc = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return;
  }
  if (!servers.some((s) => Object.hasOwn(doc, s))) return;
  for (const s of servers) delete doc[s];
  const tmp = `${file}.tmp-bench-${process.pid}`;
  fs.writeFileSync(tmp, JSON.stringify(doc));
  fs.renameSync(tmp, file);
}

/**
 * A J2 watcher: on each event re-read, parse and compare; reports servers whose token changed
 * (`fswatch`, `chokidar`). `fswatch-remove` also removes their entries first, as above.
 */
function j2Watcher(kind, dir, onChange) {
  const credPath = path.join(dir, '.credentials.json');
  let last = tokensOf(credPath) || {};
  const handle = () => {
    const now = tokensOf(credPath);
    if (!now) return; // half-written: the next event will come
    const changed = Object.keys(now).filter((s) => now[s] !== last[s]);
    last = now;
    if (!changed.length) return;
    if (kind === 'fswatch-remove') removeEntriesAtomically(dir, changed);
    onChange(changed);
  };
  if (kind === 'fswatch' || kind === 'fswatch-remove') {
    const w = fs.watch(dir, (_ev, name) => {
      if (name === '.credentials.json') handle();
    });
    return { ready: Promise.resolve(), close: () => w.close() };
  }
  const w = chokidar.watch(credPath, { ignoreInitial: true });
  w.on('change', handle).on('add', handle);
  return { ready: new Promise((r) => w.once('ready', r)), close: () => w.close() };
}

// BENCH_PROPAGATION=addon,fswatch leaves the others out (chokidar's missed trials take 300 ms
// each): for quick comparisons while working, not for a reported run.
const PROPAGATION_KINDS = (
  process.env.BENCH_PROPAGATION || `addon,${baseline ? 'baseline,' : ''}fswatch,fswatch-remove,chokidar`
).split(',');

/** One watcher of the propagation section, with its own config dir and writer process. */
async function propagationSubject(style, kind, onRemovedFirst) {
  const dir = freshDir(`prop-${style}-${kind}`);
  // Same starting document for every watcher: three servers signed in, no entries.
  for (let s = 0; s < 3; s++) writeFreshToken(dir, `t${s}`, `https://t${s}.example.test/mcp`, { token: `seed-${s}` });
  const { child, ready } = forkWorker(['cred-writer', dir]);
  await ready;
  const subject = { kind, child, pending: null, lat: [], afterWriter: [], missed: 0 };
  const onChange = (servers, t = nowHr()) => {
    if (subject.pending && servers.includes(subject.pending.server)) subject.pending.cb(t);
  };
  if (kind === 'addon' || kind === 'baseline') {
    const a = kind === 'addon' ? addon : baseline;
    const sub = a.onAuthChanged(
      (ev) => {
        if (ev.reason !== 'credentials-changed') return;
        const t = nowHr(); // before the check below, which is no part of the propagation
        const p = subject.pending;
        if (p && ev.servers.includes(p.server) && !a.isNeedsAuthCached(p.server, { configDir: dir })) {
          onRemovedFirst(kind);
        }
        onChange(ev.servers, t);
      },
      { configDir: dir, credentials: 'file' },
    );
    subject.watcher = { ready: Promise.resolve(), close: () => sub.close() };
  } else {
    subject.watcher = j2Watcher(kind, dir, onChange);
  }
  await subject.watcher.ready;
  return subject;
}

async function benchPropagation() {
  log('3. propagation');
  const TRIALS = QUICK ? 30 : 200;
  // Trials run in blocks, each watcher's block in turn, so that a noisy stretch of the machine
  // falls on every watcher alike.
  const BLOCK = QUICK ? 10 : 20;
  const SPACING = 30;
  const TIMEOUT = 300; // ms; a callback later than this counts as missed
  // The writer replies (with its t0) this long after saving, so that no IPC is handled on this
  // JS thread while the callbacks are due: it delayed whichever watcher's callback came later.
  const REPLY_AFTER = 20; // ms
  const res = {};
  // Claude Code 2.1.108 saves credentials in place (truncate, then write); 2.1.332 by temp + rename.
  for (const style of ['in-place', 'rename']) {
    // addon (and baseline): the entry was already gone when the callback ran
    const removedFirst = { addon: 0, baseline: 0 };
    const subjects = [];
    for (const kind of PROPAGATION_KINDS) {
      subjects.push(await propagationSubject(style, kind, (k) => removedFirst[k]++));
    }
    await sleep(100);
    const t0Start = Date.now();
    for (let block = 0; block * BLOCK < TRIALS; block++) {
      for (const subject of subjects) {
        for (let i = block * BLOCK; i < Math.min(TRIALS, (block + 1) * BLOCK); i++) {
          const server = `t${i % 3}`;
          const cbP = new Promise((resolve) => {
            subject.pending = { server, cb: resolve };
          });
          const sentP = new Promise((resolve) => subject.child.once('message', resolve));
          subject.child.send({ i, server, style, entry: true, replyAfterMs: REPLY_AFTER });
          const timeout = sentP.then(() => sleep(TIMEOUT)).then(() => null);
          const [sent, tCb] = await Promise.all([sentP, Promise.race([cbP, timeout])]);
          subject.pending = null;
          if (tCb == null) subject.missed++;
          else {
            subject.lat.push(tCb - sent.t0);
            subject.afterWriter.push(tCb - sent.t1);
          }
          await sleep(SPACING);
        }
      }
    }
    const seconds = (Date.now() - t0Start) / 1000;
    res[style] = {};
    for (const { kind, watcher, child, lat, afterWriter, missed } of subjects) {
      watcher.close();
      child.send('exit');
      await new Promise((r) => child.once('exit', r));
      res[style][kind] = {
        ...stats(lat),
        // When the callback ran relative to the writer's return from its save (negative: before it).
        afterWriter: stats(afterWriter).median,
        missed,
        trials: TRIALS,
        seconds,
      };
      if (kind in removedFirst) res[style][kind].removedFirst = removedFirst[kind];
      log(
        `   ${style} ${kind}: median ${res[style][kind].median.toFixed(2)} ms p99 ${res[style][kind].p99.toFixed(2)} ms missed ${missed}`,
      );
    }
  }
  return res;
}

// ---- 4. contention -----------------------------------------------------------------------------

async function contention(kind, n, changes) {
  const dir = freshDir(`cont-${kind}-${n}`);
  const workers = [];
  for (let k = 0; k < n; k++) workers.push(forkWorker(['contend', kind, dir, String(k), String(changes)]));
  await Promise.all(workers.map((w) => w.ready));
  const results = workers.map((w) => new Promise((resolve) => w.child.once('message', resolve)));
  const exits = workers.map((w) => new Promise((resolve) => w.child.once('exit', resolve)));
  const t0 = nowHr();
  for (const w of workers) w.child.send('go');
  const done = await Promise.all(results);
  const wall = (Math.max(...done.map((d) => d.t1)) - t0) / 1000;
  for (const w of workers) w.child.disconnect();
  await Promise.all(exits);
  // The final state: every process's last change to each of its 10 servers must be there.
  let doc = {};
  let finalCorrupt = false;
  try {
    doc = JSON.parse(fs.readFileSync(path.join(dir, CACHE), 'utf8'));
  } catch {
    finalCorrupt = true;
  }
  let lost = 0;
  for (let k = 0; k < n; k++) {
    for (let j = 0; j < Math.min(10, changes); j++) {
      let last = -1;
      for (let i = 0; i < changes; i++) if (i % 10 === j) last = i;
      const e = doc[`p${k}-${j}`];
      if (!e || e.id !== String(last)) lost++;
    }
  }
  return {
    n,
    changes,
    wall,
    throughput: (n * changes) / wall,
    lostFinal: lost,
    finalKeys: n * Math.min(10, changes),
    lostSeen: done.reduce((a, d) => a + d.lostSeen, 0),
    tornReads: done.reduce((a, d) => a + d.tornReads, 0),
    errors: done.reduce((a, d) => a + d.errors, 0),
    firstError: done.map((d) => d.firstError).find(Boolean) || null,
    finalCorrupt,
  };
}

async function benchContention() {
  log('4. contention');
  const Ns = QUICK ? [1, 4] : [1, 2, 4, 8, 16, 32];
  const changes = QUICK ? 100 : 500;
  const REPS = QUICK ? 1 : 3;
  const res = { changes, reps: REPS, rows: [] };
  // Each configuration runs REPS times: the median throughput is reported, losses are summed.
  const repeated = async (kind, n) => {
    const runs = [];
    for (let r = 0; r < REPS; r++) runs.push(await contention(kind, n, changes));
    const sum = (k) => runs.reduce((a, x) => a + x[k], 0);
    const tp = runs.map((x) => x.throughput).sort((a, b) => a - b);
    return {
      ...runs[0],
      throughput: tp[Math.floor(tp.length / 2)],
      throughputs: tp,
      lostFinal: sum('lostFinal'),
      finalKeys: sum('finalKeys'),
      lostSeen: sum('lostSeen'),
      tornReads: sum('tornReads'),
      errors: sum('errors'),
      finalCorrupt: runs.some((x) => x.finalCorrupt),
    };
  };
  for (const n of Ns) {
    const a = await repeated('addon', n);
    const j = await repeated('j1', n);
    log(
      `   N=${n}: addon ${a.throughput.toFixed(0)}/s lost ${a.lostFinal}; j1 ${j.throughput.toFixed(0)}/s lost ${j.lostFinal} seen ${j.lostSeen}`,
    );
    res.rows.push({ n, addon: a, j1: j });
  }
  return res;
}

// ---- 5. growth ---------------------------------------------------------------------------------

async function benchGrowth() {
  log('5. growth');
  const sizes = [1, 10, 100, 1000, 10000];
  const dirs = new Map(sizes.map((n) => [n, freshDir(`grow-${n}`)]));
  for (const [n, dir] of dirs) writeCache(dir, n);
  // The checks of every size are timed in turns, so that noise falls on all sizes alike.
  const checks = timeRowsInTurns(
    QUICK ? 20 : 100,
    100,
    1,
    Object.fromEntries(sizes.map((n) => [n, () => addon.isNeedsAuthCached('s0', { configDir: dirs.get(n) })])),
  );
  const rows = [];
  for (const n of sizes) {
    const dir = dirs.get(n);
    const file = path.join(dir, CACHE);
    const opts = { configDir: dir };
    const check = checks[n].batch;
    const j1 = timeBatches(QUICK ? 5 : 20, n >= 10000 ? 5 : 50, () => j1Cached(file, 's0'));
    const listN = Math.max(10, Math.min(QUICK ? 100 : 1000, Math.floor(200000 / n)));
    const list = timeEach(listN, () => addon.listNeedsAuth(opts));
    const markN = QUICK ? 10 : n >= 10000 ? 40 : 100;
    const mark = timeEach(markN, () => addon.markNeedsAuth('s0', opts));
    const j2N = QUICK ? 10 : n >= 10000 ? 40 : 100;
    const j2 = await timeEachAsync(j2N, () =>
      j2Change(file, (d) => {
        d.s0 = { timestamp: Date.now() };
      }),
    );
    const bytes = fs.statSync(file).size;
    rows.push({ n, bytes, check, j1, list, mark, j2 });
  }
  const subs = [];
  for (const k of [1, 10, 100, 1000]) {
    const dir = freshDir(`subs-${k}`);
    const opts = { configDir: dir, watch: false };
    let count = 0;
    let target = Infinity;
    let done = null;
    const cb = () => {
      if (++count === target && done) done(nowHr());
    };
    const list = [];
    for (let i = 0; i < k; i++) list.push(addon.onAuthChanged(cb, opts));
    const trials = QUICK ? 10 : 60;
    const lat = [];
    for (let t = 0; t < trials + 5; t++) {
      count = 0;
      target = k;
      const p = new Promise((r) => {
        done = r;
      });
      const t0 = nowHr();
      addon.invalidateNeedsAuth('nobody', { configDir: dir });
      const t1 = await Promise.race([p, sleep(5000).then(() => NaN)]);
      if (t >= 5) lat.push((t1 - t0) * 1000);
    }
    for (const s of list) s.close();
    subs.push({ k, ...stats(lat) });
  }
  return { rows, subs };
}

// ---- 9. bulk ------------------------------------------------------------------------------------

/** Removes `pick(doc)` from the file, as plain JS would: read, parse, delete, write. */
function j1Remove(file, pick) {
  const doc = j1Read(file);
  const gone = pick(doc);
  for (const n of gone) delete doc[n];
  fs.writeFileSync(file, JSON.stringify(doc));
  return gone;
}
function j2RemoveSync(file, pick) {
  let gone;
  j2ChangeSync(file, (doc) => {
    gone = pick(doc);
    for (const n of gone) delete doc[n];
  });
  return gone;
}

async function benchBulk() {
  log('9. bulk');
  const n = QUICK ? 2700 : 27000;
  const trials = QUICK ? 3 : 9;
  const dir = freshDir('bulk');
  const file = path.join(dir, CACHE);
  // Short names, as in the measurement: 27,000 entries in under 1 MiB.
  const names = Array.from({ length: n }, (_, i) => `s${i}`);
  // An hour old: expired by the 15 min TTL, so purgeStale removes every entry.
  const ts = Date.now() - 3600000;
  const doc = Object.fromEntries(names.map((s) => [s, { timestamp: ts }]));
  const bytes = JSON.stringify(doc);
  const opts = { configDir: dir };
  const expired = (d) => Object.keys(d).filter((k) => Date.now() - d[k].timestamp >= 900000);
  const ops = {
    all: {
      addon: () => addon.invalidateNeedsAuth(undefined, opts),
      j1: () => j1Remove(file, (d) => Object.keys(d)),
      j2: () => j2RemoveSync(file, (d) => Object.keys(d)),
    },
    list: {
      addon: () => addon.invalidateNeedsAuth(names, opts),
      j1: () => j1Remove(file, (d) => names.filter((k) => Object.hasOwn(d, k))),
      j2: () => j2RemoveSync(file, (d) => names.filter((k) => Object.hasOwn(d, k))),
    },
    purge: {
      addon: () => addon.purgeStale({ ...opts, credentials: 'none' }),
      j1: () => j1Remove(file, expired),
      j2: () => j2RemoveSync(file, expired),
    },
  };
  const samples = Object.fromEntries(Object.keys(ops).map((op) => [op, { addon: [], j1: [], j2: [] }]));
  // In turns, each run on a fresh copy of the full file, so that noise falls on all alike.
  for (let t = 0; t < trials; t++) {
    for (const [op, ways] of Object.entries(ops)) {
      for (const [way, fn] of Object.entries(ways)) {
        fs.writeFileSync(file, bytes);
        const t0 = process.hrtime.bigint();
        const removed = fn();
        samples[op][way].push(Number(process.hrtime.bigint() - t0) / 1e3);
        const count = Array.isArray(removed) ? removed.length : 0;
        if (count !== n) throw new Error(`bulk ${op} ${way} removed ${count} of ${n}`);
        if (fs.readFileSync(file, 'utf8') !== '{}') throw new Error(`bulk ${op} ${way} left entries`);
      }
    }
  }
  const rows = Object.fromEntries(
    Object.entries(samples).map(([op, ways]) => [
      op,
      Object.fromEntries(Object.entries(ways).map(([w, v]) => [w, stats(v)])),
    ]),
  );
  return { n, bytes: Buffer.byteLength(bytes), trials, rows };
}

// ---- 6. idle -----------------------------------------------------------------------------------

async function benchIdle() {
  log('6. idle');
  const seconds = QUICK ? 2 : 10;
  const variants = ['none', 'addon', 'fswatch', 'chokidar'];
  const runs = variants.map((v) => {
    const dir = freshDir(`idle-${v}`);
    writeFreshToken(dir, 'idle', 'https://idle.example.test/mcp', { token: 'idle-token' });
    writeCache(dir, 3);
    const child = fork(WORKER, ['idle', v, dir, String(seconds)], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
    return new Promise((resolve, reject) => {
      child.once('message', (m) => {
        child.disconnect();
        resolve(m);
      });
      child.once('exit', (code) => code && reject(new Error(`idle ${v} exited ${code}`)));
    });
  });
  const out = {};
  for (const r of await Promise.all(runs)) out[r.variant] = r;
  return out;
}

// ---- 7. memory ---------------------------------------------------------------------------------

async function benchMemory() {
  log('7. memory');
  const REPS = QUICK ? 1 : 5;
  const out = { reps: REPS, rows: [] };
  for (const count of [1, 1000]) {
    for (const variant of ['addon', 'fswatch']) {
      const runs = [];
      for (let r = 0; r < REPS; r++) {
        const dir = freshDir(`mem-${variant}-${count}`);
        writeFreshToken(dir, 'mem', 'https://mem.example.test/mcp', { token: 'mem-token' });
        writeCache(dir, 3);
        const child = fork(WORKER, ['memory', variant, dir, String(count)], {
          execArgv: ['--expose-gc'],
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        });
        runs.push(
          await new Promise((resolve, reject) => {
            child.once('message', (m) => {
              child.disconnect();
              resolve(m);
            });
            child.once('exit', (code) => code && reject(new Error(`memory ${variant} ${count} exited ${code}`)));
          }),
        );
      }
      const med = (k) => runs.map((x) => x[k]).sort((a, b) => a - b)[Math.floor(runs.length / 2)];
      out.rows.push({ variant, count, rss: med('rss'), heap: med('heap') });
      log(
        `   ${variant} x${count}: RSS +${(med('rss') / 1024).toFixed(0)} KiB, heap +${(med('heap') / 1024).toFixed(0)} KiB`,
      );
    }
  }
  return out;
}

// ---- results -----------------------------------------------------------------------------------

function machine() {
  const cpus = os.cpus();
  return {
    cpu: cpus[0] ? cpus[0].model : 'unknown',
    cores: cpus.length,
    mem: `${(os.totalmem() / 2 ** 30).toFixed(1)} GiB`,
    node: process.version,
    os: `${os.type()} ${os.release()} (${os.arch()})`,
    fs: (() => {
      try {
        const mounts = fs
          .readFileSync('/proc/mounts', 'utf8')
          .split('\n')
          .map((l) => l.split(' '));
        const tmp = os.tmpdir();
        let best = null;
        for (const m of mounts) if (m[1] && tmp.startsWith(m[1]) && (!best || m[1].length > best[1].length)) best = m;
        return best ? `${best[2]} on ${best[1]} (${best[0]})` : 'unknown';
      } catch {
        return 'unknown';
      }
    })(),
    addon: require(path.join(ROOT, 'package.json')).version,
    // The A/B build's label: BENCH_BASELINE_LABEL, else its file name.
    baseline: baseline && (process.env.BENCH_BASELINE_LABEL || path.basename(process.env.BENCH_BASELINE)),
    deps: ['proper-lockfile', 'write-file-atomic', 'chokidar']
      .map((d) => `${d} ${require(path.join(ROOT, 'node_modules', d, 'package.json')).version}`)
      .join(', '),
  };
}

async function main() {
  const started = Date.now();
  const results = { date: new Date().toISOString(), quick: QUICK, machine: machine(), load: [] };
  try {
    // `node bench/run.js check memory` (or BENCH_ONLY=check,memory) runs those sections only and
    // prints their results as JSON instead of writing BENCHMARKS.md. With `--merge` first, they
    // replace those sections of bench/results.json (which then says so) and BENCHMARKS.md is
    // rendered again: for a section whose code changed after the full run.
    const args = process.argv.slice(2);
    const merge = args[0] === '--merge';
    const named = args
      .slice(merge ? 1 : 0)
      .flatMap((a) => a.split(','))
      .filter(Boolean);
    if (merge && !named.length) throw new Error('--merge needs the sections to run');
    const only = named.length ? named : process.env.BENCH_ONLY ? process.env.BENCH_ONLY.split(',') : null;
    const known = ['check', 'change', 'propagation', 'contention', 'growth', 'idle', 'memory', 'e2e', 'bulk', 'remote'];
    const unknown = (only || []).filter((s) => !known.includes(s));
    if (unknown.length) throw new Error(`unknown section ${unknown.join(', ')}; sections: ${known.join(', ')}`);
    const want = (s) => {
      if (only && !only.includes(s)) return false;
      results.load.push(`${s} ${os.loadavg()[0].toFixed(2)}`);
      return true;
    };
    if (want('check')) results.check = await benchCheck();
    if (want('change')) results.change = await benchChange();
    if (want('propagation')) results.propagation = await benchPropagation();
    if (want('contention')) results.contention = await benchContention();
    if (want('growth')) results.growth = await benchGrowth();
    if (want('idle')) results.idle = await benchIdle();
    if (want('memory')) results.memory = await benchMemory();
    if (want('e2e')) results.e2e = await benchE2e({ quick: QUICK, log, stats });
    if (want('bulk')) results.bulk = await benchBulk();
    if (want('remote')) {
      results.remote = await benchRemote({
        quick: QUICK,
        log,
        stats,
        timeRowsInTurns,
        j1Cached,
        freshDir,
        writeCache,
        writeFreshToken,
      });
    }
    if (only && merge) return mergeSections(results, only, started);
    if (only) {
      console.log(JSON.stringify(results, null, 1));
      return;
    }
  } finally {
    fs.rmSync(TMP, { recursive: true, force: true });
  }
  results.totalSeconds = (Date.now() - started) / 1000;
  const json = process.env.BENCH_RESULTS || RESULTS;
  fs.writeFileSync(json, `${JSON.stringify(results, null, 1)}\n`);
  log(`wrote ${json} in ${results.totalSeconds.toFixed(0)} s`);
  const out = process.env.BENCH_OUT || path.join(ROOT, 'BENCHMARKS.md');
  fs.writeFileSync(out, `${report(results)}\n`);
  log(`rendered ${out}`);
}

/** Puts the sections just run into the full run's results, noting when and under what load. */
function mergeSections(results, sections, started) {
  const json = process.env.BENCH_RESULTS || RESULTS;
  const full = JSON.parse(fs.readFileSync(json, 'utf8'));
  full.rerun = (full.rerun || []).filter((r) => !sections.includes(r.section));
  for (const section of sections) {
    full[section] = results[section];
    const load = results.load.find((l) => l.startsWith(`${section} `))?.split(' ')[1];
    full.rerun.push({ section, date: results.date, load, seconds: (Date.now() - started) / 1000 });
  }
  fs.writeFileSync(json, `${JSON.stringify(full, null, 1)}\n`);
  const out = process.env.BENCH_OUT || path.join(ROOT, 'BENCHMARKS.md');
  fs.writeFileSync(out, `${report(full)}\n`);
  log(`merged ${sections.join(', ')} into ${json}; rendered ${out}`);
}

main().catch((e) => {
  console.error(e);
  process.exitCode = 1;
});
