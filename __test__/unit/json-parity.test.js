'use strict';
// The cache file is read exactly as Claude Code reads it: `JSON.parse(readFileSync(f, 'utf8'))`.
// A differential test: seeded, generated documents (random nesting, duplicate keys, lone
// surrogates, escapes, non-BMP characters, invalid UTF-8 bytes, out-of-range numbers, odd
// whitespace) and the documents of issue 18, written to a real file; then the addon's judgement
// (listNeedsAuth, isNeedsAuthCached) against Node's own JSON.parse of the same file, and after a
// markNeedsAuth of another name, the rewritten file re-read by JSON.parse: every other entry as
// it was, in JavaScript's order, and nothing moved aside.
//
//   node --test __test__/unit/json-parity.test.js

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ADDON = path.resolve(__dirname, '..', '..');
const { listNeedsAuth, isNeedsAuthCached, markNeedsAuth } = require(ADDON);

const FILE = 'mcp-needs-auth-cache.json';
const DEFAULT_TTL_MS = 900000;
const SEEDS = 300;

function tmp(t) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mna-parity-'));
  t.after(() => fs.rmSync(dir, { recursive: true, force: true }));
  return dir;
}

/** mulberry32: a small seeded PRNG, so that a failure names a seed that reproduces it. */
function prng(seed) {
  let a = seed >>> 0;
  return () => {
    a = (a + 0x6d2b79f5) >>> 0;
    let t = a;
    t = Math.imul(t ^ (t >>> 15), t | 1);
    t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
    return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
  };
}

/** A generator of JSON text as bytes (not a value: duplicates, spellings and bad bytes matter). */
function generator(seed, now) {
  const rnd = prng(seed);
  const int = (n) => Math.floor(rnd() * n);
  const pick = (xs) => xs[int(xs.length)];
  const chunks = [];
  const out = (x) => chunks.push(typeof x === 'string' ? Buffer.from(x, 'utf8') : Buffer.from(x));
  const ws = () => {
    if (rnd() < 0.7) return;
    out(Array.from({ length: 1 + int(3) }, () => pick([' ', '\t', '\n', '\r'])).join(''));
  };
  // Pieces of string content, written as raw bytes inside the quotes.
  const PIECES = [
    'a',
    'timestamp',
    'x y',
    '\\"',
    '\\\\',
    '\\/',
    '\\b\\f\\n\\r\\t',
    '\\u0000',
    '\\u001f',
    '\\u00e9',
    '\\uD800',
    '\\udbff',
    '\\udc00',
    '\\ud83d\\ude00',
    '\\ude00\\ud83d',
    '\\uFFFD',
    '\u{1f600}',
    'é',
    '\u2028',
    '\u{fffd}',
    [0xe9],
    [0xff],
    [0xc0, 0xaf],
    [0xed, 0xa0, 0x80],
    [0xe2, 0x82],
    [0xf0, 0x9f, 0x98],
    [0x80],
  ];
  const NAMES = ['github', 'linear', '0', '7', '01', '4294967294', '4294967295', '-1', '__proto__', 'constructor'];
  const string = () => {
    out('"');
    const n = int(4);
    for (let i = 0; i < n; i++) out(pick(PIECES));
    out('"');
  };
  const key = () => {
    if (rnd() < 0.4) out(JSON.stringify(pick(NAMES)));
    else string();
  };
  const NUMBERS = [
    '0',
    '-0',
    '1',
    '-1',
    '12.5',
    '1e400',
    '-1e400',
    '1e-400',
    '1E+2',
    '5e-324',
    '1e21',
    '0.1e1',
    '123456789012345678901',
  ];
  const number = () => out(rnd() < 0.5 ? pick(NUMBERS) : String(Math.round((rnd() - 0.5) * 1e6) / 1000));
  const value = (depth) => {
    const r = rnd();
    if (depth > 4 || r < 0.35) {
      const s = rnd();
      if (s < 0.3) number();
      else if (s < 0.6) string();
      else out(pick(['true', 'false', 'null']));
    } else if (r < 0.5 && rnd() < 0.2) {
      // A deep run of nesting.
      const d = 50 + int(400);
      const open = rnd() < 0.5;
      out(open ? '['.repeat(d) : '{"x":'.repeat(d));
      number();
      out(open ? ']'.repeat(d) : '}'.repeat(d));
    } else if (r < 0.7) {
      out('[');
      const n = int(4);
      for (let i = 0; i < n; i++) {
        if (i) out(',');
        ws();
        value(depth + 1);
        ws();
      }
      out(']');
    } else {
      object(() => value(depth + 1));
    }
  };
  const object = (member) => {
    out('{');
    ws();
    const n = int(5);
    for (let i = 0; i < n; i++) {
      if (i) out(',');
      ws();
      key();
      ws();
      out(':');
      ws();
      member();
      ws();
    }
    out('}');
  };
  // A cache entry: the fields the rules read, valued oddly at times, and others.
  const entry = () => {
    const fields = [];
    const r = rnd();
    const timestamps = [now - 5000, now - 3600000, now + 3600000];
    fields.push(['"timestamp"', () => (r < 0.8 ? out(String(pick(timestamps))) : value(3))]);
    if (rnd() < 0.4)
      fields.push(['"ttlMs"', () => (rnd() < 0.7 ? out(pick(['14400000', '1000', '1e400'])) : value(3))]);
    if (rnd() < 0.3) fields.push(['"id"', () => string()]);
    if (rnd() < 0.4) fields.push(['"future"', () => value(2)]);
    if (rnd() < 0.2) fields.push(['"timestamp"', () => out(String(pick(timestamps)))]);
    out('{');
    fields.forEach(([k, v], i) => {
      if (i) out(',');
      ws();
      out(k);
      ws();
      out(':');
      ws();
      v();
      ws();
    });
    out('}');
  };
  return () => {
    chunks.length = 0;
    ws();
    object(() => (rnd() < 0.75 ? entry() : value(1)));
    ws();
    return Buffer.concat(chunks);
  };
}

