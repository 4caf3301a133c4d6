'use strict';
// mcp-needs-auth/sdk: glue between the needs-auth cache addon and the Claude Agent SDK
// (`@anthropic-ai/claude-agent-sdk` 0.2.x and 0.3.x) or anything built on it (claude-agent-acp).
//
// Structural only: this module never imports the SDK. A "query" is any object with
// `mcpServerStatus(): Promise<{name, status}[]>` and `reconnectMcpServer(name): Promise<void>`.
//
//   const { query } = require('@anthropic-ai/claude-agent-sdk');
//   const { prepareQuery, reconnectOnAuthChange } = require('mcp-needs-auth/sdk');
//
//   const ac = new AbortController();
//   let q;
//   q = query({ prompt, options: prepareQuery({ env, mcpServers, abortController: ac }, { query: () => q }) });
//   const sub = reconnectOnAuthChange(q, { env, signal: ac.signal }); // live session: reconnect after sign-in
//   try { for await (const m of q) { ... } } finally { sub.close(); }
//
// Nothing here throws into the host once set up: failures are reported with
// process.emitWarning (and, with MCP_NEEDS_AUTH_DEBUG=1, one stderr line per action).

const addon = require('./index.js');
const { debug, warn, errMessage } = require('./lib/log.js');
const upkeep = require('./lib/upkeep.js');
const { configDirFor } = require('./lib/config-dir.js');
const { signIn } = require('./lib/sign-in.js');

const HOOK_MARK = Symbol.for('mcp-needs-auth.sdk.hook');
const DEFAULT_STATUSES = Object.freeze(['needs-auth', 'failed']);
// How often a server the session reports `pending` is looked at again while waiting for it.
const PENDING_POLL_MS = 200;

/** The addon options for a helper's `options` (configDir > env > process env). */
function addonOptions(options) {
  const o = options || {};
  const out = {};
  if (typeof o.configDir === 'string') out.configDir = o.configDir.normalize('NFC');
  else out.configDir = configDirFor(o.env !== undefined ? { env: o.env } : undefined);
  if (o.credentials !== undefined) out.credentials = o.credentials;
  if (o.defaultTtlMs !== undefined) out.defaultTtlMs = o.defaultTtlMs;
  const configs = usableServerConfigs(o.serverConfigs);
  if (configs !== undefined) out.serverConfigs = configs;
  return out;
}

/**
 * The session's server configs (`options.mcpServers`), for the addon to judge entries by Claude
 * Code 2.1.332's exact rules. Configs the addon rejects (a newer SDK's transport, say) are left
 * out with a warning: their entries are then judged by name only, and nothing else fails.
 */
function usableServerConfigs(configs) {
  if (configs == null || typeof configs !== 'object') return undefined;
  const usable = {};
  for (const [name, config] of Object.entries(configs)) {
    try {
      addon.cachePath({ configDir: '.', serverConfigs: { [name]: config } });
      usable[name] = config;
    } catch (err) {
      const why = errMessage(err);
      warn(`server config of ${JSON.stringify(name)} left out, its needs-auth entry is judged by name only: ${why}`);
    }
  }
  return usable;
}

function usableDir(opts, what) {
  if (opts.configDir === '') {
    warn(`${what}: the config dir is '' (CLAUDE_CONFIG_DIR is set but empty); nothing done`);
    return false;
  }
  return true;
}

/** Whether a new Claude Code process would dial `server` now (no needs-auth skip). */
function wouldDial(server, opts) {
  try {
    return !addon.diagnose(server, opts).skipped;
  } catch {
    try {
      return !addon.isNeedsAuthCached(server, opts);
    } catch {
      return false;
    }
  }
}

function safePurge(opts, where) {
  if (!usableDir(opts, where)) return [];
  try {
    return upkeep.purgeStale(opts);
  } catch (err) {
    warn(`${where}: purgeStale failed: ${errMessage(err)}`);
    return [];
  }
}

