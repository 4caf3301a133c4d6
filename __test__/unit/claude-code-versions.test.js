'use strict';
// The newest Claude Code whose rules were checked is named once (lib/claude-code-versions.js); a
// session that reports a newer one (Agent SDK 0.3.x: initializationResult().claude_code_version,
// what system/init carries) is said so once, as a debug line, and nothing fails.
//
//   node --test __test__/unit/claude-code-versions.test.js

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const ROOT = path.resolve(__dirname, '..', '..');
const { NEWEST_CHECKED, compareVersions } = require(path.join(ROOT, 'lib', 'claude-code-versions.js'));
const { tmp } = require('../helpers/tmp.js');

describe('Claude Code newer than the newest checked', () => {
  it('compares dotted versions', () => {
    assert.equal(compareVersions('2.1.335', NEWEST_CHECKED), 1);
    assert.equal(compareVersions('2.2.0', '2.1.334'), 1);
    assert.equal(compareVersions('2.1.334', '2.1.334'), 0);
    assert.equal(compareVersions('2.1.108', '2.1.334'), -1);
    assert.equal(compareVersions('10.0.0', '9.9.9'), 1);
    assert.equal(compareVersions(undefined, '2.1.334'), null);
    assert.equal(compareVersions('garbage', '2.1.334'), null);
  });

  it('a session on a newer one is reported once (MCP_NEEDS_AUTH_DEBUG), an older or unreadable one not at all', (t) => {
    const dir = tmp(t);
    const script = `
      const { reconnectOnAuthChange, signIn } = require(${JSON.stringify(path.join(ROOT, 'sdk.js'))});
      const q = (init) => ({
        async mcpServerStatus() { return [{ name: 'a', status: 'connected', config: { type: 'http' } }]; },
        async reconnectMcpServer() {},
        async mcpAuthenticate() { return { authUrl: null }; },
        initializationResult: init,
      });
      const opts = { configDir: ${JSON.stringify(dir)}, watch: false };
      (async () => {
        const newer = q(async () => ({ claude_code_version: '9.0.1' }));
        reconnectOnAuthChange(newer, opts).close();
        reconnectOnAuthChange(newer, opts).close();
        await (await signIn(newer, 'a', opts)).completed;
        reconnectOnAuthChange(q(async () => ({ claude_code_version: '9.0.1' })), opts).close();
        reconnectOnAuthChange(q(async () => ({ claude_code_version: '2.1.332' })), opts).close();
        reconnectOnAuthChange(q(async () => ({})), opts).close();
        reconnectOnAuthChange(q(async () => { throw new Error('closed'); }), opts).close();
        reconnectOnAuthChange(q(() => { throw new Error('sync'); }), opts).close();
        await new Promise((r) => setTimeout(r, 200));
        console.log('done');
      })();`;
    const r = spawnSync(process.execPath, ['-e', script], {
      encoding: 'utf8',
      timeout: 30_000,
      env: { ...process.env, MCP_NEEDS_AUTH_DEBUG: '1' },
    });
    assert.equal(r.status, 0, r.stderr);
    assert.match(r.stdout, /done/);
    const lines = r.stderr.split('\n').filter((l) => l.includes('newer than'));
    assert.equal(lines.length, 1, r.stderr);
    assert.match(lines[0], new RegExp(`Claude Code 9\\.0\\.1, newer than ${NEWEST_CHECKED.replace(/\./g, '\\.')}`));
    assert.doesNotMatch(r.stderr, /Warning/);
  });
});