/** The name-only rule as this library documents it, on the value JSON.parse made. */
function judge(entry, now) {
  const obj = entry !== null && typeof entry === 'object' && !Array.isArray(entry) ? entry : undefined;
  const num = (v) => (typeof v === 'number' && Number.isFinite(v) ? v : undefined);
  const timestamp = num(obj?.timestamp);
  const ttlMs = num(obj?.ttlMs) ?? DEFAULT_TTL_MS;
  const age = now - timestamp;
  return {
    timestamp: timestamp ?? null,
    ttlMs,
    cached: timestamp !== undefined && age < ttlMs && age > -60000,
    id: typeof obj?.id === 'string' ? obj.id.toWellFormed() : undefined,
  };
}

/** Names a call can take: well-formed (no lone surrogate), not empty, no NUL, at most 4 KiB. */
const nameable = (s) => s.isWellFormed() && s !== '' && !s.includes('\0') && Buffer.byteLength(s) <= 4096;

/** Deep equality as JSON.stringify writes values; for values too deep for it, as text of ours. */
function sameAsStringified(a, b) {
  try {
    return JSON.stringify(a) === JSON.stringify(b);
  } catch {
    return canonical(a) === canonical(b);
  }
}

/** JSON.stringify without recursion (for values nested deeper than V8's stack allows). */
function canonical(v) {
  const parts = [];
  const stack = [v];
  while (stack.length) {
    const x = stack.pop();
    if (typeof x === 'object' && x !== null && x.__text !== undefined) parts.push(x.__text);
    else if (Array.isArray(x)) {
      stack.push({ __text: ']' });
      for (let i = x.length - 1; i >= 0; i--) {
        stack.push(x[i]);
        if (i) stack.push({ __text: ',' });
      }
      parts.push('[');
    } else if (typeof x === 'object' && x !== null) {
      const keys = Object.keys(x);
      stack.push({ __text: '}' });
      for (let i = keys.length - 1; i >= 0; i--) {
        stack.push(x[keys[i]]);
        stack.push({ __text: `${JSON.stringify(keys[i])}:` });
        if (i) stack.push({ __text: ',' });
      }
      parts.push('{');
    } else parts.push(JSON.stringify(x) ?? 'null');
  }
  return parts.join('');
}

/**
 * Writes `bytes` as the cache of a fresh config dir and checks the addon against JSON.parse.
 * Returns what JSON.parse made of the file (undefined when it throws).
 */
function checkParity(t, bytes, label) {
  const dir = tmp(t);
  const file = path.join(dir, FILE);
  fs.writeFileSync(file, bytes);
  // Not modified within the read's settle time, so a reader never waits on it as a torn write.
  const old = new Date(Date.now() - 60000);
  fs.utimesSync(file, old, old);
  const opts = { configDir: dir };
  let parsed;
  try {
    const root = JSON.parse(fs.readFileSync(file, 'utf8'));
    parsed = root !== null && typeof root === 'object' && !Array.isArray(root) ? root : undefined;
  } catch {}
  const now = Date.now();
  const listed = listNeedsAuth(opts);
  if (parsed === undefined) {
    assert.deepEqual(listed, [], `${label}: JSON.parse rejects it, so it has no entries`);
    return undefined;
  }
  const names = Object.keys(parsed);
  assert.deepEqual(
    listed.map((e) => e.server),
    names.map((k) => k.toWellFormed()),
    `${label}: the names, in JavaScript's order`,
  );
  listed.forEach((e, i) => {
    const want = judge(parsed[names[i]], now);
    const got = { timestamp: e.timestamp, ttlMs: e.ttlMs, cached: e.cached, id: e.id ?? undefined };
    assert.deepEqual(got, want, `${label}: entry ${JSON.stringify(names[i])}`);
  });
  for (const name of names) {
    if (nameable(name)) {
      assert.equal(isNeedsAuthCached(name, opts), judge(parsed[name], now).cached, `${label}: check ${name}`);
    } else {
      assert.throws(() => isNeedsAuthCached(name, opts), { code: 'ERR_INVALID_SERVER_NAME' }, `${label}: ${name}`);
      const shown = name.toWellFormed();
      if (!nameable(shown)) continue;
      const real = Object.hasOwn(parsed, shown) ? judge(parsed[shown], now).cached : false;
      assert.equal(isNeedsAuthCached(shown, opts), real, `${label}: U+FFFD names another entry`);
    }
  }
  // A write of another name: every other entry as JSON.parse saw it, in order; nothing aside.
  const added = 'parity-added-server';
  markNeedsAuth(added, opts);
  const after = JSON.parse(fs.readFileSync(file, 'utf8'));
  assert.deepEqual(Object.keys(after), [...names, added], `${label}: the names after a write`);
  for (const name of names) {
    assert.ok(sameAsStringified(after[name], parsed[name]), `${label}: entry ${JSON.stringify(name)} after a write`);
  }
  assert.deepEqual(fs.readdirSync(dir).sort(), [FILE, `${FILE}.lock`], `${label}: nothing moved aside`);
  return parsed;
}

