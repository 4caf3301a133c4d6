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
//   let q;
//   q = query({ prompt, options: prepareQuery({ env, mcpServers }, { query: () => q }) });
//   const sub = reconnectOnAuthChange(q, { env });   // live session: reconnect after sign-in
//   for await (const m of q) { ... }
//   sub.close();
//
// Nothing here throws into the host once set up: failures are reported with
// process.emitWarning (and, with MCP_NEEDS_AUTH_DEBUG=1, one stderr line per action).

const addon = require('./index.js');
const { configDirFor } = require('./config-dir.js');
const { signIn } = require('./sign-in.js');

const WARNING_TYPE = 'McpNeedsAuthWarning';
const HOOK_MARK = Symbol.for('mcp-needs-auth.sdk.hook');
const DEFAULT_STATUSES = Object.freeze(['needs-auth', 'failed']);
const CLOSED_RE = /closed|not ready|ended|abort|exited|terminated|destroyed|EPIPE/i;

function debugEnabled() {
  const v = process.env.MCP_NEEDS_AUTH_DEBUG;
  return v !== undefined && v !== '' && v !== '0' && v.toLowerCase() !== 'false';
}

function debug(line) {
  if (!debugEnabled()) return;
  try { process.stderr.write(`mcp-needs-auth: ${line}\n`); } catch { /* stderr gone */ }
}

function warn(message, code = 'MCP_NEEDS_AUTH_SDK') {
  try { process.emitWarning(message, { type: WARNING_TYPE, code }); } catch { /* never throw */ }
}

function errMessage(err) {
  return err && typeof err.message === 'string' ? err.message : String(err);
}

/** The addon options for a helper's `options` (configDir > env > process env). */
function addonOptions(options) {
  const o = options || {};
  const out = {};
  if (typeof o.configDir === 'string') out.configDir = o.configDir.normalize('NFC');
  else out.configDir = configDirFor(o.env !== undefined ? { env: o.env } : undefined);
  if (o.credentials !== undefined) out.credentials = o.credentials;
  if (o.defaultTtlMs !== undefined) out.defaultTtlMs = o.defaultTtlMs;
  return out;
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
    try { return !addon.isNeedsAuthCached(server, opts); } catch { return false; }
  }
}

