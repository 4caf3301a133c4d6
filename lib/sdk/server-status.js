'use strict';
// onServerStatus(query, callback, options): pushes each MCP server's status in a live SDK session
// (`needs-auth`, `connected`, `failed`, `pending`, `disabled`, ...) and why it changed, with no
// fixed poll. What makes it look: the session's first answer; this package's own events, i.e.
// an onAuthChanged event of the session's config dir (a sign-in saved by any process, a
// needs-auth entry written or written back, this process removing entries), a reconnect by this
// package ending (lib/sdk/session-signals.js); and every `mcpServerStatus()` answer another
// helper of this package got for the same query (applied without asking again). On such an
// event it asks the session once, diffs with what it last pushed, and pushes only changes.
// Only while a server is `pending`, or was told its credentials changed and is not connected
// yet, does it ask again: every `settleIntervalMs`, at most `settleChecks` times and for
// `settleTimeoutMs` after the event.
//
// Observes only: it never reconnects, signs in or writes anything (reconnectOnAuthChange and
// signIn act; their reconnects are what it reports).

const addon = require('../../index.js');
const { debug, warn, errMessage } = require('../log.js');
const { unrefTimeout } = require('../timers.js');
const { configDirFor } = require('./config-dir.js');
const { sessionStatuses } = require('./session.js');
const { listen } = require('./session-signals.js');

const NAME = 'onServerStatus';
const DEFAULTS = Object.freeze({
  statusTimeoutMs: 30_000,
  settleIntervalMs: 250,
  settleChecks: 120,
  settleTimeoutMs: 30_000,
});
/** How long an event stays the explanation of a server's next change. */
const CAUSE_TTL_MS = 60_000;
/**
 * How long a server whose credentials gained tokens is looked at again (within the settle
 * bounds) while it is not connected and no reconnect of this package started: Claude Code
 * connects a server itself about 0.2 s after its own sign-in saved the tokens; signIn reconnects
 * within 3 s.
 */
const FOLLOW_UP_MS = 5_000;
const MAX_TIMER_MS = 2 ** 31 - 1;
const CREDENTIAL_STORES = new Set(['auto', 'file', 'keychain', 'none']);

function invalid(message) {
  const err = new TypeError(`${NAME}: ${message}`);
  err.code = 'ERR_INVALID_ARGUMENT';
  return err;
}

const isObject = (v) => v !== null && typeof v === 'object';

function checkMs(o, key, { min, integer = false }) {
  const v = o[key];
  if (v === undefined) return DEFAULTS[key];
  const ok = typeof v === 'number' && Number.isFinite(v) && v >= min && v <= MAX_TIMER_MS;
  if (!ok || (integer && !Number.isInteger(v))) {
    const what = integer ? 'an integer' : 'a number';
    throw invalid(`options.${key} must be ${what} between ${min} and ${MAX_TIMER_MS}, not ${JSON.stringify(v)}`);
  }
  return v;
}

/** The arguments, checked: ERR_INVALID_ARGUMENT naming the first bad one. */
function checkArgs(query, callback, options) {
  if (!isObject(query) && typeof query !== 'function') {
    throw invalid('query must be the Agent SDK Query returned by query()');
  }
  if (typeof query.mcpServerStatus !== 'function') throw invalid('query must have mcpServerStatus()');
  if (typeof callback !== 'function') throw invalid('callback must be a function');
  if (options !== undefined && !isObject(options)) throw invalid('options must be an object');
  const o = options || {};
  if (o.configDir !== undefined && typeof o.configDir !== 'string') {
    throw invalid('options.configDir must be a string');
  }
  if (o.env !== undefined && !isObject(o.env)) throw invalid('options.env must be an object');
  if (o.credentials !== undefined && !CREDENTIAL_STORES.has(o.credentials)) {
    throw invalid("options.credentials must be 'auto', 'file', 'keychain' or 'none'");
  }
  if (o.defaultTtlMs !== undefined && !(typeof o.defaultTtlMs === 'number' && o.defaultTtlMs >= 0)) {
    throw invalid('options.defaultTtlMs must be a number of ms, 0 or more');
  }
  if (o.serverConfigs !== undefined && !isObject(o.serverConfigs)) {
    throw invalid('options.serverConfigs must be an object (the query options.mcpServers)');
  }
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal)) {
    throw invalid('options.signal must be an AbortSignal');
  }
  if (o.watch !== undefined && typeof o.watch !== 'boolean') throw invalid('options.watch must be a boolean');
  if (o.pollIntervalMs !== undefined) checkMs(o, 'pollIntervalMs', { min: 1 });
  const configDir = typeof o.configDir === 'string' ? o.configDir.normalize('NFC') : configDirFor({ env: o.env });
  if (configDir === '') throw invalid("the config dir is '' (CLAUDE_CONFIG_DIR is set but empty)");
  const addonOpts = { configDir };
  if (o.credentials !== undefined) addonOpts.credentials = o.credentials;
  if (o.defaultTtlMs !== undefined) addonOpts.defaultTtlMs = o.defaultTtlMs;
  if (o.serverConfigs !== undefined) addonOpts.serverConfigs = o.serverConfigs;
  return {
    addonOpts,
    watchOpts: {
      ...(o.watch !== undefined ? { watch: o.watch } : {}),
      ...(o.pollIntervalMs !== undefined ? { pollIntervalMs: o.pollIntervalMs } : {}),
    },
    signal: o.signal,
    statusTimeoutMs: checkMs(o, 'statusTimeoutMs', { min: 1 }),
    settleIntervalMs: checkMs(o, 'settleIntervalMs', { min: 1 }),
    settleChecks: checkMs(o, 'settleChecks', { min: 0, integer: true }),
    settleTimeoutMs: checkMs(o, 'settleTimeoutMs', { min: 0 }),
  };
}