describe('the cache file is read as JSON.parse reads it', () => {
  const now = Date.now();
  const fresh = now - 5000;

  it("issue 18's documents: Claude Code reads them, and so does the addon", (t) => {
    const entry = `{"timestamp":${fresh}}`;
    const docs = {
      'nested 200 deep': `{"github":${entry},"other":{"timestamp":1,"x":${'['.repeat(200)}1${']'.repeat(200)}}}`,
      'nested 100,000 deep': `{"github":${entry},"other":{"x":${'{"y":'.repeat(100000)}1${'}'.repeat(100000)}}}`,
      'an escaped lone surrogate': `{"github":${entry},"a\\ud800":${entry}}`,
      '1e400': `{"github":${entry},"other":{"timestamp":1e400,"ttlMs":1e400}}`,
      'a Latin-1 byte in a key': Buffer.concat([
        Buffer.from(`{"github":${entry},"caf`),
        Buffer.from([0xe9]),
        Buffer.from(`":${entry}}`),
      ]),
      'duplicate keys': `{"github":{"timestamp":1},"linear":${entry},"github":${entry}}`,
      'array-index keys': `{"github":${entry},"7":${entry},"3":{"timestamp":1},"10":${entry}}`,
    };
    for (const [label, bytes] of Object.entries(docs)) {
      const parsed = checkParity(t, bytes, label);
      assert.ok(parsed, `${label}: JSON.parse reads it`);
      assert.equal(judge(parsed.github, Date.now()).cached, true, `${label}: github is cached`);
    }
  });

  it('the 100,000-deep entry is written back as it was', (t) => {
    const deep = `{"x":${'{"y":'.repeat(100000)}1${'}'.repeat(100000)}}`;
    const dir = tmp(t);
    const file = path.join(dir, FILE);
    const text = `{"github":{"timestamp":${fresh}},"other":${deep}}`;
    fs.writeFileSync(file, text);
    markNeedsAuth('added', { configDir: dir });
    const written = fs.readFileSync(file, 'utf8');
    assert.ok(written.startsWith(`${text.slice(0, -1)},"added":{"timestamp":`), 'the other entries, byte for byte');
    assert.equal(isNeedsAuthCached('github', { configDir: dir }), true);
  });

  it(`${SEEDS} generated documents: the addon's judgement is Node's`, (t) => {
    let accepted = 0;
    for (let seed = 1; seed <= SEEDS; seed++) {
      const bytes = generator(seed, now)();
      if (checkParity(t, bytes, `seed ${seed}`) !== undefined) accepted++;
    }
    // The generator must mostly make documents JSON.parse accepts, or it proves little.
    assert.ok(accepted > SEEDS * 0.9, `only ${accepted} of ${SEEDS} generated documents parse`);
  });

  it('documents JSON.parse rejects are corrupt to the addon too', (t) => {
    const bad = [
      '{nope',
      '{"a":1,}',
      '[1]',
      '"x"',
      'null',
      '{"a":01}',
      '{"a":1.}',
      '\ufeff{}',
      '{"a":"\u0001"}',
      '{"a":1} x',
    ];
    const rnd = prng(7);
    for (let seed = 1; seed <= 40; seed++) {
      // A generated document with one byte changed to something JSON never has there.
      const bytes = Buffer.from(generator(seed, now)());
      bytes[Math.floor(rnd() * bytes.length)] = 0x01;
      bad.push(bytes);
    }
    for (const [i, bytes] of bad.entries()) {
      assert.equal(checkParity(t, bytes, `corrupt case ${i}`), undefined, `case ${i}: JSON.parse rejects it`);
    }
  });
});
