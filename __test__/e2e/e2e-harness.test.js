'use strict';
// Self-test of the end-to-end harness against the REAL Claude Code CLI of both stacks
// (support/stacks.js: 2.1.108 cli.js and the 2.1.332 native binary, fetched on first use), fully offline on 127.0.0.1,
// including where the two versions differ. Each CLI call takes 1-4 s; the file runs in about a minute.
//
//   node --test __test__/e2e/e2e-harness.test.js

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');

const { startMcpServer } = require('../../support/mcp-server.js');
const { makeHome, leftoverHomes, mcpAdd, mcpList, runPrint, claudeBin } = require('../../support/claude.js');
const { STACKS, stackProblems, ensureStacks, STACK_HOOK_TIMEOUT_MS } = require('../../support/stacks.js');
const {
  credentialKey,
  readCredentials,
  writeFreshToken,
  writeExpiredToken,
  credentialsPath,
} = require('../../support/credentials.js');

const NAME = 'protected';
const TOKEN = 'e2e-token-1';
const isMcp = (r) => r.path === '/mcp';

describe('fixture server (no CLI)', () => {
  it('challenges, serves metadata, and speaks JSON-RPC once signed in', async () => {
    const srv = await startMcpServer();
    try {
      const post = (body, token) =>
        fetch(srv.url, {
          method: 'POST',
          headers: {
            'content-type': 'application/json',
            accept: 'application/json, text/event-stream',
            ...(token ? { authorization: `Bearer ${token}` } : {}),
          },
          body: JSON.stringify(body),
        });
      let res = await post({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-03-26' } });
      assert.equal(res.status, 401);
      assert.equal(
        res.headers.get('www-authenticate'),
        `Bearer resource_metadata="${srv.base}/.well-known/oauth-protected-resource/mcp"`,
      );
      await res.arrayBuffer();

      const prm = await (await fetch(`${srv.base}/.well-known/oauth-protected-resource/mcp`)).json();
      assert.deepEqual(prm.authorization_servers, [srv.base]);
      assert.equal(prm.resource, srv.url);
      const asm = await (await fetch(`${srv.base}/.well-known/oauth-authorization-server`)).json();
      assert.equal(asm.registration_endpoint, `${srv.base}/register`);
      assert.deepEqual(asm.code_challenge_methods_supported, ['S256']);
      res = await fetch(`${srv.base}/.well-known/openid-configuration`);
      assert.equal(res.status, 404);
      await res.arrayBuffer();
      res = await fetch(`${srv.base}/register`, {
        method: 'POST',
        headers: { 'content-type': 'application/json' },
        body: JSON.stringify({ redirect_uris: ['http://localhost/cb'] }),
      });
      assert.equal(res.status, 201);
      assert.match((await res.json()).client_id, /^client-/);

      srv.signIn(TOKEN);
      res = await post(
        { jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-03-26' } },
        'wrong',
      );
      assert.equal(res.status, 401);
      await res.arrayBuffer();
      const init = await (
        await post({ jsonrpc: '2.0', id: 1, method: 'initialize', params: { protocolVersion: '2025-03-26' } }, TOKEN)
      ).json();
      assert.equal(init.result.protocolVersion, '2025-03-26');
      assert.deepEqual(init.result.capabilities, { tools: {} });
      res = await post({ jsonrpc: '2.0', method: 'notifications/initialized' }, TOKEN);
      assert.equal(res.status, 202);
      await res.arrayBuffer();
      const tools = await (await post({ jsonrpc: '2.0', id: 2, method: 'tools/list' }, TOKEN)).json();
      assert.deepEqual(
        tools.result.tools.map((t) => t.name),
        ['echo'],
      );
      const call = await (
        await post(
          { jsonrpc: '2.0', id: 3, method: 'tools/call', params: { name: 'echo', arguments: { text: 'hey' } } },
          TOKEN,
        )
      ).json();
      assert.equal(call.result.content[0].text, 'hey');
      const ping = await (await post({ jsonrpc: '2.0', id: 4, method: 'ping' }, TOKEN)).json();
      assert.deepEqual(ping.result, {});
      res = await fetch(srv.url, { headers: { authorization: `Bearer ${TOKEN}` } });
      assert.equal(res.status, 405);
      await res.arrayBuffer();

      assert.equal(
        srv.count((r) => isMcp(r) && r.auth && r.rpc === 'tools/list'),
        1,
      );
      assert.ok(!JSON.stringify(srv.requests).includes(TOKEN), 'request log must not contain tokens');
    } finally {
      await srv.close();
    }
  });

  it("refresh grants: any by default; with refresh: 'issued' only for its own, until the next signIn", async () => {
    const token = (srv, form) =>
      fetch(`${srv.base}/token`, {
        method: 'POST',
        headers: { 'content-type': 'application/x-www-form-urlencoded' },
        body: new URLSearchParams(form).toString(),
      });
    const lax = await startMcpServer();
    const strict = await startMcpServer({ refresh: 'issued' });
    try {
      let res = await token(lax, { grant_type: 'refresh_token', refresh_token: 'made-up' });
      assert.equal(res.status, 200);
      await res.arrayBuffer();
      assert.throws(() => startMcpServer({ refresh: 'sometimes' }), TypeError);

      strict.signIn(TOKEN);
      res = await token(strict, { grant_type: 'refresh_token', refresh_token: 'made-up' });
      assert.equal(res.status, 400);
      assert.equal((await res.json()).error, 'invalid_grant');
      // A code grant issues a refresh token, which then refreshes, until signIn() rotates the token.
      const code = await fetch(`${strict.base}/authorize?redirect_uri=http://localhost/cb&state=s`, {
        redirect: 'manual',
      });
      const granted = new URL(code.headers.get('location')).searchParams.get('code');
      await code.arrayBuffer();
      const first = await (
        await token(strict, { grant_type: 'authorization_code', code: granted, redirect_uri: 'http://localhost/cb' })
      ).json();
      res = await token(strict, { grant_type: 'refresh_token', refresh_token: first.refresh_token });
      assert.equal(res.status, 200);
      const second = await res.json();
      strict.signIn('rotated');
      res = await token(strict, { grant_type: 'refresh_token', refresh_token: second.refresh_token });
      assert.equal(res.status, 400, 'signIn() revokes the refresh tokens issued before it');
      await res.arrayBuffer();
    } finally {
      await lax.close();
      await strict.close();
    }
  });
});

describe('credentials helper (no CLI)', () => {
  it('preserves other keys and supports both write styles', () => {
    const h = makeHome();
    try {
      fs.writeFileSync(
        credentialsPath(h.configDir),
        JSON.stringify({ claudeAiOauth: { accessToken: 'keep-me' }, other: 1 }),
      );
      const url = 'http://127.0.0.1:1/mcp';
      const a = writeFreshToken(h.configDir, 'x', url, { token: 't1', style: 'in-place' });
      assert.equal(a.key, credentialKey('x', { type: 'http', url }));
      assert.equal(fs.statSync(a.file).mode & 0o777, 0o600);
      const b = writeExpiredToken(h.configDir, 'y', url, { token: 't2', style: 'rename' });
      const doc = readCredentials(h.configDir);
      assert.deepEqual(doc.claudeAiOauth, { accessToken: 'keep-me' });
      assert.equal(doc.other, 1);
      assert.ok(doc.mcpOAuth[a.key].expiresAt > Date.now());
      assert.ok(doc.mcpOAuth[b.key].expiresAt < Date.now());
      assert.equal(doc.mcpOAuth[a.key].discoveryState.oauthMetadataFound, true);
      assert.deepEqual(
        fs.readdirSync(h.configDir).filter((f) => f.includes('.tmp.')),
        [],
      );
    } finally {
      h.cleanup();
    }
  });
});

before(() => ensureStacks(), { timeout: STACK_HOOK_TIMEOUT_MS });
// Every HOME is removed once its test ran, and stays removed: no Claude Code outlived its test.
after(() => assert.deepEqual(leftoverHomes(), [], 'temp HOMEs left behind'));

for (const stack of STACKS) {
  describe(`real Claude Code CLI ${stack.claudeCode.version} (offline)`, { timeout: 180_000 }, () => {
    const timings = {};
    const opts = { stack };

    before(() => {
      assert.ok(fs.existsSync(claudeBin(stack)), `missing ${claudeBin(stack)}`);
      assert.deepEqual(stackProblems(stack), []);
    });
    after(() => {
      process.stdout.write(`# CLI ${stack.claudeCode.version} timings (ms): ${JSON.stringify(timings)}\n`);
    });

    /** What a 401 met during OAuth discovery leaves in .credentials.json: the token-less stub. */
    function assertStub(h, srv) {
      const key = credentialKey(NAME, { type: 'http', url: srv.url });
      const stub = readCredentials(h.configDir).mcpOAuth[key];
      assert.ok(stub, `stub under ${key}`);
      assert.equal(stub.accessToken, '');
      assert.equal(stub.refreshToken, undefined);
      assert.equal(stub.discoveryState.oauthMetadataFound, true);
      if (Number.isFinite(stack.tokenlessStubWindowMs)) {
        assert.ok(Math.abs(Date.now() - stub.discoveryState.tokenlessRejectedAt) < 60_000, 'tokenlessRejectedAt: now');
      } else {
        assert.equal(stub.discoveryState.tokenlessRejectedAt, undefined);
      }
    }

    // What Claude Code dials on a 401: initialize (401) -> PRM -> AS metadata (-> DCR on 2.1.108).
    const discovery = [
      'POST /mcp',
      'GET /.well-known/oauth-protected-resource/mcp',
      'GET /.well-known/oauth-authorization-server',
      ...(stack.registersClientOnNeedsAuth ? ['POST /register'] : []),
    ];

    it('(a) mcp add + mcp list against a protected server: Needs authentication, the stub, the entry', async (t) => {
      const srv = await startMcpServer();
      const h = makeHome();
      t.after(async () => {
        await srv.close();
        h.cleanup();
      });
      const add = await mcpAdd(h.env, NAME, srv.url, opts);
      timings.mcpAdd = add.ms;
      assert.equal(add.code, 0, add.stderr);
      assert.equal(srv.count(), 0, 'mcp add must not dial the server');

      const list = await mcpList(h.env, opts);
      timings.mcpList = list.ms;
      t.diagnostic(`mcp add ${add.ms} ms, mcp list ${list.ms} ms`);
      assert.equal(list.code, 0, list.stderr);
      assert.match(list.stdout, new RegExp(`${NAME}: .*Needs authentication`));
      assert.deepEqual(
        srv.requests.map((r) => `${r.method} ${r.path}`),
        discovery,
      );
      assertStub(h, srv);

      const cache = fs.existsSync(h.cachePath) ? JSON.parse(fs.readFileSync(h.cachePath, 'utf8')) : {};
      if (stack.listAwaitsNeedsAuthWrite || cache[NAME]) {
        assert.equal(typeof cache[NAME].timestamp, 'number', 'mcp list wrote the needs-auth entry');
        assert.ok(Math.abs(Date.now() - cache[NAME].timestamp) < 60_000);
      } else {
        t.diagnostic('mcp list exited before its needs-auth write landed (2.1.108 does not await it)');
      }
    });

    describe('claude -p: the start-up loop', () => {
      let srv;
      let h;
      before(async () => {
        srv = await startMcpServer();
        h = makeHome();
        const add = await mcpAdd(h.env, NAME, srv.url, opts);
        assert.equal(add.code, 0, add.stderr);
      });
      after(async () => {
        if (srv) await srv.close();
        if (h) h.cleanup();
      });

      it('(b) a 401 writes the needs-auth entry and the stub', async (t) => {
        const r = await runPrint(h.env, NAME, opts);
        timings.printNeedsAuth = r.ms;
        t.diagnostic(`claude -p (401) ${r.ms} ms, exit ${r.code}`);
        assert.equal(r.timedOut, false);
        assert.equal(r.needsAuth, true, 'debug log shows the server needs auth');
        assert.deepEqual(
          srv.requests.map((x) => `${x.method} ${x.path}`),
          discovery,
        );
        const cache = JSON.parse(fs.readFileSync(h.cachePath, 'utf8'));
        assert.ok(Math.abs(Date.now() - cache[NAME].timestamp) < 60_000, 'the entry is fresh');
        assertStub(h, srv);
      });

      it('(c) cached needs-auth + fresh token: claude -p skips and never dials /mcp', async (t) => {
        srv.signIn(TOKEN);
        writeFreshToken(h.configDir, NAME, srv.url, { token: TOKEN, style: 'in-place' });
        const before = srv.count(isMcp);
        const r = await runPrint(h.env, NAME, opts);
        timings.printSkipped = r.ms;
        t.diagnostic(`claude -p (skipped) ${r.ms} ms, exit ${r.code}`);
        assert.equal(r.timedOut, false);
        assert.ok(r.debug.length > 0, 'debug file written');
        assert.equal(r.skipped, true, 'debug log shows Skipping connection (cached needs-auth)');
        assert.equal(r.connected, false);
        assert.equal(srv.count(isMcp) - before, 0, 'zero /mcp requests while cached');
      });

      it('(d) cache file deleted: claude -p connects with the bearer token', async (t) => {
        fs.rmSync(h.cachePath);
        const start = srv.requests.length;
        const r = await runPrint(h.env, NAME, opts);
        timings.printConnected = r.ms;
        t.diagnostic(`claude -p (connected) ${r.ms} ms, exit ${r.code}`);
        assert.equal(r.timedOut, false);
        assert.equal(r.skipped, false);
        assert.equal(r.connected, true, 'debug log shows Successfully connected');
        const seen = srv.requests.slice(start).filter(isMcp);
        assert.ok(seen.length > 0);
        assert.ok(
          seen.every((x) => x.auth),
          'every /mcp request carried the valid bearer',
        );
        assert.ok(seen.some((x) => x.rpc === 'initialize'));
        assert.ok(seen.some((x) => x.rpc === 'tools/list'));
        assert.equal(fs.existsSync(h.cachePath), false, 'a connect with no entry writes no cache file');
      });

      it(`(e) an expired entry: claude -p connects and ${stack.removesEntryOnConnect ? 'removes' : 'keeps'} it`, async () => {
        const old = { timestamp: Date.now() - 16 * 60_000 }; // past the 15 min TTL
        fs.writeFileSync(h.cachePath, JSON.stringify({ [NAME]: old }));
        const r = await runPrint(h.env, NAME, opts);
        assert.equal(r.timedOut, false);
        assert.equal(r.connected, true, 'an expired entry is not honoured');
        const after = JSON.parse(fs.readFileSync(h.cachePath, 'utf8'));
        if (stack.removesEntryOnConnect) assert.deepEqual(after, {}, '2.1.120+ removes the entry after a connect');
        else assert.deepEqual(after, { [NAME]: old }, '2.1.108 leaves the file alone');
      });
    });
  });
}
