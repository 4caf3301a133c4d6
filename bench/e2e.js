'use strict';
// Bench section `e2e` (`node bench/run.js e2e`): end to end, a sign-in saved by ANOTHER process →
// a live Agent SDK session reports the server `connected`, on both stacks of support/stacks.js
// (Agent SDK 0.2.104 + Claude Code 2.1.108, Agent SDK 0.3.334 + its Claude Code 2.1.334), offline on
// 127.0.0.1, two ways measured in the same run:
//
//   ours  reconnectOnAuthChange(q, { env, onReconnect }) from sdk.js, subscribed for the session's life.
//         In the same session, the pushed status: onServerStatus(q, onStatus, { env }), the
//         moment it pushes the server `connected` after the save; beside it, measured in the same
//         trials, a host's 1 s status poll (what claude-agent-acp does while a sign-in runs: a
//         loop calling mcpServerStatus() every POLL_MS, first call at the trial's start), the
//         moment one of its answers first says `connected`. Both only observe what the reconnect did.
//   acp   what claude-agent-acp 0.101.0 does about a needs-auth server (dist/acp-agent.js,
//         authenticateMcpServers → authenticateMcpServer → waitForMcpAuthentication), reproduced
//         here call for call: mcpServerStatus(); for a `needs-auth` server mcpAuthenticate(name);
//         when that asks for user action, poll mcpServerStatus() every MCP_OAUTH_STATUS_POLL_MS
//         (1 s) until the server is connected (done), failed/disabled/gone (give up) or 10 min pass.
//         It never calls reconnectMcpServer. (The client is taken to support URL elicitation, the
//         case where ACP runs this flow at all; the user ignores the URL and signs in elsewhere.
//         ACP starts the flow after session/new and after `/mcp reconnect`; here each trial starts
//         it afresh, as right after session/new.)
//   poll  not ACP: the fastest a 1 s poll can be. Every second mcpServerStatus(); for a
//         `needs-auth` server, read .credentials.json and, when the server's access token changed
//         since the last poll, reconnectMcpServer(name) (what a polling host must add to ACP's
//         loop for a sign-in saved elsewhere to count at all).
//
// `connected` is observed the same way for all: when the way's own code learns it (ours: the
// onReconnect outcome {ok: true}; poll: its reconnectMcpServer resolving; acp: the poll that
// returns `connected`), then confirmed by one
// mcpServerStatus() call (a read: it never reconnects); a trial whose confirmation is not
// `connected` is a miss. Latency runs from the writer's clock just before it saves the token
// (performance.timeOrigin + performance.now(), sent over IPC, as section 3 does) to that moment.
//
// One session per (stack, way), its own HOME and loopback OAuth server (refresh: 'issued', so a
// refresh grant never rescues a rejected token). Per trial:
//   reset   the server accepts a new token only (the one the session holds is rejected) and the
//           session is told reconnectMcpServer(name): its Claude Code meets the 401, its refresh is
//           refused, it reports `needs-auth` and writes its needs-auth entry and token-less stub;
//           the trial starts once the session reports `needs-auth` and ours has nothing queued.
//   start   acp: its flow starts (status, mcpAuthenticate, first poll); poll: its loop starts (first
//           poll); ours: nothing to start (it listens for the session's life).
//   save    after a uniform random 0–1 s (so the save's phase against the 1 s poll is uniform),
//           a separate child process (this file, forked as `writer`) saves the new token into
//           .credentials.json as that stack's Claude Code does (2.1.108 in place, 2.1.334 temp +
//           rename; support/credentials.js), no needs-auth change.
//   end     `connected` observed, or TIMEOUT_MS after the save (a miss).
// Also recorded: when the server first saw the new bearer (the session dialled with it).
//
// Every session is closed, every child killed and every temp dir removed, also on failure.

const fs = require('node:fs');
const path = require('node:path');
const { fork } = require('node:child_process');
const { performance } = require('node:perf_hooks');
const crypto = require('node:crypto');

const ROOT = path.resolve(__dirname, '..');
const NAME = 'protected';
const POLL_MS = 1_000; // claude-agent-acp 0.101.0: MCP_OAUTH_STATUS_POLL_MS
const ACP_FLOW_TIMEOUT_MS = 10 * 60_000; // claude-agent-acp 0.101.0: MCP_OAUTH_TIMEOUT_MS
const TIMEOUT_MS = 2_500; // per trial, from the save: a later `connected` (or none) is a miss
const WAYS = ['ours', 'acp', 'poll'];

const nowHr = () => performance.timeOrigin + performance.now();
const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

