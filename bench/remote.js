'use strict';
// Section `remote` of bench/run.js (issue 19): a config dir on a real FUSE filesystem (bindfs),
// written behind the mount as another machine writes a share. Linux and root only: elsewhere the
// section reports why it did not run.
//
//   check:       isNeedsAuthCached through the mount (it reads the file on every call there)
//                against J1 (readFileSync + JSON.parse) on the same path;
//   propagation: a credentials save behind the mount, to the callback of a poll-mode
//                onAuthChanged, against chokidar with usePolling at the same interval;
//   idle:        CPU (utime + stime) of a process with one poll-mode subscription, per minute.
//
// Also a child role: node bench/remote.js idle <none|addon|chokidar> <configDir> <seconds> <ms>

const fs = require('node:fs');
const path = require('node:path');
const { fork, spawnSync, execFileSync } = require('node:child_process');
const { performance } = require('node:perf_hooks');

const ROOT = path.resolve(__dirname, '..');
const CACHE = 'mcp-needs-auth-cache.json';
const WORKER = path.join(__dirname, 'worker.js');
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function unavailable() {
  if (process.platform !== 'linux') return 'Linux only';
  if (process.getuid() !== 0) return 'needs root';
  if (spawnSync('sh', ['-c', 'command -v bindfs'], { timeout: 5000 }).status !== 0) return 'bindfs is not installed';
  return null;
}

/** `bindfs back mnt` in `root`; returns {back, mnt, unmount}. */
function mount(root, label) {
  const back = path.join(root, `${label}-back`);
  const mnt = path.join(root, `${label}-mnt`);
  fs.mkdirSync(back, { recursive: true });
  fs.mkdirSync(mnt, { recursive: true });
  execFileSync('bindfs', [back, mnt], { timeout: 10_000 });
  const unmount = () => {
    if (spawnSync('fusermount', ['-u', mnt], { timeout: 10_000 }).status !== 0) {
      spawnSync('umount', ['-l', mnt], { timeout: 10_000 });
    }
  };
  return { back, mnt, unmount };
}

function cpuMs() {
  // utime and stime, fields 14 and 15 of /proc/self/stat (after the parenthesised name), in ticks.
  const stat = fs.readFileSync('/proc/self/stat', 'utf8');
  const f = stat.slice(stat.lastIndexOf(')') + 2).split(' ');
  return ((Number(f[11]) + Number(f[12])) * 1000) / 100;
}

/** Child role: idle with one subscription (or none) for `seconds`; reports CPU ms. */
async function idleChild(variant, configDir, seconds, intervalMs) {
  const addon = require(ROOT);
  addon.isNeedsAuthCached('x', { configDir });
  let chokidar;
  if (variant === 'chokidar') chokidar = require('chokidar');
  await sleep(500);
  let stop = () => {};
  if (variant === 'addon') {
    const sub = addon.onAuthChanged(() => {}, { configDir, credentials: 'file', pollIntervalMs: intervalMs });
    stop = () => sub.close();
  } else if (variant === 'chokidar') {
    const w = chokidar.watch([path.join(configDir, '.credentials.json'), path.join(configDir, CACHE)], {
      ignoreInitial: true,
      usePolling: true,
      interval: intervalMs,
    });
    await new Promise((r) => w.once('ready', r));
    stop = () => w.close();
  }
  const before = cpuMs();
  await sleep(seconds * 1000);
  const used = cpuMs() - before;
  stop();
  process.send({ variant, intervalMs, seconds, cpuMsPerMinute: (used * 60) / seconds });
}

