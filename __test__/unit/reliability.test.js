'use strict';
// Reliability suite: crash safety under SIGKILL, racing a Claude-Code-style (unlocked, in-place)
// writer, bad inputs, the credentials store never being written, and no token text in any output.
//
//   cd /work/main && node --test __test__/unit/reliability.test.js
//
// Everything runs in temp dirs passed as options.configDir / --config-dir (never the real
// ~/.claude), every child process has a timeout, and every temp dir is removed at the end.
// Timings are never asserted (the CI machine is small and noisy); only outcomes are.
// Fixtures: __test__/fixtures/rel-*.

const { describe, it, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawn, spawnSync } = require('node:child_process');

const ROOT = path.resolve(__dirname, '..', '..');
const { readableAddon } = require('../helpers/readable-addon');
const { tmp } = require('../helpers/tmp.js');
const addon = require(ROOT);
const { listNeedsAuth, isNeedsAuthCached, markNeedsAuth, invalidateNeedsAuth, purgeStale, diagnose } = addon;

const FIX = path.join(__dirname, '..', 'fixtures');
const CRED_FIXTURE = path.join(FIX, 'rel-credentials.json');
const CLI = path.join(ROOT, 'bin', 'mcp-needs-auth.js');
const FILE = 'mcp-needs-auth-cache.json';
const IS_ROOT = typeof process.getuid === 'function' && process.getuid() === 0;
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

// ---- temp dirs, the credentials fixture and its "never written" registry -----------------------

const BASE = tmp({ after }, 'mna-rel-');
fs.chmodSync(BASE, 0o755); // the uid-65534 child must be able to traverse it

/** Every .credentials.json the suite installed, with its bytes, mode and mtime at install time. */
const installedCredentials = [];
function credSnap(file) {
  const st = fs.statSync(file, { bigint: true });
  return { bytes: fs.readFileSync(file), mode: st.mode, mtimeNs: st.mtimeNs, ino: st.ino };
}
// The fixture file itself is also watched.
installedCredentials.push({ file: CRED_FIXTURE, snap: credSnap(CRED_FIXTURE) });

/** The secret strings of the fixture (and of the probe's fresh tokens): all contain RELFAKE. */
const SECRET_MARK = 'RELFAKE';
const FIXTURE_SECRETS = (() => {
  const found = [];
  const walk = (v) => {
    if (typeof v === 'string' && v.includes(SECRET_MARK)) found.push(v);
    else if (v && typeof v === 'object') Object.values(v).forEach(walk);
  };
  walk(JSON.parse(fs.readFileSync(CRED_FIXTURE, 'utf8')));
  return found;
})();

let dirSeq = 0;
/** A fresh config dir holding the credentials fixture (mode 0600), registered for the final check. */
function configDir(label, { credentials = true } = {}) {
  const dir = path.join(BASE, `${label}-${dirSeq++}`);
  fs.mkdirSync(dir, { recursive: true, mode: 0o755 });
  if (credentials) {
    const file = path.join(dir, '.credentials.json');
    fs.copyFileSync(CRED_FIXTURE, file);
    fs.chmodSync(file, 0o600);
    installedCredentials.push({ file, snap: credSnap(file) });
  }
  return dir;
}

function writeCache(dir, text, { old = true } = {}) {
  const file = path.join(dir, FILE);
  fs.writeFileSync(file, text);
  // Older than the addon's 200 ms "still being written" window, so a bad file is judged at once.
  if (old) fs.utimesSync(file, new Date(Date.now() - 5000), new Date(Date.now() - 5000));
  return file;
}

function fileSnap(file) {
  const st = fs.lstatSync(file, { bigint: true });
  return { bytes: fs.readFileSync(file), ino: st.ino, mtimeNs: st.mtimeNs, mode: st.mode };
}
function assertUntouched(file, snap, msg) {
  const now = fileSnap(file);
  assert.ok(now.bytes.equals(snap.bytes), `${msg}: bytes changed`);
  assert.equal(now.ino, snap.ino, `${msg}: file replaced`);
  assert.equal(now.mtimeNs, snap.mtimeNs, `${msg}: mtime changed`);
}

function codeOf(fn) {
  try {
    fn();
  } catch (e) {
    return e.code || `(no code: ${e.message})`;
  }
  return '(no throw)';
}

function asideFiles(dir) {
  return fs.readdirSync(dir).filter((n) => n.startsWith(`${FILE}.corrupt-`));
}

/** Runs a child with a hard timeout; resolves {code, signal, stdout, stderr}. */
function run(cmd, args, { timeout = 30000, env, ...rest } = {}) {
  return new Promise((resolve) => {
    const child = spawn(cmd, args, { env: env || process.env, ...rest, stdio: ['ignore', 'pipe', 'pipe'] });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => (stdout += d));
    child.stderr.on('data', (d) => (stderr += d));
    const timer = setTimeout(() => child.kill('SIGKILL'), timeout);
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, stdout, stderr });
    });
  });
}

// ---- 1. crash safety ---------------------------------------------------------------------------

/** Parses a writer's log: complete lines only (a kill may cut the last one). */
function readLog(file) {
  const text = fs.existsSync(file) ? fs.readFileSync(file, 'utf8') : '';
  const lines = text.split('\n');
  lines.pop(); // the part after the last newline is not a complete line
  return lines.filter(Boolean);
}

/**
 * Checks one writer incarnation's log against the final document. Returns problems (strings).
 * Ops: M n0, then for k >= 1: M n<k>, I n<k-1>; each logged after its call returned.
 */