/** Resolves `p`, or `fallback` after `ms`. */
function within(p, ms, fallback) {
  let t;
  return Promise.race([p, new Promise((r) => (t = setTimeout(r, ms, fallback)))]).finally(() => clearTimeout(t));
}

// ---- the writer (a child process) --------------------------------------------------------------

function writerMain() {
  const { writeFreshToken } = require(path.join(ROOT, 'support', 'credentials.js'));
  process.on('message', (m) => {
    if (m === 'exit') return process.exit(0);
    const t0 = nowHr();
    writeFreshToken(m.configDir, m.server, m.url, { token: m.token, style: m.style });
    process.send({ i: m.i, t0, t1: nowHr() });
  });
  process.on('disconnect', () => process.exit(0));
  process.send('ready');
}

function startWriter() {
  const child = fork(__filename, ['writer'], { stdio: ['ignore', 'inherit', 'inherit', 'ipc'] });
  const ready = new Promise((resolve, reject) => {
    child.once('message', resolve);
    child.once('exit', (code) => reject(new Error(`e2e writer exited (${code})`)));
  });
  return {
    ready,
    /** Asks for the save; resolves the writer's {t0, t1}. */
    save(msg) {
      const reply = new Promise((resolve) => {
        const on = (m) => {
          if (m && m.i === msg.i) {
            child.off('message', on);
            resolve(m);
          }
        };
        child.on('message', on);
      });
      child.send(msg);
      return within(reply, 10_000, null);
    },
    async stop() {
      if (child.exitCode !== null || child.signalCode !== null) return;
      const exited = new Promise((r) => child.once('exit', r));
      try {
        child.send('exit');
      } catch {
        /* channel gone */
      }
      if ((await within(exited, 3_000, 'late')) === 'late') child.kill('SIGKILL');
    },
  };
}

// ---- claude-agent-acp 0.101.0's way ------------------------------------------------------------

/**
 * authenticateMcpServers + authenticateMcpServer + waitForMcpAuthentication of
 * claude-agent-acp 0.101.0 (dist/acp-agent.js), for one session whose ACP-provided servers are
 * `requested`. `hooks.onPoll(status)` sees every poll; resolves what the flow ends with:
 * 'connected', 'gave-up' (failed/disabled/gone), 'no-user-action', 'aborted' or 'timeout'.
 */
async function acpWay(query, requested, signal, hooks = {}) {
  if (typeof query.mcpAuthenticate !== 'function') return 'no-mcp-oauth'; // supportsMcpOAuth
  const statuses = await query.mcpServerStatus();
  for (const status of statuses) {
    if (status.status !== 'needs-auth' || !requested.has(status.name)) continue;
    const login = await query.mcpAuthenticate(status.name);
    if (!login.requiresUserAction) return 'no-user-action';
    if (!login.authUrl) throw new Error('Claude Code requested user action without returning an authorization URL');
    // ACP now shows the URL (a URL elicitation) and waits on the status; the user never opens it.
    return waitForMcpAuthentication(query, status.name, signal, hooks);
  }
  return 'nothing-to-do';
}

async function waitForMcpAuthentication(query, serverName, signal, hooks) {
  const deadline = Date.now() + ACP_FLOW_TIMEOUT_MS;
  while (!signal.aborted && Date.now() < deadline) {
    const status = (await query.mcpServerStatus()).find((server) => server.name === serverName);
    if (hooks.onPoll) hooks.onPoll(status);
    if (!status || status.status === 'failed' || status.status === 'disabled') return 'gave-up';
    if (status.status === 'connected') return 'connected';
    if (!(await waitUnlessAborted(POLL_MS, signal))) return 'aborted';
  }
  return signal.aborted ? 'aborted' : 'timeout';
}

function waitUnlessAborted(ms, signal) {
  if (signal.aborted) return Promise.resolve(false);
  return new Promise((resolve) => {
    const onAbort = () => {
      clearTimeout(timer);
      resolve(false);
    };
    const timer = setTimeout(() => {
      signal.removeEventListener('abort', onAbort);
      resolve(true);
    }, ms);
    signal.addEventListener('abort', onAbort, { once: true });
  });
}

// ---- the fastest 1 s poll ----------------------------------------------------------------------

/** The server's access tokens in .credentials.json, as one digest (null: none); kept in memory only. */
function tokenPrint(credPath, server) {
  let doc;
  try {
    doc = JSON.parse(fs.readFileSync(credPath, 'utf8'));
  } catch {
    return null; // missing, or caught half-written: the next poll reads it again
  }
  const tokens = Object.values(doc?.mcpOAuth ?? {})
    .filter((e) => e && e.serverName === server && e.accessToken)
    .map((e) => e.accessToken);
  return tokens.length ? crypto.createHash('sha256').update(tokens.join('\n')).digest('hex') : null;
}