async function benchRemote({ quick, log, stats, timeRowsInTurns, j1Cached, freshDir, writeCache, writeFreshToken }) {
  log('9. remote (FUSE)');
  const why = unavailable();
  if (why) return { skipped: why };
  const root = freshDir('remote');
  const mounts = [];
  const res = {};
  try {
    // ---- check: through the mount, vs J1 on the same path
    {
      const m = mount(root, 'check');
      mounts.push(m);
      writeCache(m.back, 5);
      const file = path.join(m.mnt, CACHE);
      const opts = { configDir: m.mnt };
      const d = require(ROOT).diagnose('s1', opts);
      res.filesystem = `${d.watch.mode} (${d.watch.filesystem})`;
      const addon = require(ROOT);
      for (let i = 0; i < 500; i++) {
        addon.isNeedsAuthCached('s1', opts);
        j1Cached(file, 's1');
      }
      const rows = timeRowsInTurns(quick ? 20 : 100, 50, quick ? 500 : 3000, {
        addon: () => addon.isNeedsAuthCached('s1', opts),
        j1sync: () => j1Cached(file, 's1'),
      });
      res.check = rows;
      log(
        `   check on fuse: addon ${rows.addon.batch.median.toFixed(1)} µs, J1 ${rows.j1sync.batch.median.toFixed(1)} µs`,
      );
    }
    // ---- propagation in poll mode, vs chokidar usePolling at the same interval
    {
      const INTERVAL = 300;
      const TRIALS = quick ? 8 : 40;
      const TIMEOUT = 4 * INTERVAL + 2000;
      const subjects = [];
      for (const kind of ['addon', 'chokidar']) {
        const m = mount(root, `prop-${kind}`);
        mounts.push(m);
        for (let s = 0; s < 3; s++)
          writeFreshToken(m.back, `t${s}`, `https://t${s}.example.test/mcp`, { token: `seed-${s}` });
        const child = fork(WORKER, ['cred-writer', m.back], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
        await new Promise((resolve) => child.once('message', resolve));
        const subject = { kind, child, pending: null, lat: [], missed: 0 };
        const hit = (servers) => {
          if (subject.pending && servers.includes(subject.pending.server))
            subject.pending.cb(performance.timeOrigin + performance.now());
        };
        if (kind === 'addon') {
          const sub = require(ROOT).onAuthChanged((ev) => ev.reason === 'credentials-changed' && hit(ev.servers), {
            configDir: m.mnt,
            credentials: 'file',
            pollIntervalMs: INTERVAL,
          });
          subject.close = () => sub.close();
        } else {
          const credPath = path.join(m.mnt, '.credentials.json');
          const tokens = () => {
            try {
              const doc = JSON.parse(fs.readFileSync(credPath, 'utf8'));
              return Object.fromEntries(Object.values(doc.mcpOAuth || {}).map((e) => [e.serverName, e.accessToken]));
            } catch {
              return null;
            }
          };
          let last = tokens() || {};
          const w = require('chokidar').watch(credPath, { ignoreInitial: true, usePolling: true, interval: INTERVAL });
          w.on('change', () => {
            const now = tokens();
            if (!now) return;
            const changed = Object.keys(now).filter((s) => now[s] !== last[s]);
            last = now;
            if (changed.length) hit(changed);
          });
          await new Promise((r) => w.once('ready', r));
          subject.close = () => w.close();
        }
        subjects.push(subject);
      }
      await sleep(500);
      // In turns, so that a noisy stretch falls on both alike.
      for (let i = 0; i < TRIALS; i++) {
        for (const subject of subjects) {
          const server = `t${i % 3}`;
          const cbP = new Promise((resolve) => {
            subject.pending = { server, cb: resolve };
          });
          const sentP = new Promise((resolve) => subject.child.once('message', resolve));
          subject.child.send({ i, server, style: i % 2 ? 'rename' : 'in-place' });
          const sent = await sentP;
          const tCb = await Promise.race([cbP, sleep(TIMEOUT).then(() => null)]);
          subject.pending = null;
          if (tCb == null) subject.missed++;
          else subject.lat.push(tCb - sent.t0);
          // Off the poll's phase, so that every offset into the interval is sampled.
          await sleep(50 + ((i * 97) % INTERVAL));
        }
      }
      res.propagation = { intervalMs: INTERVAL, trials: TRIALS };
      for (const s of subjects) {
        s.close();
        s.child.send('exit');
        await new Promise((r) => s.child.once('exit', r));
        res.propagation[s.kind] = { ...stats(s.lat), missed: s.missed };
        log(
          `   poll propagation ${s.kind}: median ${res.propagation[s.kind].median.toFixed(0)} ms p99 ${res.propagation[s.kind].p99.toFixed(0)} ms missed ${s.missed}`,
        );
      }
    }
    // ---- idle CPU of one poll-mode subscription, per minute
    {
      const m = mount(root, 'idle');
      mounts.push(m);
      writeFreshToken(m.back, 'idle', 'https://idle.example.test/mcp', { token: 'idle-token' });
      writeCache(m.back, 3);
      const seconds = quick ? 5 : 60;
      const variants = [
        ['none', 2000],
        ['addon', 2000],
        ['addon', 300],
        ['chokidar', 300],
      ];
      const runs = variants.map(([variant, ms]) => {
        const child = fork(__filename, ['idle', variant, m.mnt, String(seconds), String(ms)], {
          stdio: ['ignore', 'inherit', 'inherit', 'ipc'],
        });
        return new Promise((resolve, reject) => {
          child.once('message', (msg) => {
            child.disconnect();
            resolve(msg);
          });
          child.once('exit', (code) => code && reject(new Error(`idle ${variant} exited ${code}`)));
        });
      });
      res.idle = await Promise.all(runs);
      for (const r of res.idle)
        log(`   idle ${r.variant} @${r.intervalMs} ms: ${r.cpuMsPerMinute.toFixed(0)} ms CPU/min`);
    }
  } finally {
    for (const m of mounts) m.unmount();
  }
  return res;
}

if (require.main === module) {
  const [role, variant, dir, seconds, ms] = process.argv.slice(2);
  if (role === 'idle') idleChild(variant, dir, Number(seconds), Number(ms));
}

module.exports = { benchRemote };
