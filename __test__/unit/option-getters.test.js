'use strict';
// An option whose getter throws: every function that takes options reports it the same way, an
// `ERR_INVALID_ARGUMENT` naming the option, with the thrown value kept as `cause` (never
// `ERR_INTERNAL`, never the thrown value rethrown bare). Every option key, in every way an options
// object is read: the key alone (the sorter's `{configDir}` shape), beside another option, and
// inherited from a prototype (walked like `for...in`).
//
//   node --test __test__/unit/option-getters.test.js

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const ADDON = path.resolve(__dirname, '..', '..');
const addon = require(ADDON);

const KEYS = [
  'configDir',
  'defaultTtlMs',
  'ttlMs',
  'id',
  'credentials',
  'watch',
  'autoInvalidate',
  'pollIntervalMs',
  'serverConfig',
  'serverConfigs',
];

// Every exported function that takes options, called with `options` as its options argument.
const FUNCTIONS = {
  cachePath: (o) => addon.cachePath(o),
  listNeedsAuth: (o) => addon.listNeedsAuth(o),
  isNeedsAuthCached: (o) => addon.isNeedsAuthCached('s', o),
  markNeedsAuth: (o) => addon.markNeedsAuth('s', o),
  invalidateNeedsAuth: (o) => addon.invalidateNeedsAuth('s', o),
  purgeStale: (o) => addon.purgeStale(o),
  diagnose: (o) => addon.diagnose('s', o),
  onAuthChanged: (o) => addon.onAuthChanged(() => {}, o).close(),
};

let dir;
let savedEnv;
before(() => {
  // Nothing must be written anywhere, but should a call get that far, it stays in a temp dir.
  dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mna-getters-'));
  savedEnv = process.env.CLAUDE_CONFIG_DIR;
  process.env.CLAUDE_CONFIG_DIR = dir;
});
after(() => {
  if (savedEnv === undefined) delete process.env.CLAUDE_CONFIG_DIR;
  else process.env.CLAUDE_CONFIG_DIR = savedEnv;
  fs.rmSync(dir, { recursive: true, force: true });
});

/** Options objects whose `key` getter throws `thrown`, in each shape decoding tells apart. */
function shapes(key, thrown) {
  const getter = {
    get() {
      throw thrown;
    },
    enumerable: true,
  };
  const alone = Object.defineProperty({}, key, getter);
  const other = key === 'configDir' ? { watch: false } : { configDir: dir };
  const beside = Object.defineProperty({ ...other }, key, getter);
  const inherited = Object.create(Object.defineProperty({}, key, getter));
  return { alone, beside, inherited };
}

function assertReported(call, key, thrown, what) {
  let caught;
  try {
    call();
  } catch (e) {
    caught = e;
  }
  assert.ok(caught !== undefined, `${what}: did not throw`);
  assert.notEqual(caught, thrown, `${what}: the thrown value was rethrown bare`);
  assert.ok(caught instanceof Error, `${what}: threw a non-Error`);
  assert.equal(caught.code, 'ERR_INVALID_ARGUMENT', `${what}: code (message: ${caught.message})`);
  assert.equal(caught.cause, thrown, `${what}: cause is the thrown value`);
  assert.match(caught.message, new RegExp(`options\\.${key}\\b`), `${what}: the message names the option`);
}

describe('an option getter that throws', () => {
  for (const [name, call] of Object.entries(FUNCTIONS)) {
    it(`${name}: ERR_INVALID_ARGUMENT naming the option, the thrown value as cause, for every key`, () => {
      const keys = name === 'onAuthChanged' ? [...KEYS, 'signal'] : KEYS;
      for (const key of keys) {
        for (const shape of ['alone', 'beside', 'inherited']) {
          const thrown = new Error(`getter of ${key}`);
          assertReported(() => call(shapes(key, thrown)[shape]), key, thrown, `${name}, ${key}, ${shape}`);
          // A thrown non-Error is kept as it is too.
          const primitive = `thrown by ${key}`;
          assertReported(
            () => call(shapes(key, primitive)[shape]),
            key,
            primitive,
            `${name}, ${key}, ${shape}, string`,
          );
        }
      }
    });
  }

  it('a later call with good options works (nothing is left pending)', () => {
    const { alone } = shapes('configDir', new Error('x'));
    assert.throws(() => addon.isNeedsAuthCached('s', alone), { code: 'ERR_INVALID_ARGUMENT' });
    addon.markNeedsAuth('s', { configDir: dir });
    assert.equal(addon.isNeedsAuthCached('s', { configDir: dir }), true);
    assert.equal(addon.isNeedsAuthCached('s', { configDir: dir }), true);
  });
});