/**
 * Every POLL_MS: mcpServerStatus(); `connected` ends it; for `needs-auth`, when the server's
 * access token in `credPath` changed since the loop started or last looked, reconnectMcpServer.
 * `hooks.onReconnected()` runs as that reconnect resolves.
 */
async function pollWay(query, server, credPath, signal, hooks = {}) {
  let last = tokenPrint(credPath, server);
  while (!signal.aborted) {
    const status = (await query.mcpServerStatus()).find((s) => s.name === server);
    if (hooks.onPoll) hooks.onPoll(status);
    if (status?.status === 'connected') return 'connected';
    if (status?.status === 'needs-auth') {
      const now = tokenPrint(credPath, server);
      if (now !== null && now !== last) {
        last = now;
        try {
          await query.reconnectMcpServer(server);
          if (hooks.onReconnected) hooks.onReconnected();
          return 'reconnected';
        } catch {
          /* still needs auth: go on polling */
        }
      }
    }
    if (!(await waitUnlessAborted(POLL_MS, signal))) return 'aborted';
  }
  return 'aborted';
}

/** A host's 1 s status poll: mcpServerStatus() every POLL_MS until `server` is connected (or the abort). */
async function statusPollWay(query, server, signal, hooks = {}) {
  while (!signal.aborted) {
    const status = (await query.mcpServerStatus()).find((s) => s.name === server);
    if (hooks.onPoll) hooks.onPoll(status);
    if (status?.status === 'connected') return 'connected';
    if (!(await waitUnlessAborted(POLL_MS, signal))) return 'aborted';
  }
  return 'aborted';
}

// ---- one session, one way ----------------------------------------------------------------------