function resolveQuery(q) {
  try {
    return typeof q === 'function' ? q() : q;
  } catch {
    return undefined;
  }
}

/** A timer that never keeps the process alive. */
function sleep(ms) {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    if (t && typeof t.unref === 'function') t.unref();
  });
}

// ---------------------------------------------------------------------------------------------
// Reconnecting servers in a live session: reconnectOnAuthChange and the SessionStart hook.
//
// The session is known only through its control requests. It has ended, for this module, when
// `mcpServerStatus()` rejects: the SDK (0.2.x and 0.3.x) rejects every control request of a
// closed query, however it closed (close(), return() by `break` in `for await`, its
// abortController aborted, the child exiting), and a session that cannot report its servers
// cannot reconnect them either. No error text is inspected.

/** The reconnect settings of a helper's options, with their defaults. */
function reconnectPolicy(o) {
  return {
    statuses: new Set(Array.isArray(o.statuses) ? o.statuses : DEFAULT_STATUSES),
    retries: Number.isInteger(o.retries) && o.retries > 0 ? o.retries : 3,
    backoffMs: typeof o.backoffMs === 'number' && o.backoffMs >= 0 ? o.backoffMs : 250,
    statusTimeoutMs: typeof o.statusTimeoutMs === 'number' ? o.statusTimeoutMs : 30_000,
    pendingWaitMs: typeof o.pendingWaitMs === 'number' && o.pendingWaitMs >= 0 ? o.pendingWaitMs : 10_000,
    onReconnect: typeof o.onReconnect === 'function' ? o.onReconnect : null,
  };
}

function isQuery(q) {
  return q != null && typeof q.mcpServerStatus === 'function' && typeof q.reconnectMcpServer === 'function';
}

const NO_ANSWER = Symbol('no answer');

/**
 * The session's servers (`query.mcpServerStatus()`), or null when the session cannot answer:
 * it rejected (the query ended), or it gave no answer within `timeoutMs` (warned: a live
 * session that stops answering is worth hearing about).
 */
async function sessionStatuses(query, timeoutMs, where) {
  let timer;
  const noAnswer = new Promise((resolve) => {
    if (!(timeoutMs > 0) || !Number.isFinite(timeoutMs)) return;
    timer = setTimeout(resolve, timeoutMs, NO_ANSWER);
    if (typeof timer.unref === 'function') timer.unref();
  });
  try {
    const list = await Promise.race([Promise.resolve().then(() => query.mcpServerStatus()), noAnswer]);
    if (list === NO_ANSWER) {
      warn(`${where}: mcpServerStatus() gave no answer in ${timeoutMs} ms; the session is taken as ended`);
      return null;
    }
    return Array.isArray(list) ? list : [];
  } catch (err) {
    debug(`${where}: the session ended (mcpServerStatus() rejected: ${errMessage(err)})`);
    return null;
  } finally {
    clearTimeout(timer);
  }
}

/** Hands an outcome to `onReconnect`; what it throws or rejects with becomes a warning. */
function report(policy, outcome) {
  if (!policy.onReconnect) return;
  try {
    const r = policy.onReconnect(outcome);
    if (r && typeof r.then === 'function') {
      r.then(undefined, (err) => warn(`onReconnect rejected: ${errMessage(err)}`));
    }
  } catch (err) {
    warn(`onReconnect threw: ${errMessage(err)}`);
  }
}

/**
 * After `server` connected in the session: its needs-auth entry, if any, is wrong (the session
 * just authenticated with the store's credentials), and new processes would skip the server for
 * it. Claude Code 2.1.332 removes the entry on a successful connect itself; 2.1.108 never does
 * (an entry its own failed connect wrote after a sign-in would stay until it expires). Removed
 * only when present: invalidateNeedsAuth always tells subscribers.
 */