function checkIncarnation(prefix, lines, doc) {
  const problems = [];
  const marked = new Set();
  const invalidated = new Set();
  let expectNext = `M ${prefix}-n0`;
  let k = 0;
  for (const line of lines) {
    if (line.startsWith('E ')) {
      problems.push(`${prefix}: the writer got an error: ${line}`);
      break;
    }
    const [op, name, removed] = line.split(' ');
    if (`${op} ${name}` !== expectNext) {
      problems.push(`${prefix}: log out of sequence: got "${line}", expected "${expectNext} ..."`);
      break;
    }
    if (op === 'M') {
      marked.add(name);
      expectNext = k === 0 ? `M ${prefix}-n1` : `I ${prefix}-n${k - 1}`;
      if (k === 0) k = 1;
    } else {
      invalidated.add(name);
      // The mark of <name> returned earlier; the invalidation must have found it.
      if (removed !== JSON.stringify([name]))
        problems.push(`${prefix}: invalidate ${name} returned ${removed}: its committed mark was lost`);
      k++;
      expectNext = `M ${prefix}-n${k}`;
    }
  }
  // The op in flight when the kill came may have completed without being logged.
  const inFlight = expectNext.split(' ');
  for (const name of marked) {
    if (invalidated.has(name)) continue;
    if (inFlight[0] === 'I' && inFlight[1] === name) continue;
    if (!Object.hasOwn(doc, name)) problems.push(`${prefix}: committed mark ${name} is missing`);
  }
  for (const name of invalidated) {
    if (Object.hasOwn(doc, name)) problems.push(`${prefix}: committed invalidation of ${name} was undone`);
  }
  for (const name of Object.keys(doc)) {
    if (!name.startsWith(`${prefix}-`)) continue;
    if (!marked.has(name) && !(inFlight[0] === 'M' && inFlight[1] === name))
      problems.push(`${prefix}: entry ${name} was never marked`);
  }
  return { problems, ops: lines.length };
}

let crashDir = null; // the crash test's config dir, for the temp-file check after it

describe('crash safety: writers SIGKILLed at random points', () => {
  const SLOTS = 4;
  const KILLS = 200;

  it(`${KILLS} kills across ${SLOTS} concurrent writers: the file is always valid JSON and every returned change holds`, {
    timeout: 120000,
  }, async (t) => {
    const dir = configDir('crash');
    crashDir = dir;
    const file = path.join(dir, FILE);
    const logs = path.join(BASE, `crash-logs-${dirSeq++}`);
    fs.mkdirSync(logs);
    // A few entries another tool wrote before: they must survive everything.
    const base = {
      'claude.ai Figma': { timestamp: 1795668795083, ttlMs: 14400000, id: 'mcpsrv_01', lapsedCcrSignInKey: 'k' },
      n: 5,
    };
    writeCache(dir, JSON.stringify(base));
    const incarnations = [];
    const badReads = [];
    let kills = 0;
    let killsDuringWork = 0;

    async function slot(s, count) {
      for (let g = 0; g < count; g++) {
        const prefix = `w${s}g${g}`;
        const logFile = path.join(logs, `${prefix}.log`);
        const child = spawn(process.execPath, [path.join(FIX, 'rel-writer.js'), dir, prefix, logFile], {
          stdio: ['ignore', 'pipe', 'pipe'],
        });
        let stderr = '';
        child.stderr.on('data', (d) => (stderr += d));
        const exited = new Promise((r) => child.on('close', (code, signal) => r({ code, signal })));
        const ready = await Promise.race([
          new Promise((r) => child.stdout.once('data', () => r(true))),
          exited.then(() => false),
          sleep(15000).then(() => false),
        ]);
        // Kill somewhere in the first ~30 ms of work (each change takes well under 1 ms to a few
        // ms). Every other writer is first seen to finish a change (its log grew), so that on a
        // loaded machine, where a writer can take longer than that to start, at least half of the
        // kills still land while writers work.
        if (ready && g % 2 === 1) {
          const until = Date.now() + 10000;
          while (readLog(logFile).length === 0 && Date.now() < until) await sleep(1);
          await sleep(Math.floor(Math.random() * 10));
        } else if (ready) await sleep(Math.floor(Math.random() * 30));
        child.kill('SIGKILL');
        const { code, signal } = await exited;
        kills++;
        incarnations.push({ prefix, logFile, code, signal, stderr });
        if (readLog(logFile).length > 0) killsDuringWork++;
        // The file is valid JSON after every kill, whoever was writing.
        if (fs.existsSync(file)) {
          const text = fs.readFileSync(file, 'utf8');
          try {
            const doc = JSON.parse(text);
            if (!doc || typeof doc !== 'object' || Array.isArray(doc))
              badReads.push(`root is not an object: ${text.slice(0, 80)}`);
          } catch (e) {
            badReads.push(`${e.message}: ${text.slice(0, 80)}`);
          }
        }
      }
    }
    await Promise.all(Array.from({ length: SLOTS }, (_, s) => slot(s, KILLS / SLOTS)));

    assert.equal(kills, KILLS);
    assert.deepEqual(badReads, [], 'the cache file was not valid JSON after a kill');
    for (const inc of incarnations) {
      assert.equal(inc.signal, 'SIGKILL', `${inc.prefix} was not killed (exit ${inc.code}): ${inc.stderr}`);
    }
    const doc = JSON.parse(fs.readFileSync(file, 'utf8'));
    let ops = 0;
    const problems = [];
    for (const inc of incarnations) {
      const r = checkIncarnation(inc.prefix, readLog(inc.logFile), doc);
      ops += r.ops;
      problems.push(...r.problems);
    }
    assert.deepEqual(problems, [], 'committed changes lost');
    assert.deepEqual(doc['claude.ai Figma'], base['claude.ai Figma'], 'a foreign entry changed');
    assert.equal(doc.n, 5, 'a foreign odd entry changed');
    assert.deepEqual(asideFiles(dir), [], 'a valid file was moved aside as corrupt');
    // The lock is not left held by a dead writer, and the API agrees with the bytes.
    markNeedsAuth('after-crash', { configDir: dir });
    const listed = listNeedsAuth({ configDir: dir }).map((e) => e.server);
    assert.deepEqual(listed, [...Object.keys(doc), 'after-crash']);
    const temps = fs.readdirSync(dir).filter((n) => n.includes('.tmp'));
    assert.ok(
      killsDuringWork >= KILLS / 2,
      `only ${killsDuringWork} of ${KILLS} kills hit a writer that had started changing the file`,
    );
    t.diagnostic(
      `${ops} logged changes, ${killsDuringWork}/${KILLS} kills during work, ${temps.length} temp files left by killed writers`,
    );
  });

  // A writer killed between creating its temp file and renaming it leaves
  // `.mcp-needs-auth-cache.json.tmp-XXXXXX` behind (about one per two kills above). Under the lock
  // no live writer of this library has a temp file open, so the next locked write removes them all.
  it('temp files of killed writers do not pile up in the config dir after a later write', () => {
    assert.ok(crashDir, 'the crash test above must run first: it makes the killed writers');
    // The kills above leave such files only by chance (a later writer usually cleans them up
    // already), so plant one more exactly as a writer killed before its rename leaves it.
    fs.writeFileSync(path.join(crashDir, `.${FILE}.tmp-k1ll3d`), '{"half');
    markNeedsAuth('cleanup-probe', { configDir: crashDir });
    invalidateNeedsAuth('cleanup-probe', { configDir: crashDir });
    const temps = fs.readdirSync(crashDir).filter((n) => n.startsWith(`.${FILE}.tmp-`));
    assert.deepEqual(
      temps.length,
      0,
      `${temps.length} stale temp files left in the config dir, e.g. ${temps.slice(0, 3).join(', ')}`,
    );
  });
});

