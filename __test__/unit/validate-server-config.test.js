'use strict';
// validateServerConfig(name, config): the check `options.serverConfigs[name]` gets, as an export
// of its own. It throws exactly what passing the config in `serverConfigs` throws (code and
// message, compared with that side channel on the same configs) and returns undefined for every
// config the functions accept.
//
//   node --test __test__/unit/validate-server-config.test.js

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');

const addon = require(path.resolve(__dirname, '..', '..'));
const { validateServerConfig } = addon;

/** What a call threw (`undefined` when it returned), and what it returned. */
function outcome(call) {
  try {
    return { returned: call() };
  } catch (e) {
    return { code: e.code, message: e.message };
  }
}

/** The same config checked through `serverConfigs` (what hosts did before this export). */
function viaServerConfigs(name, config) {
  return outcome(() => {
    addon.cachePath({ configDir: '.', serverConfigs: { [name]: config } });
  });
}

const http = { type: 'http', url: 'https://example.com/mcp' };
const instance = { connect() {} };
instance.self = instance;

const GOOD = [
  ['github', http],
  ['local', { command: 'node', args: ['server.js'] }],
  ['stdio', { type: 'stdio', command: 'x' }],
  ['claude.ai Figma', { type: 'claudeai-proxy', id: 'mcpsrv_A', url: 'https://claude.ai/x' }],
  ['plug', { type: 'http', url: 'https://p.example/mcp', pluginSource: 'p@m', headers: { a: 'b' } }],
  ['plugin-stdio', { command: 'x', pluginSource: 'p@m', env: { A: '1' } }],
  ['sdk', { type: 'sdk', name: 'sdk', instance }],
  ['unknown fields', { type: 'sse', url: 'https://e/sse', somethingNew: { deep: [1, 2] } }],
  ['undefined', undefined],
  ['null', null],
];

const BAD = [
  ['github', { type: 'grpc' }, /^options\.serverConfigs\.github\.type must be 'stdio'.* not "grpc"/],
  ['github', { type: 7 }, /^options\.serverConfigs\.github\.type must be a string/],
  ['claude.ai Figma', { type: 'claudeai-proxy', id: {} }, /^options\.serverConfigs\["claude\.ai Figma"\]\.id must be/],
  ['github', 42, /^options\.serverConfigs\.github must be an object/],
  ['github', 'http', /^options\.serverConfigs\.github must be an object/],
  ['github', [http], /^options\.serverConfigs\.github must be an object .*not an array/],
  [
    'plugin-stdio',
    { command: 'x', pluginSource: 'p@m', env: { f() {} } },
    /^options\.serverConfigs\["plugin-stdio"\] must be JSON data/,
  ],
];

describe('validateServerConfig', () => {
  it('returns undefined for every config serverConfigs accepts', () => {
    for (const [name, config] of GOOD) {
      assert.deepEqual(viaServerConfigs(name, config), { returned: undefined }, `${name}: serverConfigs accepts it`);
      assert.deepEqual(
        outcome(() => validateServerConfig(name, config)),
        { returned: undefined },
        name,
      );
    }
  });

  it('throws the ERR_INVALID_ARGUMENT serverConfigs throws, message and all', () => {
    for (const [name, config, message] of BAD) {
      const expected = viaServerConfigs(name, config);
      assert.equal(expected.code, 'ERR_INVALID_ARGUMENT', `${name}: serverConfigs rejects it`);
      assert.match(expected.message, message);
      assert.deepEqual(
        outcome(() => validateServerConfig(name, config)),
        expected,
        `${name}: ${expected.message}`,
      );
    }
  });

  it('a name that is not a string is ERR_INVALID_ARGUMENT', () => {
    for (const name of [undefined, null, 1, {}, Symbol('x')]) {
      assert.throws(
        () => validateServerConfig(name, http),
        (e) => e.code === 'ERR_INVALID_ARGUMENT' && /^name must be a string/.test(e.message),
        String(name?.toString?.() ?? name),
      );
    }
  });

  it('a config field whose getter throws: ERR_INVALID_ARGUMENT naming it, what it threw as cause', () => {
    const thrown = new Error('getter');
    const config = Object.defineProperty({ url: 'https://e/mcp' }, 'type', {
      get() {
        throw thrown;
      },
      enumerable: true,
    });
    assert.throws(
      () => validateServerConfig('github', config),
      (e) =>
        e.code === 'ERR_INVALID_ARGUMENT' &&
        e.cause === thrown &&
        /^options\.serverConfigs\.github\.type/.test(e.message),
    );
  });
});
