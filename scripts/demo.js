#!/usr/bin/env node
'use strict';
// `npm run demo`: the bug report's story, end to end, on this machine, offline (127.0.0.1 only),
// with the real Claude Code CLI from node_modules (the devDependency @anthropic-ai/claude-code
// 2.1.108: support/stacks.js DEMO) and a throw-away HOME. Never touches ~/.claude.
//
//   1. a protected MCP server starts            4. `claude -p` skips the server: THE BUG
//   2. `claude mcp add` + `claude mcp list`     5. an onAuthChanged subscription starts
//      writes the needs-auth entry              6. sign-in again: the addon removes the entry
//   3. the user signs in elsewhere              7. `claude -p` connects: THE FIX
//
// Leaves nothing behind: the server is closed and the temp HOME removed. Exit 0 on success.

const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const addon = require(ROOT);
const { startMcpServer } = require(path.join(ROOT, 'support', 'mcp-server.js'));
const { makeHome, mcpAdd, mcpList, runPrint, killAll } = require(path.join(ROOT, 'support', 'claude.js'));
const { writeFreshToken } = require(path.join(ROOT, 'support', 'credentials.js'));
const { DEMO } = require(path.join(ROOT, 'support', 'stacks.js'));

const NAME = 'protected';
const t0 = Date.now();
const secs = () => `${((Date.now() - t0) / 1000).toFixed(1).padStart(5)}s`;
let stepNo = 0;
const step = (title) => console.log(`\n[${secs()}] Step ${++stepNo}. ${title}`);
const say = (line) => console.log(`           ${line}`);
const isMcp = (r) => r.path === '/mcp';
const delay = (ms) => new Promise((r) => setTimeout(r, ms));

async function waitFor(pred, timeoutMs) {
  const end = Date.now() + timeoutMs;
  while (Date.now() < end) {
    if (pred()) return true;
    await delay(25);
  }
  return false;
}

async function main() {
  let srv;
  let h;
  let sub;
  try {
    console.log('mcp-needs-auth demo: Claude Code keeps skipping an MCP server after you sign in.');
    console.log('Everything runs offline on 127.0.0.1 in a temporary HOME (your ~/.claude is not used).');

    step('Start an OAuth-protected MCP server');
    srv = await startMcpServer();
    h = makeHome();
    const opts = { configDir: h.configDir };
    say(`server: ${srv.url}  (answers 401 + OAuth metadata until signed in)`);
    say(`HOME:   ${h.home}`);

    step('claude mcp add, then claude mcp list (Claude Code dials the server and gets a 401)');
    const add = await mcpAdd(h.env, NAME, srv.url, { stack: DEMO });
    if (add.code !== 0) throw new Error(`claude mcp add failed: ${add.stderr}`);
    const list = await mcpList(h.env, { stack: DEMO });
    const line = (list.stdout.split('\n').find((l) => l.startsWith(`${NAME}:`)) || '').trim();
    say(`claude mcp list: "${line}"`);
    const entries = addon.listNeedsAuth(opts);
    say(
      `Claude Code wrote ${path.basename(addon.cachePath(opts))}: ${JSON.stringify(entries.map((e) => ({ server: e.server, cached: e.cached, expiresInS: Math.round((e.expiresAt - Date.now()) / 1000) })))}`,
    );
    say(`server saw ${srv.count(isMcp)} /mcp request(s) so far`);

    step('Sign in elsewhere (as /mcp does): the server accepts a token, .credentials.json holds it');
    srv.signIn('demo-token-1');
    writeFreshToken(h.configDir, NAME, srv.url, { token: 'demo-token-1' });
    say('fresh access token saved for "protected" (expires in 1 h)');

    step('claude -p: does Claude Code use the server now?');
    let before = srv.count(isMcp);
    let r = await runPrint(h.env, NAME, { stack: DEMO });
    const bugRequests = srv.count(isMcp) - before;
    say(
      `Claude Code: ${r.skipped ? 'MCP server "protected": Skipping connection (cached needs-auth)' : r.connected ? 'connected' : 'did not connect'}`,
    );
    say(`server saw ${bugRequests} /mcp request(s) from it`);
    if (!r.skipped || bugRequests !== 0) throw new Error('expected the bug (skip, 0 requests) to reproduce');
    say('=> THE BUG: signed in, yet skipped for up to 15 minutes without even trying.');
    const d = addon.diagnose(NAME, opts);
    say(
      `addon diagnose(): skipped=${d.skipped}, ${d.reasons.map((x) => `${x.kind} (superseded=${x.superseded}, ${Math.round(x.expiresInMs / 1000)} s left)`).join('; ')}`,
    );

    step('The fix: a host keeps an onAuthChanged subscription (autoInvalidate) running');
    const events = [];
    sub = addon.onAuthChanged((ev) => events.push(ev), { ...opts, autoInvalidate: true });
    say('subscribed; it watches the credentials store and the cache of this config dir');

    step('Sign in again (token refresh / re-auth, from any process)');
    srv.signIn('demo-token-2');
    writeFreshToken(h.configDir, NAME, srv.url, { token: 'demo-token-2' });
    const got = await waitFor(() => events.some((e) => e.reason === 'credentials-changed'), 10_000);
    if (!got) throw new Error('no credentials-changed event within 10 s');
    const ev = events.find((e) => e.reason === 'credentials-changed');
    say(
      `addon: event ${ev.reason} for [${ev.servers.join(', ')}]; needs-auth entry removed: ${!addon.isNeedsAuthCached(NAME, opts)}`,
    );
    say(`cache now: ${JSON.stringify(addon.listNeedsAuth(opts).map((e) => e.server))}`);

    step('claude -p again, a new process, nothing else done');
    before = srv.count(isMcp);
    const start = srv.requests.length;
    r = await runPrint(h.env, NAME, { stack: DEMO });
    const fixRequests = srv.count(isMcp) - before;
    const seen = srv.requests.slice(start).filter(isMcp);
    const rpcs = seen.map((x) => x.rpc || x.method);
    const bearer = seen.every((x) => x.auth)
      ? 'all with the bearer token'
      : `${seen.filter((x) => x.auth).length} with the bearer token`;
    say(
      `Claude Code: ${r.connected ? 'MCP server "protected": Successfully connected' : r.skipped ? 'still skipped' : 'did not connect'}`,
    );
    say(`server saw ${fixRequests} /mcp request(s), ${bearer}: ${rpcs.join(', ')}`);
    if (!r.connected || fixRequests === 0) throw new Error('expected the fix to connect');
    say('=> THE FIX: connected right after the sign-in.');

    console.log(`\nSummary: bug = skipped with ${bugRequests} requests; fix = connected with ${fixRequests} requests.`);
    console.log('Also available: purgeStale() at start-up, mcp-needs-auth/register as a preload, and');
    console.log('mcp-needs-auth/sdk (prepareQuery, reconnectOnAuthChange) for live Agent SDK sessions.');
  } finally {
    if (sub) sub.close();
    killAll();
    if (srv) await srv.close();
    if (h) h.cleanup();
    const left = h && fs.existsSync(h.home);
    console.log(`\n[${secs()}] Cleaned up: server closed, temp HOME ${left ? 'NOT removed' : 'removed'}.`);
  }
}

main().then(
  () => process.exit(0),
  (err) => {
    console.error(`\ndemo failed: ${err?.stack ? err.stack : err}`);
    process.exit(1);
  },
);