// ---- 2. racing Claude Code ---------------------------------------------------------------------

describe('racing a Claude-Code-style writer (plain writeFileSync, no lock)', () => {
  // What can and cannot be promised. Claude Code rewrites the whole object it read, without a
  // lock: a change the addon commits between Claude Code's read and its write is clobbered.
  // That is Claude Code's lost update, and no library can prevent it. What the addon must do:
  //  - never throw on the half-written (truncated) file an in-place writeFileSync exposes, but
  //    retry the read, and never surface it as an empty cache;
  //  - never mistake it for a corrupt file (no *.corrupt-* move-aside, which would drop
  //    Claude Code's entries);
  //  - among its own writers nothing is lost: once the Claude-Code-style writer has stopped,
  //    the addon writers' last round (each writer re-marks its 5 servers with id = round) is
  //    complete in the file, and Claude Code's entries are still there.
  it('addon writers and readers never throw, and the final round of the addon writers is complete', {
    timeout: 60000,
  }, async (t) => {
    const dir = configDir('race');
    const stop = path.join(BASE, `race-stop-${dirSeq++}`);
    const DURATION = 4000;
    const cc = run(process.execPath, [path.join(FIX, 'rel-cc-writer.js'), dir, String(DURATION)], { timeout: 30000 });
    await sleep(100); // let Claude Code's entries exist first
    const rw = (role, w) =>
      run(process.execPath, [path.join(FIX, 'rel-addon-rw.js'), role, dir, String(w), stop], { timeout: 45000 });
    const writers = [rw('writer', 0), rw('writer', 1)];
    const readers = [rw('reader', 0), rw('reader', 1)];
    const ccResult = await cc;
    assert.equal(ccResult.code, 0, `cc writer failed: ${ccResult.stderr}`);
    fs.writeFileSync(stop, ''); // only now: the writers' last round comes after Claude Code stopped
    const w = await Promise.all(writers);
    const r = await Promise.all(readers);
    const wr = w.map((x, i) => {
      assert.equal(x.code, 0, `writer ${i} failed: ${x.stderr}`);
      return JSON.parse(x.stdout);
    });
    const rr = r.map((x, i) => {
      assert.equal(x.code, 0, `reader ${i} failed: ${x.stderr}`);
      return JSON.parse(x.stdout);
    });
    const cs = JSON.parse(ccResult.stdout);
    t.diagnostic(
      `cc writes ${cs.writes} (torn reads seen by cc: ${cs.tornReads}); addon rounds ${wr.map((x) => x.rounds).join('+')}; reader calls ${rr.map((x) => x.calls).join('+')}`,
    );
    assert.ok(cs.writes > 100, 'the Claude-Code-style writer barely ran');
    for (const x of wr) assert.deepEqual(x.errors, [], 'an addon writer threw');
    for (const x of rr) assert.deepEqual(x.errors, [], 'an addon reader threw');
    // Not asserted here, because they depend on the scheduler: a read (or a locked write) that
    // meets the truncated file for longer than the addon's ~100 ms retry budget (the
    // Claude-Code-style writer descheduled between its truncate and its write, which happens on a
    // loaded 2-core machine) reports the cache as empty, and a write then moves the empty file
    // aside. The deterministic test below pins the write side of this down.
    const aside = asideFiles(dir);
    t.diagnostic(
      `reads that surfaced the truncated file as an empty cache: ${rr.map((x) => x.emptyLists).join('+')}; files moved aside: ${aside.length}`,
    );
    const doc = JSON.parse(fs.readFileSync(path.join(dir, FILE), 'utf8'));
    for (let i = 0; i < 2; i++) {
      for (let j = 0; j < 5; j++) {
        const e = doc[`a${i}-${j}`];
        assert.ok(e, `a${i}-${j} missing at the end`);
        assert.equal(e.id, String(wr[i].lastRound), `a${i}-${j} is not from writer ${i}'s last round`);
      }
    }
    for (let j = 0; j < 5; j++) assert.ok(doc[`cc-${j}`], `Claude Code's cc-${j} was dropped by the addon`);
  });

  it('a Claude Code write descheduled 300 ms between its truncate and its write: markNeedsAuth keeps its entries', {
    timeout: 30000,
  }, async (t) => {
    // KNOWN BUG (kept failing on purpose). Claude Code's writeFileSync is open(O_TRUNC) + write.
    // If that process is descheduled (or stopped) in between for longer than the addon's read
    // retry budget (20 x 5 ms), markNeedsAuth calls the empty file corrupt, moves it aside and
    // writes a document holding only its own entry. Claude Code's write then lands in the file
    // that was moved aside (its descriptor follows the inode), so every other entry - the ones
    // that were there before and Claude Code's new one - is gone from the live cache.
    // Without the addon, the file would end up with all of them. A lock holder can afford to wait
    // for a recently modified empty/unparseable file to settle (e.g. up to a second or two).
    const dir = configDir('stall');
    const file = writeCache(dir, `{"github":{"timestamp":${Date.now()}},"linear":{"timestamp":${Date.now()}}}`);
    const ccCode = `
      const fs = require('fs'); const f = ${JSON.stringify(file)};
      const doc = JSON.parse(fs.readFileSync(f, 'utf8')); doc.figma = { timestamp: Date.now() };
      const fd = fs.openSync(f, 'w'); process.stdout.write('T');
      Atomics.wait(new Int32Array(new SharedArrayBuffer(4)), 0, 0, 300);
      fs.writeSync(fd, JSON.stringify(doc)); fs.closeSync(fd);`;
    const cc = spawn(process.execPath, ['-e', ccCode], { stdio: ['ignore', 'pipe', 'inherit'] });
    const closed = new Promise((r) => cc.on('close', r));
    await new Promise((r) => cc.stdout.once('data', r));
    const listedDuring = listNeedsAuth({ configDir: dir }).map((e) => e.server);
    markNeedsAuth('mine', { configDir: dir });
    await closed;
    const live = Object.keys(JSON.parse(fs.readFileSync(file, 'utf8')));
    t.diagnostic(
      `listed during the stall: [${listedDuring}]; live file after: [${live}]; moved aside: ${asideFiles(dir).length}`,
    );
    assert.deepEqual(
      live.sort(),
      ['figma', 'github', 'linear', 'mine'],
      'entries lost: the half-written file was moved aside and replaced',
    );
  });

  it('a same-size in-place rewrite right after a read is never answered from a stale memo', () => {
    // The memo is validated by size + mtime + ctime + inode: an in-place rewrite of the same size
    // within one timestamp tick must still be seen (coarse-timestamp file systems make this hard).
    const dir = configDir('memo');
    const file = path.join(dir, FILE);
    const now = Date.now();
    const A = `{"aaaa":{"timestamp":${now}}}`;
    const B = `{"bbbb":{"timestamp":${now}}}`;
    let stale = 0;
    for (let i = 0; i < 500; i++) {
      fs.writeFileSync(file, A);
      isNeedsAuthCached('aaaa', { configDir: dir });
      fs.writeFileSync(file, B);
      if (isNeedsAuthCached('aaaa', { configDir: dir })) stale++;
    }
    assert.equal(stale, 0, `${stale}/500 checks answered from a stale memo`);
  });
});

