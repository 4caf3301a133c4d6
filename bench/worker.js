'use strict';
// Child-process roles for bench/run.js. Usage: node bench/worker.js <role> [args...]
// Every role talks to the parent over the IPC channel (fork()).
//
//   cred-writer <configDir>          on {i, server, style, entry}: with `entry`, first write the
//                                    server's needs-auth entry as Claude Code does; then save a new
//                                    token in .credentials.json, in place (2.1.108's way) or by
//                                    temp + rename (2.1.332's), and reply {i, t0, t1} (t0 taken
//                                    just before the credentials write, t1 after) `replyAfterMs`
//                                    later
//   contend <addon|j1> <configDir> <k> <changes>
//                                    on 'go': <changes> changes on its own servers p<k>-0..9
//   idle <none|addon|fswatch|chokidar> <configDir> <seconds>
//                                    idle with (or without) a subscription; reports CPU, wake-ups,
//                                    RSS and threads
//   memory <addon|fswatch> <configDir> <count>
//                                    (run with --expose-gc) makes <count> subscriptions to one
//                                    config dir; reports RSS and heap before and after

const fs = require('node:fs');
const path = require('node:path');
const { performance } = require('node:perf_hooks');
const { changeCacheLikeClaudeCode } = require('../support/claude-code-cache.js');

const ROOT = path.resolve(__dirname, '..');
const CACHE = 'mcp-needs-auth-cache.json';
const nowHr = () => performance.timeOrigin + performance.now();

const [role, ...args] = process.argv.slice(2);

function credWriter(configDir) {
  const { writeFreshToken } = require(path.join(ROOT, 'support', 'credentials.js'));
  const sleepSync = (ms) => Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, ms);
  process.on('message', (m) => {
    if (m === 'exit') return process.exit(0);
    if (m.entry) {
      // The 401 this sign-in answers: Claude Code's needs-auth entry for the server, written its
      // way, a moment before the sign-in (so autoInvalidate has an entry to remove, durably).
      changeCacheLikeClaudeCode(path.join(configDir, CACHE), (doc) => {
        doc[m.server] = { timestamp: Date.now() };
      });
      sleepSync(15);
    }
    const t0 = nowHr();
    writeFreshToken(configDir, m.server, `https://${m.server}.example.test/mcp`, {
      token: `bench-access-${m.i}-${Math.random().toString(36).slice(2)}`,
      style: m.style || 'in-place',
    });
    const t1 = nowHr();
    // The reply waits until every watcher has had its chance: handled on the parent's JS thread
    // meanwhile, it would delay whichever callback comes after it, as no real sign-in does.
    setTimeout(() => process.send({ i: m.i, t0, t1 }), m.replyAfterMs || 0);
  });
  process.send('ready');
}

function contend(kind, configDir, k, changes) {
  const file = path.join(configDir, CACHE);
  let change;
  let lostSeen = 0; // J1 only: the writer's own previous change was gone when it re-read
  let tornReads = 0; // J1 only: a read that did not parse (half-written by another process)
  if (kind === 'addon') {
    const { markNeedsAuth } = require(ROOT);
    const opts = { configDir, id: '' };
    change = (server, i) => {
      opts.id = String(i);
      markNeedsAuth(server, opts);
    };
  } else {
    change = (server, i) => {
      const torn = changeCacheLikeClaudeCode(file, (doc) => {
        if (i > 0) {
          const prev = doc[`p${k}-${(i - 1) % 10}`];
          if (!prev || prev.id !== String(i - 1)) lostSeen++;
        }
        doc[server] = { timestamp: Date.now(), id: String(i) };
      });
      if (torn) tornReads++;
    };
  }
  process.on('message', (m) => {
    if (m !== 'go') return;
    const t0 = nowHr();
    let errors = 0;
    let firstError = null;
    for (let i = 0; i < changes; i++) {
      try {
        change(`p${k}-${i % 10}`, i);
      } catch (e) {
        errors++;
        firstError = firstError || `${e.code || ''} ${e.message}`;
      }
    }
    process.send({ done: true, t0, t1: nowHr(), lostSeen, tornReads, errors, firstError });
  });
  process.send('ready');
}