/** The fields of a status entry pushed beside `status`, when the session gives them. */
function extras(entry) {
  const out = {};
  if (typeof entry.scope === 'string') out.scope = entry.scope;
  if (typeof entry.source === 'string') out.source = entry.source;
  const type = isObject(entry.config) ? entry.config.type : undefined;
  if (typeof type === 'string') out.transport = type;
  return out;
}

/**
 * What onServerStatus returns: a subscription to one session's server statuses (same surface as
 * the addon's `Subscription`, plus `statuses`, `refresh()` and `settled()`).
 */
class ServerStatusSubscription {
  #query;
  #callback;
  #args;
  #sub = null; // the onAuthChanged subscription
  #unlisten = () => {};
  #signal = null;
  #onAbort = () => this.close();
  #closed = false;
  #known = new Map(); // server -> the last record pushed
  #initial = true; // no answer applied yet
  #applied = 0; // the ask number of the last answer applied
  #causes = new Map(); // server -> { credAt, cacheAt, invalidatedAt, reconnectAt } (ms)
  #running = null; // the promise of #run()
  #again = false; // an event came while a check was under way: check once more
  #settleLeft = 0;
  #settleUntil = 0;
  #wake = null;

  constructor(query, callback, options) {
    this.#args = checkArgs(query, callback, options);
    this.#query = query;
    this.#callback = callback;
    const signal = this.#args.signal;
    if (signal?.aborted) {
      this.#closed = true;
      return;
    }
    try {
      this.#sub = addon.onAuthChanged((ev) => this.#onAuthEvent(ev), {
        ...this.#args.addonOpts,
        ...this.#args.watchOpts,
        autoInvalidate: false, // observes only; reconnectOnAuthChange's subscription invalidates
      });
    } catch (err) {
      // A config dir that cannot be watched: the session's own answers still count.
      warn(`${NAME}: onAuthChanged failed, sign-ins saved by other processes go unnoticed: ${errMessage(err)}`);
    }
    this.#unlisten = listen(query, (s) => this.#onSignal(s));
    if (signal) {
      this.#signal = signal;
      signal.addEventListener('abort', this.#onAbort, { once: true });
    }
    this.#look();
  }

  /** Records `kind` (a field of #causes) at `at` for `servers` (every known one when empty). */
  #cause(servers, kind, at) {
    const names = servers.length ? servers : [...this.#known.keys()];
    for (const name of names) {
      const c = this.#causes.get(name) ?? {};
      c[kind] = at;
      this.#causes.set(name, c);
    }
  }

  #onAuthEvent(ev) {
    if (this.#closed || !ev) return;
    const servers = Array.isArray(ev.servers) ? ev.servers : [];
    const kind =
      ev.reason === 'credentials-changed'
        ? 'credAt'
        : ev.reason === 'cache-changed'
          ? 'cacheAt'
          : ev.reason === 'invalidated'
            ? 'invalidatedAt'
            : null;
    debug(`${NAME}: auth changed (${ev.reason}): ${servers.length ? servers.join(', ') : 'all servers'}`);
    const now = Date.now();
    if (kind) this.#cause(servers, kind, now);
    if (kind === 'credAt') {
      // Followed up only when the change brought tokens (a 401 also writes a token-less stub).
      for (const name of servers.length ? servers : [...this.#known.keys()]) {
        if (this.#hasTokens(name)) this.#cause([name], 'tokensAt', now);
      }
    }
    this.#look();
  }

  #hasTokens(name) {
    try {
      const c = addon.diagnose(name, this.#args.addonOpts).credentials;
      return c.hasAccessToken || c.hasRefreshToken;
    } catch {
      return false;
    }
  }

  #onSignal(s) {
    if (this.#closed || !s) return;
    if (s.kind === 'statuses') this.#apply(s.ask, s.list);
    else if (s.kind === 'reconnecting') this.#cause([s.server], 'reconnectAt', Date.now());
    else if (s.kind === 'reconnected') this.#look();
    else if (s.kind === 'ended') this.close();
  }

  /** An event: a fresh settle budget, and a check (one more if one is under way). */
  #look() {
    if (this.#closed) return;
    this.#settleLeft = this.#args.settleChecks;
    this.#settleUntil = Date.now() + this.#args.settleTimeoutMs;
    this.#again = true;
    if (this.#wake) this.#wake();
    if (this.#running) return;
    this.#running = this.#run()
      .catch((err) => warn(`${NAME}: ${errMessage(err)}`))
      .finally(() => {
        this.#running = null;
      });
  }

  /**
   * Asks the session (its answer comes back through #onSignal, as every helper's does) until
   * nothing calls for another look: an event that came meanwhile, or a server to settle while
   * the budget lasts.
   */
  async #run() {
    for (;;) {
      if (this.#closed) return;
      this.#again = false;
      const list = await sessionStatuses(this.#query, this.#args.statusTimeoutMs, NAME);
      if (this.#closed) return;
      if (!list) return this.close();
      if (this.#again) continue;
      if (!this.#unsettled()) return;
      if (this.#settleLeft <= 0 || Date.now() >= this.#settleUntil) {
        debug(`${NAME}: servers still unsettled after the settle bound; waiting for the next event`);
        return;
      }
      this.#settleLeft -= 1;
      await this.#nap(this.#args.settleIntervalMs);
    }
  }

  #nap(ms) {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wake = null;
        resolve();
      };
      const timer = unrefTimeout(done, ms);
      this.#wake = done;
    });
  }

  /** A fresh cause of `name`, with those older than CAUSE_TTL_MS dropped. */
  #freshCause(name, now) {
    const c = this.#causes.get(name);
    if (!c) return {};
    const out = {};
    for (const [k, at] of Object.entries(c)) if (now - at < CAUSE_TTL_MS) out[k] = at;
    if (Object.keys(out).length === 0) this.#causes.delete(name);
    return out;
  }

  /**
   * Whether to look again without an event: a server is `pending`, or its credentials gained
   * tokens less than FOLLOW_UP_MS ago and it is not connected yet while no reconnect of this
   * package started since (Claude Code connects it itself after its own sign-in).
   */
  #unsettled() {
    const now = Date.now();
    for (const [name, rec] of this.#known) {
      if (rec.status === 'pending') return true;
      if (rec.status === 'connected' || rec.status === 'disabled') continue;
      const c = this.#freshCause(name, now);
      if (c.tokensAt !== undefined && now - c.tokensAt < FOLLOW_UP_MS && !(c.reconnectAt >= c.tokensAt)) return true;
    }
    return false;
  }

  /** Why a new Claude Code process skips `name` (the config dir's view), or null. */
  #skipWhy(name) {
    try {
      const kinds = addon.diagnose(name, this.#args.addonOpts).reasons.map((r) => r.kind);
      if (kinds.includes('needs-auth-cache')) return 'cached-needs-auth';
      if (kinds.includes('tokenless-stub')) return 'tokenless-credentials';
    } catch {
      /* judged by the session alone */
    }
    return null;
  }

  /** Why `name` went from `prev` to `status` (see the README's table of reasons). */
  #reason(name, prev, status, now) {
    if (prev === undefined) {
      if (!this.#initial) return 'added';
      return (status === 'needs-auth' && this.#skipWhy(name)) || 'init';
    }
    if (status === 'removed') return 'removed';
    const c = this.#freshCause(name, now);
    if (c.credAt !== undefined) {
      if (status === 'connected') return c.reconnectAt >= c.credAt ? 'signed-in-elsewhere' : 'signed-in';
      return 'credentials-changed';
    }
    if (c.cacheAt !== undefined && status !== 'connected') return 'write-back';
    if (c.reconnectAt !== undefined) return 'reconnected';
    if (c.invalidatedAt !== undefined) return 'invalidated';
    if (c.cacheAt !== undefined) return 'write-back';
    if (prev === 'pending') return (status === 'needs-auth' && this.#skipWhy(name)) || 'settled';
    return 'changed';
  }

  /** Diffs an answer of `mcpServerStatus()` with what was pushed, and pushes the changes. */
  #apply(ask, list) {
    if (this.#closed || !(ask > this.#applied) || !Array.isArray(list)) return;
    this.#applied = ask;
    const now = Date.now();
    const changes = [];
    const seen = new Set();
    for (const entry of list) {
      if (!isObject(entry) || typeof entry.name !== 'string' || typeof entry.status !== 'string') continue;
      if (seen.has(entry.name)) continue;
      seen.add(entry.name);
      const prev = this.#known.get(entry.name);
      if (prev?.status === entry.status) continue;
      changes.push({ name: entry.name, prev: prev?.status, status: entry.status, extra: extras(entry) });
    }
    for (const [name, rec] of this.#known) {
      if (!seen.has(name)) changes.push({ name, prev: rec.status, status: 'removed', extra: {} });
    }
    for (const ch of changes) {
      const record = Object.freeze({
        server: ch.name,
        status: ch.status,
        previous: ch.prev ?? null,
        reason: this.#reason(ch.name, ch.prev, ch.status, now),
        at: now,
        ...ch.extra,
      });
      if (ch.status === 'removed') this.#known.delete(ch.name);
      else this.#known.set(ch.name, record);
      // A settled status used up what explained it; `pending` is on the way there.
      if (ch.status !== 'pending') this.#causes.delete(ch.name);
      this.#push(record);
      if (this.#closed) return;
    }
    this.#initial = false;
    for (const name of [...this.#causes.keys()]) this.#freshCause(name, now); // drops stale ones
  }

  #push(record) {
    debug(`${NAME}: ${record.server} ${record.previous ?? '-'} -> ${record.status} (${record.reason})`);
    try {
      const r = this.#callback(record);
      if (r && typeof r.then === 'function') {
        r.then(undefined, (err) => warn(`${NAME}: the callback rejected: ${errMessage(err)}`));
      }
    } catch (err) {
      warn(`${NAME}: the callback threw: ${errMessage(err)}`);
    }
  }

  /** The last status pushed for each server the session reports, in the order first seen. */
  get statuses() {
    return [...this.#known.values()];
  }

  /**
   * Asks the session now (for a change this package cannot see: the host's own
   * `reconnectMcpServer`, `setMcpServers`, a toggle) and resolves once that check and its settle
   * loop are done. Resolves at once after close().
   */
  async refresh() {
    this.#look();
    await this.settled();
  }

  /** Resolves once no check or settle loop is running (at once after close()). */
  async settled() {
    while (this.#running) await this.#running;
  }

  /** Stops at once: no further check and no push, also from an answer already on its way. Idempotent. */
  close() {
    if (this.#closed) return;
    this.#closed = true;
    if (this.#wake) this.#wake();
    this.#unlisten();
    if (this.#signal) this.#signal.removeEventListener('abort', this.#onAbort);
    const sub = this.#sub;
    this.#sub = null;
    try {
      sub?.close();
    } catch (err) {
      warn(`${NAME}: closing the onAuthChanged subscription failed: ${errMessage(err)}`);
    }
    debug(`${NAME}: closed`);
  }

  get closed() {
    return this.#closed;
  }

  [Symbol.dispose]() {
    this.close();
  }
}

/**
 * Pushes each MCP server's status in the session `query` to `callback({ server, status,
 * previous, reason, at, scope?, source?, transport? })`: every server once from the session's
 * first answer, then each change, driven by this package's events (see the top of this file).
 * Throws ERR_INVALID_ARGUMENT at once for bad arguments; never throws into the host afterwards.
 */
function onServerStatus(query, callback, options) {
  return new ServerStatusSubscription(query, callback, options);
}

module.exports = { onServerStatus, ServerStatusSubscription, SETTLE_DEFAULTS: DEFAULTS };