function safePurge(opts, where) {
  if (!usableDir(opts, where)) return [];
  try {
    const purged = addon.purgeStale(opts);
    for (const p of purged) debug(`purged ${p.server} (${p.reason})`);
    if (purged.length === 0) debug(`purged nothing in ${opts.configDir}`);
    return purged;
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

// ---------------------------------------------------------------------------------------------
// A timer that never keeps the process alive.

function sleep(ms) {
  return new Promise((resolve) => {
    const t = setTimeout(resolve, ms);
    if (t && typeof t.unref === 'function') t.unref();
  });
}

function withTimeout(promise, ms, label) {
  if (!(ms > 0) || !Number.isFinite(ms)) return promise;
  let t;
  const timeout = new Promise((_, reject) => {
    t = setTimeout(() => reject(new Error(`${label} timed out after ${ms} ms (query closed?)`)), ms);
    if (t && typeof t.unref === 'function') t.unref();
  });
  return Promise.race([promise, timeout]).finally(() => clearTimeout(t));
}

// ---------------------------------------------------------------------------------------------
// reconnectOnAuthChange

const ONE_SHOT = Symbol('one-shot');

class ReconnectSubscription {
  constructor(query, options, mode) {
    const o = options || {};
    this._query = query;
    this._opts = addonOptions(o);
    this._statuses = new Set(Array.isArray(o.statuses) ? o.statuses : DEFAULT_STATUSES);
    this._retries = Number.isInteger(o.retries) && o.retries > 0 ? o.retries : 3;
    this._backoffMs = typeof o.backoffMs === 'number' && o.backoffMs >= 0 ? o.backoffMs : 250;
    this._statusTimeoutMs = typeof o.statusTimeoutMs === 'number' ? o.statusTimeoutMs : 30_000;
    this._onReconnect = typeof o.onReconnect === 'function' ? o.onReconnect : null;
    this._closed = false;
    this._pendingAll = false;
    this._pending = new Set();
    this._running = null; // the worker's promise while it runs
    this._restore = [];
    this._sub = null;
    this._onAbort = null;

    if (!query || typeof query.mcpServerStatus !== 'function' || typeof query.reconnectMcpServer !== 'function') {
      throw new TypeError('reconnectOnAuthChange(query): query must have mcpServerStatus() and reconnectMcpServer(name)');
    }
    if (mode === ONE_SHOT) return; // used by the SessionStart hook: no subscription
    if (!usableDir(this._opts, 'reconnectOnAuthChange')) { this._closed = true; return; }

    const signal = o.signal;
    if (signal && signal.aborted) { this._closed = true; return; }

    try {
      this._sub = addon.onAuthChanged((ev) => this._onEvent(ev), {
        ...this._opts,
        autoInvalidate: true,
        ...(o.watch !== undefined ? { watch: o.watch } : {}),
        ...(o.pollIntervalMs !== undefined ? { pollIntervalMs: o.pollIntervalMs } : {}),
      });
      debug(`reconnectOnAuthChange: watching ${this._opts.configDir}`);
    } catch (err) {
      this._closed = true;
      warn(`reconnectOnAuthChange: onAuthChanged failed: ${errMessage(err)}`);
      return;
    }
    if (signal && typeof signal.addEventListener === 'function') {
      this._onAbort = () => this.close();
      signal.addEventListener('abort', this._onAbort, { once: true });
      this._restore.push(() => signal.removeEventListener('abort', this._onAbort));
    }
    if (o.observeQuery !== false) this._observeQuery();
  }

  /** Wraps the query's close/return/throw (calling the originals) to stop with it. */
  _observeQuery() {
    const q = this._query;
    for (const method of ['close', 'return', 'throw']) {
      const orig = q[method];
      if (typeof orig !== 'function') continue;
      const own = Object.prototype.hasOwnProperty.call(q, method);
      const self = this;
      const wrapper = function observedQueryMethod(...args) {
        self._queryEnded(`query.${method}() called`);
        return orig.apply(this, args);
      };
      try {
        q[method] = wrapper;
      } catch {
        continue; // frozen: fall back to noticing rejections
      }
      this._restore.push(() => {
        try {
          if (q[method] !== wrapper) return;
          if (own) q[method] = orig;
          else delete q[method];
        } catch { /* ignore */ }
      });
    }
  }

  _queryEnded(why) {
    if (this._closed) return;
    debug(`reconnectOnAuthChange: ${why}; subscription closed`);
    this.close();
  }

  _onEvent(ev) {
    if (this._closed) return;
    const servers = ev && Array.isArray(ev.servers) ? ev.servers : [];
    debug(`auth changed (${ev && ev.reason}): ${servers.length ? servers.join(', ') : 'all servers'}`);
    if (servers.length === 0) this._pendingAll = true;
    else for (const s of servers) this._pending.add(s);
    this._kick();
  }

  _kick() {
    if (this._running || this._closed) return;
    this._running = this._work()
      .catch((err) => warn(`reconnectOnAuthChange: ${errMessage(err)}`))
      .finally(() => {
        this._running = null;
        if (!this._closed && (this._pendingAll || this._pending.size)) this._kick();
      });
  }

  async _status() {
    try {
      const list = await withTimeout(Promise.resolve().then(() => this._query.mcpServerStatus()),
        this._statusTimeoutMs, 'mcpServerStatus()');
      return Array.isArray(list) ? list : [];
    } catch (err) {
      const msg = errMessage(err);
      if (!CLOSED_RE.test(msg)) warn(`reconnectOnAuthChange: mcpServerStatus() failed (${msg}); subscription closed`);
      this._queryEnded(`mcpServerStatus() rejected (${msg})`);
      return null;
    }
  }

  async _work() {
    while (!this._closed && (this._pendingAll || this._pending.size)) {
      const all = this._pendingAll;
      const names = [...this._pending];
      this._pendingAll = false;
      this._pending.clear();
      const statuses = await this._status();
      if (!statuses) return;
      const targets = all ? statuses.map((s) => s.name) : names;
      for (const name of targets) {
        if (this._closed) return;
        const st = statuses.find((s) => s && s.name === name);
        if (!st || !this._statuses.has(st.status)) continue;
        if (!wouldDial(name, this._opts)) {
          debug(`${name}: still skipped (needs-auth entry or token-less credentials); not reconnecting`);
          continue;
        }
        await this._reconnect(name);
      }
    }
  }

  async _reconnect(server) {
    let lastError;
    for (let attempt = 1; attempt <= this._retries; attempt++) {
      if (this._closed) return;
      try {
        debug(`reconnecting ${server} (attempt ${attempt}/${this._retries})`);
        await this._query.reconnectMcpServer(server);
        debug(`${server}: reconnected`);
        this._report({ server, ok: true, attempts: attempt });
        return;
      } catch (err) {
        lastError = err;
        const msg = errMessage(err);
        debug(`${server}: reconnect failed: ${msg}`);
        if (CLOSED_RE.test(msg) && !/Server status/i.test(msg)) {
          this._queryEnded(`reconnectMcpServer() rejected (${msg})`);
          return;
        }
      }
      if (attempt < this._retries) {
        await sleep(this._backoffMs * 2 ** (attempt - 1));
        if (this._closed) return;
        const statuses = await this._status();
        if (!statuses) return;
        const st = statuses.find((s) => s && s.name === server);
        if (!st) return;
        if (st.status === 'connected') {
          this._report({ server, ok: true, attempts: attempt });
          return;
        }
        if (!this._statuses.has(st.status)) return;
      }
    }
    this._report({ server, ok: false, error: lastError, attempts: this._retries });
  }

  _report(outcome) {
    if (!this._onReconnect) return;
    try {
      const r = this._onReconnect(outcome);
      if (r && typeof r.then === 'function') {
        r.then(undefined, (err) => warn(`onReconnect rejected: ${errMessage(err)}`));
      }
    } catch (err) {
      warn(`onReconnect threw: ${errMessage(err)}`);
    }
  }

  /** Resolves once no reconnect is queued or running (handy in tests and shutdown paths). */
  async settled() {
    while (this._running) await this._running;
  }

  /** Stops at once: no further status checks or reconnects. Idempotent. */
  close() {
    if (this._closed && !this._sub && this._restore.length === 0) return;
    this._closed = true;
    this._pending.clear();
    this._pendingAll = false;
    const sub = this._sub;
    this._sub = null;
    if (sub) { try { sub.close(); } catch { /* ignore */ } }
    const restore = this._restore;
    this._restore = [];
    for (const fn of restore) { try { fn(); } catch { /* ignore */ } }
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
 */
function reconnectOnAuthChange(query, options) {
  return new ReconnectSubscription(query, options);
}

// ---------------------------------------------------------------------------------------------
// needsAuthHooks / prepareQuery

async function reconcileSession(getQuery, opts, helperOptions) {
  const q = resolveQuery(getQuery);
  if (!q || typeof q.mcpServerStatus !== 'function' || typeof q.reconnectMcpServer !== 'function') {
    debug('SessionStart: no query to reconnect (pass options.query: () => q)');
    return;
  }
  const wait = typeof helperOptions.pendingWaitMs === 'number' ? helperOptions.pendingWaitMs : 10_000;
  const deadline = Date.now() + wait;
  let statuses;
  for (;;) {
    try {
      statuses = await withTimeout(Promise.resolve().then(() => q.mcpServerStatus()), 30_000, 'mcpServerStatus()');
    } catch (err) {
      debug(`SessionStart: mcpServerStatus() failed: ${errMessage(err)}`);
      return;
    }
    if (!Array.isArray(statuses)) return;
    if (!statuses.some((s) => s && s.status === 'pending') || Date.now() >= deadline) break;
    await sleep(200);
  }
  const names = statuses
    .filter((s) => s && (s.status === 'needs-auth') && wouldDial(s.name, opts))
    .map((s) => s.name);
  if (names.length === 0) return;
  // One-shot, serial, with the same retry/report rules as reconnectOnAuthChange.
  const once = new ReconnectSubscription(q, { ...helperOptions, configDir: opts.configDir }, ONE_SHOT);
  once._opts = opts;
  for (const name of names) await once._reconnect(name);
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
      const signal = ctx && ctx.signal;
      const run = () => {
        if (signal && signal.aborted) return;
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
 * hooks. Returns the same object. `helperOptions` go to needsAuthHooks (e.g. `{ query: () => q }`).
 */
function prepareQuery(queryOptions, helperOptions) {
  const qo = queryOptions == null ? {} : queryOptions;
  try {
    const h = helperOptions || {};
    const opts = addonOptions({ ...h, configDir: typeof h.configDir === 'string' ? h.configDir : configDirFor(qo) });
    safePurge(opts, 'prepareQuery');
    const hooks = qo.hooks && typeof qo.hooks === 'object' ? qo.hooks : {};
    const existing = Array.isArray(hooks.SessionStart) ? hooks.SessionStart : [];
    if (!existing.some((m) => m && m[HOOK_MARK])) {
      const ours = needsAuthHooks({ ...h, configDir: opts.configDir }).SessionStart;
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