function dropEntryOfConnected(server, opts, where) {
  try {
    if (!addon.listNeedsAuth(opts).some((e) => e.server === server)) return;
    const removed = addon.invalidateNeedsAuth(server, opts);
    if (removed.length) debug(`${where}: ${server} connected; its needs-auth entry removed`);
  } catch (err) {
    warn(`${where}: ${server} connected, but its needs-auth entry could not be removed: ${errMessage(err)}`);
  }
}

/**
 * Reconnects `server` in the session: up to `policy.retries` calls of `reconnectMcpServer`, the
 * n-th retry `backoffMs * 2^(n-1)` after the previous failure. Before each retry the session's
 * status decides: connected is done, a status outside `policy.statuses` is left alone. Once
 * connected, the server's needs-auth entry is dropped (`dropEntryOfConnected`). Reports the
 * outcome to `onReconnect`. Gives up at once when `stopped()` turns true. Resolves false when the
 * session ended on the way (mcpServerStatus() failed), true otherwise.
 */
async function reconnectServer(query, server, policy, stopped, where, opts) {
  let lastError;
  for (let attempt = 1; attempt <= policy.retries; attempt++) {
    if (stopped()) return true;
    try {
      debug(`reconnecting ${server} (attempt ${attempt}/${policy.retries})`);
      await query.reconnectMcpServer(server);
      debug(`${server}: reconnected`);
      // Dropped only once the session says connected (a reconnect that resolved is not proof).
      const after = await sessionStatuses(query, policy.statusTimeoutMs, where);
      if (after?.find((s) => s && s.name === server)?.status === 'connected') dropEntryOfConnected(server, opts, where);
      report(policy, { server, ok: true, attempts: attempt });
      return true;
    } catch (err) {
      lastError = err;
      debug(`${server}: reconnect failed: ${errMessage(err)}`);
    }
    if (attempt === policy.retries) break;
    await sleep(policy.backoffMs * 2 ** (attempt - 1));
    if (stopped()) return true;
    const statuses = await sessionStatuses(query, policy.statusTimeoutMs, where);
    if (!statuses) return false;
    const st = statuses.find((s) => s && s.name === server);
    if (!st) return true;
    if (st.status === 'connected') {
      dropEntryOfConnected(server, opts, where);
      report(policy, { server, ok: true, attempts: attempt });
      return true;
    }
    if (!policy.statuses.has(st.status)) return true;
  }
  report(policy, { server, ok: false, error: lastError, attempts: policy.retries });
  return true;
}

const RECONNECT = 'reconnectOnAuthChange';

/** Two events heard for one server as one: the credentials changed if either said so, first time kept. */
function mergeHeard(a, b) {
  if (!a) return { signedInAt: b.signedInAt };
  return { signedInAt: a.signedInAt ?? b.signedInAt };
}

/**
 * What reconnectOnAuthChange returns: an onAuthChanged subscription for the session's config
 * dir whose events queue servers, reconnected one at a time by reconnectServer. A queued server
 * the session reports `pending` (still connecting) is looked at again every PENDING_POLL_MS until
 * it settles, for `pendingWaitMs` at most after the last event naming it. It stops for good on
 * close(), when `options.signal` aborts, or when the session ends.
 */
class ReconnectSubscription {
  constructor(query, options) {
    if (!isQuery(query)) {
      throw new TypeError(`${RECONNECT}(query): query must have mcpServerStatus() and reconnectMcpServer(name)`);
    }
    const o = options || {};
    this._query = query;
    this._opts = addonOptions(o);
    this._policy = reconnectPolicy(o);
    this._signal = o.signal && typeof o.signal.addEventListener === 'function' ? o.signal : null;
    this._onAbort = () => this.close();
    this._queued = new Map(); // servers named by events, not yet looked at -> their event (see _onEvent)
    this._queuedAll = null; // the event, when one named no server: look at all of them
    this._waiting = new Map(); // servers seen `pending`, looked at again until they settle -> their work
    this._draining = null; // the promise of the running drain()
    this._sub = null;
    this._closed = false;
    this._wake = null; // ends the drain's wait for a pending server early (an event, close())

    if (!usableDir(this._opts, RECONNECT) || o.signal?.aborted) {
      this._closed = true;
      return;
    }
    try {
      this._sub = upkeep.watchAuthChanges((ev) => this._onEvent(ev), {
        ...this._opts,
        ...(o.watch !== undefined ? { watch: o.watch } : {}),
        ...(o.pollIntervalMs !== undefined ? { pollIntervalMs: o.pollIntervalMs } : {}),
      });
    } catch (err) {
      this._closed = true;
      warn(`${RECONNECT}: onAuthChanged failed: ${errMessage(err)}`);
      return;
    }
    if (this._signal) this._signal.addEventListener('abort', this._onAbort, { once: true });
  }