// ---- 3. bad inputs -----------------------------------------------------------------------------

describe('bad inputs: the expected error code, and nothing lost', () => {
  const KEEP = '"keep":{"timestamp":1795668795083,"future":[1,{"x":null}]}';

  for (const [label, text] of [
    ['corrupt JSON', `{${KEEP},"half":{"timest`],
    ['a JSON array root', '[{"timestamp":1}]'],
    ['a JSON string root', '"mcp-needs-auth"'],
  ]) {
    it(`${label}: read as empty (as Claude Code reads it), kept aside byte for byte on the first write`, () => {
      const dir = configDir('bad');
      const file = writeCache(dir, text);
      const o = { configDir: dir };
      assert.deepEqual(listNeedsAuth(o), []);
      assert.equal(isNeedsAuthCached('keep', o), false);
      assert.deepEqual(invalidateNeedsAuth(null, o), [], 'nothing to remove');
      assert.equal(fs.readFileSync(file, 'utf8'), text, 'a read or a no-op invalidation rewrote it');
      assert.deepEqual(asideFiles(dir), []);
      markNeedsAuth('new', o);
      const aside = asideFiles(dir);
      assert.equal(aside.length, 1, 'the bad file was not kept');
      assert.equal(fs.readFileSync(path.join(dir, aside[0]), 'utf8'), text, 'the bad file was not kept byte for byte');
      assert.deepEqual(Object.keys(JSON.parse(fs.readFileSync(file, 'utf8'))), ['new']);
    });
  }

  it('an entry that is a number: never cached, survives every rewrite, removable', () => {
    const dir = configDir('bad');
    const file = writeCache(dir, `{"n":5,${KEEP}}`);
    const o = { configDir: dir };
    const n = listNeedsAuth(o).find((e) => e.server === 'n');
    assert.ok(n, 'the odd entry is listed');
    assert.equal(n.timestamp, null);
    assert.equal(n.cached, false);
    assert.equal(isNeedsAuthCached('n', o), false);
    markNeedsAuth('x', o);
    assert.ok(
      fs.readFileSync(file, 'utf8').startsWith(`{"n":5,${KEEP},"x":{"timestamp":`),
      'rewrite changed other entries',
    );
    assert.deepEqual(invalidateNeedsAuth('n', o), ['n']);
    assert.ok(fs.readFileSync(file, 'utf8').startsWith(`{${KEEP},"x":`));
  });

  it('a 5 MiB file: ERR_CACHE_TOO_LARGE from every function, file untouched', () => {
    const dir = configDir('big');
    const text = `{${KEEP},"pad":"${'x'.repeat(5 * 1024 * 1024)}"}`;
    const file = writeCache(dir, text);
    const snap = fileSnap(file);
    const o = { configDir: dir, credentials: 'file' };
    const codes = {
      listNeedsAuth: codeOf(() => listNeedsAuth(o)),
      isNeedsAuthCached: codeOf(() => isNeedsAuthCached('keep', o)),
      markNeedsAuth: codeOf(() => markNeedsAuth('keep', o)),
      invalidateNeedsAuth: codeOf(() => invalidateNeedsAuth('keep', o)),
      invalidateAll: codeOf(() => invalidateNeedsAuth(null, o)),
      purgeStale: codeOf(() => purgeStale(o)),
      diagnose: codeOf(() => diagnose('keep', o)),
    };
    for (const [fn, code] of Object.entries(codes)) assert.equal(code, 'ERR_CACHE_TOO_LARGE', `${fn}`);
    assertUntouched(file, snap, 'the 5 MiB file');
    assert.deepEqual(asideFiles(dir), []);
  });

  it('a symlink at the cache path: read through, replaced by the write, its target never written', () => {
    const dir = configDir('link');
    const elsewhere = configDir('link-target', { credentials: false });
    const target = writeCache(elsewhere, `{${KEEP},"t":{"timestamp":1}}`);
    const snap = fileSnap(target);
    const link = path.join(dir, FILE);
    fs.symlinkSync(target, link);
    const o = { configDir: dir };
    assert.deepEqual(
      listNeedsAuth(o).map((e) => e.server),
      ['keep', 't'],
      'the link is read through',
    );
    assert.deepEqual(invalidateNeedsAuth('t', o), ['t']);
    assert.ok(fs.lstatSync(link).isFile(), 'the link was not replaced by a file');
    assertUntouched(target, snap, 'the symlink target');
    markNeedsAuth('m', o);
    assertUntouched(target, snap, 'the symlink target');
    assert.deepEqual(Object.keys(JSON.parse(fs.readFileSync(link, 'utf8'))), ['keep', 'm']);
    // A dangling link is a missing file, and is replaced too.
    const dir2 = configDir('link');
    const gone = path.join(elsewhere, 'nowhere.json');
    fs.symlinkSync(gone, path.join(dir2, FILE));
    assert.deepEqual(listNeedsAuth({ configDir: dir2 }), []);
    markNeedsAuth('m', { configDir: dir2 });
    assert.ok(fs.lstatSync(path.join(dir2, FILE)).isFile());
    assert.equal(fs.existsSync(gone), false, 'wrote through a dangling link');
  });

  it('a read-only config dir: ERR_CACHE_WRITE, reads still work, file untouched', () => {
    const dir = configDir('ro');
    const file = writeCache(dir, `{${KEEP}}`, { old: false });
    fs.chmodSync(file, 0o644);
    const snap = fileSnap(file);
    const code = `
      const a = require(${JSON.stringify(readableAddon())});
      const o = { configDir: ${JSON.stringify(dir)} };
      const codeOf = (fn) => { try { const v = fn(); return { ok: v }; } catch (e) { return { code: e.code, message: e.message }; } };
      console.log(JSON.stringify({
        uid: process.getuid(),
        list: codeOf(() => a.listNeedsAuth(o).map((e) => e.server)),
        cached: codeOf(() => a.isNeedsAuthCached('keep', o)),
        mark: codeOf(() => a.markNeedsAuth('new', o)),
        invalidate: codeOf(() => a.invalidateNeedsAuth('keep', o)),
        invalidateNothing: codeOf(() => a.invalidateNeedsAuth('absent', o)),
      }));`;
    let r;
    if (IS_ROOT) {
      r = spawnSync(process.execPath, ['-e', code], {
        uid: 65534,
        gid: 65534,
        cwd: '/',
        encoding: 'utf8',
        timeout: 20000,
        env: { PATH: process.env.PATH, HOME: '/nonexistent' },
      });
    } else {
      fs.chmodSync(dir, 0o555);
      try {
        r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', timeout: 20000 });
      } finally {
        fs.chmodSync(dir, 0o755);
      }
    }
    assert.equal(r.status, 0, `child failed: ${r.stderr}`);
    const out = JSON.parse(r.stdout);
    if (IS_ROOT) assert.equal(out.uid, 65534);
    assert.deepEqual(out.list, { ok: ['keep'] });
    assert.deepEqual(out.cached, { ok: false });
    assert.equal(out.mark.code, 'ERR_CACHE_WRITE', JSON.stringify(out.mark));
    assert.equal(out.invalidate.code, 'ERR_CACHE_WRITE', JSON.stringify(out.invalidate));
    assert.ok(out.mark.message.includes(dir), `the message names the path: ${out.mark.message}`);
    assert.deepEqual(out.invalidateNothing, { ok: [] }, 'nothing to remove needs no write access');
    assertUntouched(file, snap, 'the read-only cache');
    assert.deepEqual(
      fs.readdirSync(dir).sort(),
      ['.credentials.json', FILE].sort(),
      'something was created in the read-only dir',
    );
  });

  it('no HOME and no CLAUDE_CONFIG_DIR: cachePath resolves like os.homedir() in that process, and does not throw', () => {
    const code = `
      const os = require('os'), path = require('path'), fs = require('fs');
      const a = require(${JSON.stringify(readableAddon())});
      const expected = path.join(os.homedir(), '.claude', 'mcp-needs-auth-cache.json');
      const existed = fs.existsSync(path.dirname(expected));
      let got, err;
      try { got = a.cachePath(); } catch (e) { err = { code: e.code, message: e.message }; }
      console.log(JSON.stringify({ home: process.env.HOME, ccd: process.env.CLAUDE_CONFIG_DIR, homedir: os.homedir(), expected, got, err,
        createdDir: !existed && fs.existsSync(path.dirname(expected)) }));`;
    const cases = [['this uid', {}]];
    if (IS_ROOT) cases.push(['uid 65534', { uid: 65534, gid: 65534 }]);
    for (const [label, ids] of cases) {
      const r = spawnSync(process.execPath, ['-e', code], {
        ...ids,
        cwd: '/',
        encoding: 'utf8',
        timeout: 20000,
        env: { PATH: process.env.PATH },
      });
      assert.equal(r.status, 0, `${label}: child failed: ${r.stderr}`);
      const out = JSON.parse(r.stdout);
      assert.equal(out.home, undefined);
      assert.equal(out.ccd, undefined);
      assert.equal(out.err, undefined, `${label}: cachePath threw ${JSON.stringify(out.err)}`);
      assert.equal(out.got, out.expected, `${label}: os.homedir() is ${out.homedir}`);
      assert.equal(out.createdDir, false, `${label}: cachePath created a directory`);
    }
  });

  describe('server names', () => {
    function withKeep() {
      const dir = configDir('names');
      const file = writeCache(dir, `{${KEEP}}`);
      return { dir, file, o: { configDir: dir, credentials: 'none' } };
    }
    for (const [label, name] of [
      ['empty', ''],
      ['containing NUL', 'git\0hub'],
      ['100 KiB', 'x'.repeat(100 * 1024)],
    ]) {
      it(`${label}: ERR_INVALID_SERVER_NAME from every function, nothing written`, () => {
        const { file, o } = withKeep();
        const snap = fileSnap(file);
        assert.equal(
          codeOf(() => markNeedsAuth(name, o)),
          'ERR_INVALID_SERVER_NAME',
          'markNeedsAuth',
        );
        assert.equal(
          codeOf(() => isNeedsAuthCached(name, o)),
          'ERR_INVALID_SERVER_NAME',
          'isNeedsAuthCached',
        );
        assert.equal(
          codeOf(() => invalidateNeedsAuth(name, o)),
          'ERR_INVALID_SERVER_NAME',
          'invalidateNeedsAuth',
        );
        assert.equal(
          codeOf(() => invalidateNeedsAuth(['keep', name], o)),
          'ERR_INVALID_SERVER_NAME',
          'invalidateNeedsAuth([ok, bad])',
        );
        assert.equal(
          codeOf(() => diagnose(name, o)),
          'ERR_INVALID_SERVER_NAME',
          'diagnose',
        );
        assertUntouched(file, snap, label);
        // The message stays printable and bounded.
        try {
          markNeedsAuth(name, o);
        } catch (e) {
          assert.ok(!e.message.includes('\0'), 'NUL in the message');
          assert.ok(e.message.length < 1000, `message of ${e.message.length} chars`);
        }
      });
    }

    it('wrong types and bad options: ERR_INVALID_SERVER_NAME / ERR_INVALID_ARGUMENT, nothing written', () => {
      const { file, o } = withKeep();
      const snap = fileSnap(file);
      assert.equal(
        codeOf(() => markNeedsAuth(42, o)),
        'ERR_INVALID_SERVER_NAME',
      );
      assert.equal(
        codeOf(() => markNeedsAuth('a', { configDir: '' })),
        'ERR_INVALID_ARGUMENT',
      );
      assert.equal(
        codeOf(() => markNeedsAuth('a', 'not options')),
        'ERR_INVALID_ARGUMENT',
      );
      assert.equal(
        codeOf(() => markNeedsAuth('a', { ...o, ttlMs: -1 })),
        'ERR_INVALID_ARGUMENT',
      );
      assert.equal(
        codeOf(() => listNeedsAuth({ ...o, defaultTtlMs: NaN })),
        'ERR_INVALID_ARGUMENT',
      );
      assert.equal(
        codeOf(() => diagnose('a', { ...o, credentials: 'bogus' })),
        'ERR_INVALID_ARGUMENT',
      );
      assertUntouched(file, snap, 'bad arguments');
    });

    it('__proto__ is an ordinary server name: written, listed, checked, removed; no prototype pollution', () => {
      const { file, o } = withKeep();
      markNeedsAuth('__proto__', o);
      markNeedsAuth('constructor', o);
      const raw = fs.readFileSync(file, 'utf8');
      assert.ok(raw.includes('"__proto__":{"timestamp":'), raw);
      assert.ok(Object.hasOwn(JSON.parse(raw), '__proto__'));
      assert.deepEqual(
        listNeedsAuth(o).map((e) => e.server),
        ['keep', '__proto__', 'constructor'],
      );
      assert.equal(isNeedsAuthCached('__proto__', o), true);
      assert.equal(isNeedsAuthCached('toString', o), false);
      assert.equal(diagnose('__proto__', o).skipped, true);
      assert.equal({}.timestamp, undefined, 'Object.prototype polluted');
      assert.deepEqual(invalidateNeedsAuth('__proto__', o), ['__proto__']);
      assert.deepEqual(Object.keys(JSON.parse(fs.readFileSync(file, 'utf8'))), ['keep', 'constructor']);
    });

    it('NFC and NFD spellings of one name are two different keys', () => {
      const { file, o } = withKeep();
      const nfc = 'caf\u00e9';
      const nfd = 'cafe\u0301';
      markNeedsAuth(nfc, o);
      assert.equal(isNeedsAuthCached(nfd, o), false, 'the NFD name matched the NFC key');
      markNeedsAuth(nfd, o);
      assert.deepEqual(
        listNeedsAuth(o).map((e) => e.server),
        ['keep', nfc, nfd],
      );
      assert.deepEqual(invalidateNeedsAuth(nfd, o), [nfd]);
      assert.equal(isNeedsAuthCached(nfc, o), true, 'removing the NFD key removed the NFC one');
      assert.deepEqual(Object.keys(JSON.parse(fs.readFileSync(file, 'utf8'))), ['keep', nfc]);
      assert.ok(fs.readFileSync(file).includes(Buffer.from(nfc, 'utf8')), 'the NFC bytes were rewritten');
    });
  });
});