function tasks() {
  const out = {};
  for (const tid of fs.readdirSync('/proc/self/task')) {
    try {
      const status = fs.readFileSync(`/proc/self/task/${tid}/status`, 'utf8');
      const get = (key) => Number((status.match(new RegExp(`^${key}:\\s+(\\d+)`, 'm')) || [])[1] || 0);
      const comm = fs.readFileSync(`/proc/self/task/${tid}/comm`, 'utf8').trim();
      out[tid] = { comm, vol: get('voluntary_ctxt_switches'), nonvol: get('nonvoluntary_ctxt_switches') };
    } catch {
      // the thread ended between readdir and read
    }
  }
  return out;
}

function snapshot() {
  return { cpu: process.cpuUsage(), rss: process.memoryUsage.rss(), tasks: tasks(), t: nowHr() };
}

async function idle(variant, configDir, seconds) {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const addon = require(ROOT);
  // Same warm-up in every variant: the addon loaded and the cache read once.
  addon.isNeedsAuthCached('x', { configDir });
  let chokidar;
  if (variant === 'chokidar') chokidar = require('chokidar');
  await sleep(300);
  const before = snapshot();
  let stop = () => {};
  if (variant === 'addon') {
    const sub = addon.onAuthChanged(() => {}, { configDir, credentials: 'file' });
    stop = () => sub.close();
  } else if (variant === 'fswatch') {
    const w = fs.watch(configDir, () => {});
    stop = () => w.close();
  } else if (variant === 'chokidar') {
    const w = chokidar.watch([path.join(configDir, CACHE), path.join(configDir, '.credentials.json')], {
      ignoreInitial: true,
    });
    await new Promise((r) => w.once('ready', r));
    stop = () => w.close();
  }
  await sleep(1000); // let start-up activity settle
  const start = snapshot();
  await sleep(seconds * 1000);
  const end = snapshot();
  stop();
  const diffTasks = {};
  for (const [tid, e] of Object.entries(end.tasks)) {
    const s = start.tasks[tid] || { vol: 0, nonvol: 0 };
    diffTasks[tid] = {
      comm: e.comm,
      wakeups: e.vol - s.vol + (e.nonvol - s.nonvol),
      vol: e.vol - s.vol,
      nonvol: e.nonvol - s.nonvol,
      isNew: !before.tasks[tid],
    };
  }
  process.send({
    variant,
    seconds: (end.t - start.t) / 1000,
    cpuUserUs: end.cpu.user - start.cpu.user,
    cpuSystemUs: end.cpu.system - start.cpu.system,
    rssAdded: start.rss - before.rss,
    threadsBefore: Object.keys(before.tasks).length,
    threadsAfter: Object.keys(start.tasks).length,
    newThreads: Object.entries(start.tasks)
      .filter(([tid]) => !before.tasks[tid])
      .map(([, t]) => t.comm),
    tasks: diffTasks,
  });
}

async function memory(variant, configDir, count) {
  const sleep = (ms) => new Promise((r) => setTimeout(r, ms));
  const addon = require(ROOT);
  // Same warm-up in every variant: the addon loaded and the cache read once.
  addon.isNeedsAuthCached('x', { configDir });
  const measure = async () => {
    await sleep(300);
    global.gc();
    const m = process.memoryUsage();
    return { rss: m.rss, heap: m.heapUsed + m.external };
  };
  const before = await measure();
  const subs = [];
  const cb = () => {};
  for (let i = 0; i < count; i++) {
    if (variant === 'addon') subs.push(addon.onAuthChanged(cb, { configDir, credentials: 'file' }));
    else subs.push(fs.watch(configDir, cb));
  }
  const after = await measure();
  for (const s of subs) s.close();
  process.send({ variant, count, rss: after.rss - before.rss, heap: after.heap - before.heap });
}

if (role === 'cred-writer') credWriter(args[0]);
else if (role === 'contend') contend(args[0], args[1], Number(args[2]), Number(args[3]));
else if (role === 'idle') idle(args[0], args[1], Number(args[2]));
else if (role === 'memory') memory(args[0], args[1], Number(args[2]));
else {
  console.error(`unknown role ${role}`);
  process.exit(2);
}