  /**
   * An onAuthChanged event: queue the servers it names (all when none) and drain the queue. A
   * queued event remembers whether the server's credentials changed and when this process first
   * heard it (signedInAt), for _dialable().
   */
  _onEvent(ev) {
    if (this._closed) return;
    const servers = ev && Array.isArray(ev.servers) ? ev.servers : [];
    debug(`auth changed (${ev?.reason}): ${servers.length ? servers.join(', ') : 'all servers'}`);
    const heard = { signedInAt: ev?.reason === 'credentials-changed' ? Date.now() : null };
    if (servers.length === 0) this._queuedAll = mergeHeard(this._queuedAll, heard);
    else for (const s of servers) this._queued.set(s, mergeHeard(this._queued.get(s), heard));
    if (this._wake) this._wake();
    this._startDrain();
  }

  /** Waits PENDING_POLL_MS, or less when an event or close() comes first. */
  _nap() {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this._wake = null;
        resolve();
      };
      const timer = setTimeout(done, PENDING_POLL_MS);
      if (typeof timer.unref === 'function') timer.unref();
      this._wake = done;
    });
  }

  _hasQueued() {
    return this._queuedAll !== null || this._queued.size > 0;
  }

  /** Runs _drain() unless it runs already (it picks up what is queued meanwhile). */
  _startDrain() {
    if (this._draining || this._closed) return;
    this._draining = this._drain()
      .catch((err) => warn(`${RECONNECT}: ${errMessage(err)}`))
      .finally(() => {
        this._draining = null;
        // Queued after drain() last looked (or left by a failed drain): go again.
        if (this._hasQueued() || this._waiting.size > 0) this._startDrain();
      });
  }

  /**
   * Reconnects the queued servers the session reports in `policy.statuses` that a new process
   * would dial, one at a time, until none is left. A server still `pending` (its connect began
   * before the event, maybe with the old token) is waited for: while only such servers are left,
   * one status check every PENDING_POLL_MS (events meanwhile are handled at once); once it
   * settles the usual rule applies; after `pendingWaitMs` without settling it is left alone.
   */
  async _drain() {
    const wait = this._policy.pendingWaitMs;
    while (!this._closed && (this._hasQueued() || this._waiting.size > 0)) {
      if (!this._hasQueued()) {
        await this._nap();
        if (this._closed) return;
      }
      const all = this._queuedAll;
      const queued = new Map(this._queued);
      this._queuedAll = null;
      this._queued.clear();
      const statuses = await sessionStatuses(this._query, this._policy.statusTimeoutMs, RECONNECT);
      if (!statuses) return this.close();
      const now = Date.now();
      // Each server to look at -> {signedInAt, seenPending, until}; a new event restarts the wait.
      const work = new Map(this._waiting);
      const add = (name, heard) => {
        const w = work.get(name);
        work.set(name, { ...mergeHeard(w, heard), seenPending: w?.seenPending === true, until: now + wait });
      };
      if (all) for (const st of statuses) if (st && typeof st.name === 'string') add(st.name, all);
      for (const [name, heard] of queued) add(name, heard);
      for (const [name, w] of work) {
        if (this._closed) return;
        const st = statuses.find((s) => s && s.name === name);
        if (st?.status === 'pending') {
          if (now < w.until) this._waiting.set(name, { ...w, seenPending: true });
          else {
            this._waiting.delete(name);
            debug(`${name}: still pending ${wait} ms after the event; not waiting longer`);
          }
          continue;
        }
        this._waiting.delete(name);
        if (!st || !this._policy.statuses.has(st.status)) continue;
        if (!this._dialable(name, w)) {
          debug(`${name}: still skipped (needs-auth entry or token-less credentials); not reconnecting`);
          continue;
        }
        const alive = await reconnectServer(this._query, name, this._policy, () => this._closed, RECONNECT, this._opts);
        if (!alive) return this.close();
      }
    }
  }

  /**
   * Whether to reconnect `name`: a new process would dial it; or it was still connecting when its
   * credentials changed and settled failing (its connect used the old token), and the only reason
   * a new process would skip it is the needs-auth entry that connect wrote after the sign-in,
   * which the superseded rule rightly keeps (it cannot tell that 401 from a genuine one) while the
   * store holds an access token.
   */
  _dialable(name, w) {
    if (wouldDial(name, this._opts)) return true;
    if (!w.seenPending || w.signedInAt == null) return false;
    try {
      const d = addon.diagnose(name, this._opts);
      const since = Date.now() - w.signedInAt;
      return (
        d.credentials.hasAccessToken &&
        d.reasons.length > 0 &&
        d.reasons.every((r) => r.kind === 'needs-auth-cache' && typeof r.ageMs === 'number' && r.ageMs <= since)
      );
    } catch {
      return false;
    }
  }

  /**
   * Resolves once no reconnect is queued, waited for (a `pending` server: `pendingWaitMs` at
   * most) or running (handy in tests and shutdown paths), or at once after close().
   */
  async settled() {
    while (this._draining) await this._draining;
  }

  /** Stops at once: no further status checks or reconnects. Idempotent. */
  close() {
    if (this._closed) return;
    this._closed = true;
    this._queued.clear();
    this._queuedAll = null;
    this._waiting.clear();
    if (this._wake) this._wake();
    if (this._signal) this._signal.removeEventListener('abort', this._onAbort);
    try {
      this._sub.close();
    } catch (err) {
      warn(`${RECONNECT}: closing the onAuthChanged subscription failed: ${errMessage(err)}`);
    }
    this._sub = null;
    debug(`${RECONNECT}: closed`);
  }

  get closed() {
    return this._closed;
  }

  [Symbol.dispose]() {
    this.close();
  }
}