async function runWay(stack, way, writer, trials, log) {
  const sdk = require(path.join(ROOT, 'sdk.js'));
  const { startMcpServer } = require(path.join(ROOT, 'support', 'mcp-server.js'));
  const { makeHome } = require(path.join(ROOT, 'support', 'claude.js'));
  const { openSession } = require(path.join(ROOT, 'support', 'session.js'));

  let trial = null; // the trial being measured: {token, firstAuth, seen}
  const srv = await startMcpServer({
    refresh: 'issued',
    beforeMcp: (req) => {
      if (trial && trial.firstAuth == null && req.headers.authorization === `Bearer ${trial.token}`) {
        trial.firstAuth = nowHr();
      }
    },
  });
  const h = makeHome({ configDir: true });
  const style = stack.agentSdk.claudeCode.version === '2.1.108' ? 'in-place' : 'rename';
  const out = { way, style, trials: [], spurious: [] };
  let session = null;
  let sub = null;
  let statusSub = null;
  const flows = new Set(); // acp flows still running: {abort, done}
  const started = Date.now();
  try {
    const mcpServers = { [NAME]: { type: 'http', url: srv.url } };
    const t0 = Date.now();
    // close() resolves once its Claude Code exited: 2.1.108 writes its MCP logs under $HOME/.cache
    // after the SDK's close(), which would bring back a HOME removed too early (support/session.js).
    session = await openSession(stack, h.env, { mcpServers });
    const first = await within(session.settled(NAME, 30_000), 40_000, undefined);
    if (first?.status !== 'needs-auth') throw new Error(`${stack.name}/${way}: the session reports ${first?.status}`);
    out.sessionStartMs = Date.now() - t0;
    const q = session.q;
    const statusOf = async () => (await within(session.status(NAME), 10_000, undefined))?.status;

    if (way === 'ours') {
      sub = sdk.reconnectOnAuthChange(q, {
        env: h.env,
        onReconnect: (o) => {
          const t = nowHr();
          if (o.server !== NAME) return;
          if (trial && !trial.seen) trial.seen = { t, ok: o.ok, attempts: o.attempts };
          else out.spurious.push({ ok: o.ok, attempts: o.attempts, during: trial ? 'after' : 'reset' });
        },
      });
      statusSub = sdk.onServerStatus(
        q,
        (e) => {
          const t = nowHr();
          if (e.server === NAME && e.status === 'connected' && trial && !trial.pushed) {
            trial.pushed = { t, reason: e.reason };
          }
        },
        { env: h.env },
      );
    }

    for (let i = 0; i < trials; i++) {
      // reset: only the new token is accepted now; the session meets the 401 and reports needs-auth.
      const token = `bench-e2e-${i}-${crypto.randomBytes(6).toString('hex')}`;
      srv.signIn(token);
      try {
        await within(q.reconnectMcpServer(NAME), 15_000, null);
      } catch {
        /* expected: "Server status: needs-auth" */
      }
      await sleep(150); // the reset's own writes reach the watcher
      if (sub) await within(sub.settled(), 10_000, null);
      // The bench's own reconnect is one this package cannot see: a host says so with refresh().
      if (statusSub) await within(statusSub.refresh(), 10_000, null);
      const before = await statusOf();
      if (before !== 'needs-auth') {
        out.trials.push({ i, miss: `reset left ${before}` });
        continue;
      }
      const cur = { token, firstAuth: null, seen: null, polls: 0, pushed: null, polled: null, statusPolls: 0 };
      trial = cur;

      // start: acp's flow (its first poll is its phase reference); ours is already listening.
      let flow = null;
      let phaseRef = nowHr();
      if (way !== 'ours') {
        const ac = new AbortController();
        let firstPoll;
        const polled = new Promise((r) => {
          firstPoll = r;
        });
        const onPoll = (st) => {
          const t = nowHr();
          cur.polls++;
          firstPoll(t);
          if (way === 'acp' && st?.status === 'connected' && !cur.seen) cur.seen = { t, ok: true };
        };
        const onReconnected = () => {
          if (!cur.seen) cur.seen = { t: nowHr(), ok: true };
        };
        const credPath = path.join(h.configDir, '.credentials.json');
        const run =
          way === 'acp'
            ? acpWay(q, new Set([NAME]), ac.signal, { onPoll })
            : pollWay(q, NAME, credPath, ac.signal, { onPoll, onReconnected });
        const done = run.then(
          (r) => r,
          (err) => `error: ${err?.message ?? err}`,
        );
        flow = { abort: () => ac.abort(), done };
        flows.add(flow);
        const ref = await within(Promise.race([polled, done.then(() => null)]), 15_000, null);
        if (ref == null) {
          trial = null;
          out.trials.push({ i, miss: `${way} flow did not poll (${await within(done, 1, 'running')})` });
          flow.abort();
          await within(done, 5_000, null);
          flows.delete(flow);
          continue;
        }
        phaseRef = ref;
      } else {
        // A host's 1 s status poll beside the pushed status: its first call is the phase reference.
        const ac = new AbortController();
        let firstPoll;
        const polled = new Promise((r) => {
          firstPoll = r;
        });
        const done = statusPollWay(q, NAME, ac.signal, {
          onPoll: (st) => {
            const t = nowHr();
            cur.statusPolls++;
            firstPoll(t);
            if (st?.status === 'connected' && !cur.polled) cur.polled = { t };
          },
        }).then(
          (r) => r,
          (err) => `error: ${err?.message ?? err}`,
        );
        flow = { abort: () => ac.abort(), done };
        flows.add(flow);
        const ref = await within(Promise.race([polled, done.then(() => null)]), 15_000, null);
        if (ref != null) phaseRef = ref;
      }

      // save, at a uniform random phase of the 1 s poll
      const phase = Math.random() * POLL_MS;
      await sleep(Math.max(0, phaseRef + phase - nowHr()));
      const sent = await writer.save({ i, configDir: h.configDir, server: NAME, url: srv.url, token, style });
      if (!sent) throw new Error(`${stack.name}/${way}: the writer did not answer`);
      const deadline = nowHr() + TIMEOUT_MS;
      const ended = () => cur.seen && (way !== 'ours' || (cur.pushed && cur.polled));
      while (!ended() && nowHr() < deadline) await sleep(5);
      trial = null;
      const row = { i, phaseMs: phase, firstAuthMs: cur.firstAuth == null ? null : cur.firstAuth - sent.t0 };
      if (way !== 'ours') row.polls = cur.polls;
      if (way === 'ours') {
        // Latencies of the pushed status and of the 1 s status poll, from the same save.
        row.pushedMs = cur.pushed && cur.pushed.t >= sent.t0 ? cur.pushed.t - sent.t0 : null;
        if (cur.pushed) row.pushedReason = cur.pushed.reason;
        row.statusPollMs = cur.polled && cur.polled.t >= sent.t0 ? cur.polled.t - sent.t0 : null;
        row.statusPolls = cur.statusPolls;
      }
      if (cur.seen?.attempts) row.attempts = cur.seen.attempts;
      if (!cur.seen) {
        row.miss = 'timeout';
        row.statusAtTimeout = await statusOf();
      } else if (!cur.seen.ok) {
        row.miss = 'reconnect failed';
      } else {
        const confirmed = await statusOf();
        if (cur.seen.t < sent.t0) row.miss = 'connected before the save';
        else if (confirmed === 'connected') row.ms = cur.seen.t - sent.t0;
        else row.miss = `confirmation said ${confirmed}`;
      }
      out.trials.push(row);
      if (flow) {
        flow.abort();
        row.flow = await within(flow.done, 5_000, 'still running');
        flows.delete(flow);
      }
      if (sub) await within(sub.settled(), 10_000, null);
    }
    out.finalStatus = await statusOf();
  } finally {
    trial = null;
    for (const f of flows) f.abort();
    await within(Promise.all([...flows].map((f) => f.done)), 5_000, null);
    if (statusSub) statusSub.close();
    if (sub) sub.close();
    if (session) await session.close();
    await srv.close();
    h.cleanup();
  }
  out.seconds = (Date.now() - started) / 1000;
  const ok = out.trials.filter((t) => t.ms != null);
  log(
    `   ${stack.agentSdk.version}/${stack.agentSdk.claudeCode.version} ${way}: ${ok.length}/${out.trials.length} connected` +
      (ok.length ? `, median ${median(ok.map((t) => t.ms)).toFixed(0)} ms` : '') +
      ` (${out.seconds.toFixed(0)} s)`,
  );
  return out;
}