// ---- 4. no token text in any output ------------------------------------------------------------

function findSecrets(text, extra = []) {
  const hits = [];
  if (text.includes(SECRET_MARK)) {
    const i = text.indexOf(SECRET_MARK);
    hits.push(`…${text.slice(Math.max(0, i - 60), i + 40)}…`);
  }
  for (const s of [...FIXTURE_SECRETS, ...extra]) {
    // Also the distinctive tail, in case a prefix was cut off.
    const tail = s.slice(-10);
    if (text.includes(tail)) hits.push(`tail of a token (${tail.slice(0, 3)}…) found`);
  }
  return hits;
}

describe('no token text in any output', () => {
  it('every API over the credential fixtures: results, errors, events, warnings', { timeout: 60000 }, async (t) => {
    const fixtureDir = configDir('probe');
    // Entries for servers with credentials: one older than the credentials (superseded), one fresh.
    writeCache(
      fixtureDir,
      `{"rel-github":{"timestamp":${Date.now() - 120000}},"rel-stub":{"timestamp":${Date.now()}},"rel-linear":{"timestamp":${Date.now() - 3600000}}}`,
      { old: false },
    );
    const eventsDir = configDir('probe-events', { credentials: false });
    fs.copyFileSync(CRED_FIXTURE, path.join(eventsDir, '.credentials.json'));
    const corruptDir = configDir('probe-corrupt', { credentials: false });
    const whole = fs.readFileSync(CRED_FIXTURE, 'utf8');
    fs.writeFileSync(path.join(corruptDir, '.credentials.json'), whole.slice(0, whole.indexOf('RELFAKE-gho') + 30), {
      mode: 0o600,
    });
    const r = await run(process.execPath, [path.join(FIX, 'rel-token-probe.js'), fixtureDir, eventsDir, corruptDir], {
      timeout: 30000,
    });
    assert.equal(r.code, 0, `probe failed: ${r.stderr.slice(-2000)}`);
    const out = JSON.parse(r.stdout);
    const extra = [
      'RELFAKE-NEW-ACCESS-inplace-6c8e0a2c4e',
      'RELFAKE-NEW-REFRESH-inplace-1a3c5e7a9b',
      'RELFAKE-NEW-ACCESS-rename-9b7d5f3b1d',
      'RELFAKE-NEW-REFRESH-rename-2b4d6f8b0d',
      'RELFAKE-NOT-AN-OBJECT-4e6a8c0e2a',
    ];
    assert.deepEqual(findSecrets(r.stdout + r.stderr, extra), [], 'token text in the probe output');
    // The probe is not vacuous: it saw tokens being there, errors, events and warnings.
    const by = (w) => out.find((x) => x.what === w);
    assert.equal(by('fixture diagnose rel-github file').value.credentials.hasAccessToken, true);
    assert.equal(by('fixture diagnose rel-stub file').value.credentials.tokenlessStub, true);
    const events = by('events').value;
    assert.ok(
      events.some((e) => e.reason === 'credentials-changed' && e.servers.includes('rel-github')),
      `no credentials event: ${JSON.stringify(events)}`,
    );
    assert.ok(events.some((e) => e.reason === 'invalidated'));
    const errors = out.filter((x) => x.error).map((x) => `${x.what}: ${x.error.code}`);
    const warnings = out.filter((x) => x.what === 'warning');
    assert.ok(
      errors.some((e) => e.startsWith('corrupt diagnose')),
      `no error from corrupt credentials: ${errors.join('; ')}`,
    );
    t.diagnostic(
      `${out.length} captured results; ${errors.length} errors (${[...new Set(errors.map((e) => e.split(': ')[1]))].join(', ')}); ${events.length} events; ${warnings.length} warnings`,
    );
  });

  it('every CLI command over the credential fixtures: stdout and stderr', { timeout: 90000 }, async (t) => {
    const dir = configDir('cli');
    const corruptDir = configDir('cli-corrupt', { credentials: false });
    const whole = fs.readFileSync(CRED_FIXTURE, 'utf8');
    fs.writeFileSync(path.join(corruptDir, '.credentials.json'), whole.slice(0, whole.indexOf('RELFAKE-gho') + 30), {
      mode: 0o600,
    });
    const seed = () => {
      for (const d of [dir, corruptDir]) {
        writeCache(
          d,
          `{"rel-github":{"timestamp":${Date.now() - 120000}},"rel-stub":{"timestamp":${Date.now()}},"rel-linear":{"timestamp":${Date.now() - 3600000},"id":"mcpsrv_rel"}}`,
          { old: false },
        );
      }
    };
    const commands = [
      ['list'],
      ['list', '--json'],
      ['path'],
      ['clear'],
      ['clear', 'rel-github'],
      ['purge'],
      ['purge', '--json'],
    ];
    for (const s of ['rel-github', 'rel-linear', 'rel-stub', 'rel-none'])
      commands.push(['why', s], ['why', s, '--json']);
    const env = { PATH: process.env.PATH, HOME: BASE, CLAUDE_CONFIG_DIR: dir };
    let runs = 0;
    let failures = 0;
    for (const d of [dir, corruptDir]) {
      for (const cmd of commands) {
        for (const creds of [[], ['--credentials', 'file']]) {
          if (creds.length && !['purge', 'why'].includes(cmd[0])) continue;
          seed();
          const args = [CLI, ...cmd, '--config-dir', d, ...creds];
          const r = await run(process.execPath, args, { timeout: 20000, env });
          runs++;
          if (r.code !== 0) failures++;
          assert.ok(
            r.code === 0 || (d === corruptDir && r.code === 1),
            `${cmd.join(' ')} exited ${r.code}: ${r.stderr}`,
          );
          assert.deepEqual(findSecrets(r.stdout + r.stderr), [], `token text in \`${cmd.join(' ')}\` output`);
        }
      }
    }
    // watch: one credentials change while it runs.
    // (in a dir of its own: this test, playing Claude Code, rewrites its credentials)
    const watchDir = configDir('cli-watch', { credentials: false });
    fs.copyFileSync(CRED_FIXTURE, path.join(watchDir, '.credentials.json'));
    const w = spawn(process.execPath, [CLI, 'watch', '--json', '--config-dir', watchDir], {
      env,
      stdio: ['ignore', 'pipe', 'pipe'],
    });
    let wout = '';
    let werr = '';
    w.stdout.on('data', (d) => (wout += d));
    w.stderr.on('data', (d) => (werr += d));
    const closed = new Promise((r) => w.on('close', r));
    const timer = setTimeout(() => w.kill('SIGKILL'), 15000);
    for (let i = 0; i < 100 && !werr.includes('watching'); i++) await sleep(50);
    const { writeFreshToken } = require('../../support/credentials.js');
    writeFreshToken(watchDir, 'rel-github', 'https://rel-github.example.test/mcp', {
      token: 'RELFAKE-WATCH-ACCESS-8a0c2e4a6c',
      refreshToken: 'RELFAKE-WATCH-REFRESH-3c5e7a9c1e',
    });
    for (let i = 0; i < 60 && !wout.includes('credentials-changed'); i++) await sleep(50);
    w.kill('SIGTERM');
    await closed;
    clearTimeout(timer);
    assert.ok(wout.includes('credentials-changed'), `watch printed no event: ${wout} ${werr}`);
    assert.deepEqual(
      findSecrets(wout + werr, ['RELFAKE-WATCH-ACCESS-8a0c2e4a6c', 'RELFAKE-WATCH-REFRESH-3c5e7a9c1e']),
      [],
      'token text in `watch` output',
    );
    t.diagnostic(`${runs + 1} CLI runs (${failures} exited 1 on the corrupt credentials dir)`);
  });
});

// ---- 5. the credentials store is never written -------------------------------------------------

describe('the credentials store', () => {
  it('was never written by anything in this suite: bytes, mode and mtime unchanged', () => {
    assert.ok(installedCredentials.length > 10, 'the suite installed the credentials fixture in its config dirs');
    const changed = [];
    for (const { file, snap } of installedCredentials) {
      const now = credSnap(file);
      if (!now.bytes.equals(snap.bytes)) changed.push(`${file}: bytes`);
      if (now.mode !== snap.mode) changed.push(`${file}: mode ${snap.mode.toString(8)} -> ${now.mode.toString(8)}`);
      if (now.mtimeNs !== snap.mtimeNs) changed.push(`${file}: mtime`);
      if (now.ino !== snap.ino) changed.push(`${file}: replaced`);
    }
    assert.deepEqual(changed, []);
  });
});