/**
 * Keeps a live SDK session in step with sign-ins: on every onAuthChanged event of the session's
 * config dir, each affected server (all when the event names none) that the session reports as
 * `needs-auth` or `failed`, and that a new Claude Code process would now dial, is reconnected
 * with `query.reconnectMcpServer(name)`, one at a time, up to `retries` tries with backoff.
 * An affected server still `pending` (connecting) is waited for, status polled every 200 ms, for
 * `pendingWaitMs` (default 10 s) at most after the last event naming it, then judged as above;
 * if its credentials changed while it connected, the needs-auth entry its failed connect wrote
 * after that change does not stop the reconnect (see _dialable). Other servers are not held up.
 * Stops on `close()`, when `options.signal` aborts, or when the session ends (see above): at
 * once, also while waiting for a pending server.
 */
function reconnectOnAuthChange(query, options) {
  return new ReconnectSubscription(query, options);
}

// ---------------------------------------------------------------------------------------------
// needsAuthHooks / prepareQuery

/**
 * The SessionStart hook's reconnect: once the session's servers are past `pending` (or
 * `pendingWaitMs` passed), reconnects those it reports `needs-auth` that a new process would
 * dial, one at a time, as reconnectOnAuthChange does.
 */
async function reconcileSession(getQuery, opts, helperOptions) {
  const q = resolveQuery(getQuery);
  if (!isQuery(q)) {
    debug('SessionStart: no query to reconnect (pass options.query: () => q)');
    return;
  }
  const policy = reconnectPolicy(helperOptions);
  const deadline = Date.now() + policy.pendingWaitMs;
  let statuses;
  for (;;) {
    statuses = await sessionStatuses(q, policy.statusTimeoutMs, 'SessionStart');
    if (!statuses) return;
    if (!statuses.some((s) => s && s.status === 'pending') || Date.now() >= deadline) break;
    await sleep(PENDING_POLL_MS);
  }
  const names = statuses.filter((s) => s && s.status === 'needs-auth' && wouldDial(s.name, opts)).map((s) => s.name);
  for (const name of names) {
    if (!(await reconnectServer(q, name, policy, () => false, 'SessionStart', opts))) return;
  }
}