function median(xs) {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.min(s.length - 1, Math.max(0, Math.ceil(0.5 * s.length) - 1))];
}

/**
 * The section: for each stack, each way in its own session, `trials` trials. `stats(samples)` is
 * run.js's ({n, median, p99, max, min}); summaries are over the connected trials, plus the same
 * over all trials with a miss counted as never (null when that quantile is a miss).
 */
async function benchE2e({ quick = false, log = console.error, stats } = {}) {
  const { STACKS, ensureStack } = require(path.join(ROOT, 'support', 'stacks.js'));
  const trials = quick ? 5 : 20;
  // Fetched on first use (support/stack-install.js), checked against the pins.
  for (const stack of STACKS) await ensureStack(stack, { log });
  const res = { trials, timeoutMs: TIMEOUT_MS, pollMs: POLL_MS, acpVersion: acpVersion(STACKS), stacks: [] };
  const writer = startWriter();
  try {
    if ((await within(writer.ready, 15_000, null)) !== 'ready') throw new Error('the e2e writer did not start');
    for (const stack of STACKS) {
      // The Claude Code the stack's SDK sessions run (0.3.334: its own 2.1.334).
      const row = {
        stack: stack.name,
        agentSdk: stack.agentSdk.version,
        claudeCode: stack.agentSdk.claudeCode.version,
      };
      for (const way of WAYS) {
        const r = await runWay(stack, way, writer, trials, log);
        const lat = r.trials.filter((t) => t.ms != null).map((t) => t.ms);
        const all = r.trials.map((t) => (t.ms != null ? t.ms : Number.POSITIVE_INFINITY));
        const allStats = stats(all);
        const fin = (x) => (Number.isFinite(x) ? x : null);
        const dial = r.trials.filter((t) => t.firstAuthMs != null).map((t) => t.firstAuthMs);
        row[way] = {
          ...r,
          connected: lat.length,
          missed: r.trials.length - lat.length,
          latency: lat.length ? stats(lat) : null,
          medianAll: fin(allStats.median),
          p99All: fin(allStats.p99),
          firstAuth: dial.length ? stats(dial) : null,
        };
        if (way === 'ours') {
          // The pushed status and the 1 s status poll over the same trials (a miss counted as never).
          const over = (key) => {
            const xs = r.trials.map((t) => (t[key] != null ? t[key] : Number.POSITIVE_INFINITY));
            const st = stats(xs);
            const seen = xs.filter(Number.isFinite);
            return {
              seen: seen.length,
              medianAll: fin(st.median),
              p99All: fin(st.p99),
              latency: seen.length ? stats(seen) : null,
            };
          };
          row.ours.pushed = over('pushedMs');
          row.ours.statusPoll = over('statusPollMs');
        }
      }
      res.stacks.push(row);
    }
  } finally {
    await writer.stop();
  }
  return res;
}

/** The version of the current stack's claude-agent-acp, whose way the baseline follows. */
function acpVersion(stacks) {
  try {
    const acp = stacks.find((s) => s.name === 'current').acp;
    return JSON.parse(fs.readFileSync(path.join(acp.packageDir, 'package.json'), 'utf8')).version;
  } catch {
    return null;
  }
}

if (require.main === module && process.argv[2] === 'writer') writerMain();

module.exports = { benchE2e, acpWay, pollWay, statusPollWay, TIMEOUT_MS, POLL_MS };
