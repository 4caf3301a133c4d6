'use strict';
// The addon's configDirFor: Claude Code's config dir rule for a given environment, the same rule
// (one Rust function) every other function applies to this process's environment.
//
//   node --test __test__/unit/config-dir.test.js

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const os = require('node:os');
const path = require('node:path');

const addon = require(path.resolve(__dirname, '..', '..'));

const HOME_VAR = process.platform === 'win32' ? 'USERPROFILE' : 'HOME';

describe('configDirFor', () => {
  it("without env: this process's config dir, the one cachePath() uses", (t) => {
    const saved = process.env.CLAUDE_CONFIG_DIR;
    t.after(() => {
      if (saved === undefined) delete process.env.CLAUDE_CONFIG_DIR;
      else process.env.CLAUDE_CONFIG_DIR = saved;
    });
    for (const value of [undefined, path.join(os.tmpdir(), 'cfg-a'), '']) {
      if (value === undefined) delete process.env.CLAUDE_CONFIG_DIR;
      else process.env.CLAUDE_CONFIG_DIR = value;
      const dir = addon.configDirFor();
      assert.equal(addon.cachePath(), path.join(dir, 'mcp-needs-auth-cache.json'), `CLAUDE_CONFIG_DIR=${value}`);
      assert.equal(dir, value ?? path.join(os.homedir(), '.claude'));
      assert.equal(addon.configDirFor(undefined), addon.configDirFor(null));
    }
  });

  it('with env: CLAUDE_CONFIG_DIR ?? join(home, .claude), NFC, a set but empty value kept', () => {
    const home = path.join(os.tmpdir(), 'h');
    assert.equal(addon.configDirFor({ [HOME_VAR]: home }), path.join(home, '.claude'));
    assert.equal(addon.configDirFor({ [HOME_VAR]: home, CLAUDE_CONFIG_DIR: '/cfg/x' }), '/cfg/x');
    assert.equal(addon.configDirFor({ [HOME_VAR]: home, CLAUDE_CONFIG_DIR: '' }), '');
    assert.equal(addon.configDirFor({ [HOME_VAR]: home, CLAUDE_CONFIG_DIR: undefined }), path.join(home, '.claude'));
    assert.equal(addon.configDirFor({ [HOME_VAR]: home, CLAUDE_CONFIG_DIR: null }), path.join(home, '.claude'));
    assert.equal(addon.configDirFor({ CLAUDE_CONFIG_DIR: '/tmp/cafe\u0301' }), '/tmp/caf\u00e9');
    assert.equal(addon.configDirFor({}), path.join(os.homedir(), '.claude'), "no home variable: this process's home");
  });

  it('rejects an env that is not an object, or a variable that is not a string', () => {
    for (const bad of ['HOME=/h', 5, true]) {
      assert.throws(() => addon.configDirFor(bad), { code: 'ERR_INVALID_ARGUMENT', message: /env must be an object/ });
    }
    assert.throws(() => addon.configDirFor({ [HOME_VAR]: 5 }), {
      code: 'ERR_INVALID_ARGUMENT',
      message: new RegExp(`env\\.${HOME_VAR} must be a string`),
    });
  });
});