/**
 * SDK hooks for `options.hooks`: `{ SessionStart: [matcher] }`. The hook purges stale needs-auth
 * entries of the session's config dir and schedules (never awaits) a reconnect of every server
 * the session reports `needs-auth` that a new process would now dial. The reconnect needs the
 * query, which does not exist yet when the options are built: pass `query` as a getter.
 */
function needsAuthHooks(options) {
  const o = options || {};
  const hook = async (_input, _toolUseId, ctx) => {
    try {
      const opts = addonOptions(o);
      safePurge(opts, 'SessionStart hook');
      const signal = ctx?.signal;
      const run = () => {
        if (signal?.aborted) return;
        reconcileSession(o.query, opts, o).catch((err) => warn(`SessionStart reconnect: ${errMessage(err)}`));
      };
      if (o.query !== undefined) {
        const t = setTimeout(run, 0);
        if (t && typeof t.unref === 'function') t.unref();
      }
    } catch (err) {
      warn(`SessionStart hook: ${errMessage(err)}`);
    }
    return { continue: true };
  };
  const matcher = { hooks: [hook] };
  Object.defineProperty(matcher, HOOK_MARK, { value: true });
  return { SessionStart: [matcher] };
}

/**
 * Call on the options of `query({ prompt, options })` before the session starts: purges stale
 * entries of the config dir its child will use (so the start-up loop dials freshly signed-in
 * servers), and appends needsAuthHooks() to `options.hooks.SessionStart`, keeping the caller's
 * hooks. The entries of the servers in `options.mcpServers` are judged with their configs
 * (Claude Code 2.1.332's exact rules). Returns the same object. `helperOptions` go to
 * needsAuthHooks (e.g. `{ query: () => q }`).
 */
function prepareQuery(queryOptions, helperOptions) {
  const qo = queryOptions == null ? {} : queryOptions;
  try {
    const h = { ...helperOptions };
    // The session's own server configs: the addon judges their entries exactly as 2.1.332 does.
    if (h.serverConfigs === undefined && qo.mcpServers && typeof qo.mcpServers === 'object') {
      h.serverConfigs = qo.mcpServers;
    }
    const opts = addonOptions({ ...h, configDir: typeof h.configDir === 'string' ? h.configDir : configDirFor(qo) });
    safePurge(opts, 'prepareQuery');
    const hooks = qo.hooks && typeof qo.hooks === 'object' ? qo.hooks : {};
    const existing = Array.isArray(hooks.SessionStart) ? hooks.SessionStart : [];
    if (!existing.some((m) => m?.[HOOK_MARK])) {
      const ours = needsAuthHooks({ ...h, configDir: opts.configDir, serverConfigs: opts.serverConfigs }).SessionStart;
      qo.hooks = { ...hooks, SessionStart: [...existing, ...ours] };
    }
  } catch (err) {
    warn(`prepareQuery: ${errMessage(err)}`);
  }
  return qo;
}

module.exports = {
  configDirFor,
  prepareQuery,
  needsAuthHooks,
  reconnectOnAuthChange,
  ReconnectSubscription,
  signIn,
};
