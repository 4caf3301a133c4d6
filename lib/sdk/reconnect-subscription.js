'use strict';
// reconnectOnAuthChange: keeps a live SDK session in step with sign-ins. An onAuthChanged
// subscription of the session's config dir queues the servers its events name; a drain loop
// reconnects them one at a time (lib/sdk/reconnect.js), waiting for servers still `pending`.

const addon = require('../../native.js');
const { debug, warn, errMessage } = require('../log.js');
const { unrefTimeout } = require('../timers.js');
const upkeep = require('../upkeep.js');
const { addonOptions, usableDir, reconnectPolicy } = require('./options.js');
const { isQuery, sessionStatuses, noteClaudeCodeVersion } = require('./session.js');
const { PENDING_POLL_MS, wouldDial, reconnectServer } = require('./reconnect.js');
const signIns = require('./sign-ins.js');
const { validateOptions } = require('./validate-options.js');

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
  #query;
  #opts;
  #policy;
  #signal = null;
  #onAbort = () => this.close();
  #queued = new Map(); // servers named by events, not yet looked at -> their event (see #onEvent)
  #queuedAll = null; // the event, when one named no server: look at all of them
  #waiting = new Map(); // servers seen `pending`, looked at again until they settle -> their work
  #draining = null; // the promise of the running #drain()
  #sub = null;
  #closed = false;
  #wake = null; // ends the drain's wait for a pending server early (an event, close())
  #leftToSignIn = new Set(); // servers whose sign-in in this session connects them (see #drain)

  constructor(query, options) {
    if (!isQuery(query)) {
      throw new TypeError(`${RECONNECT}(query): query must have mcpServerStatus() and reconnectMcpServer(name)`);
    }
    const o = validateOptions(RECONNECT, options);
    this.#query = query;
    this.#opts = addonOptions(o);
    this.#policy = reconnectPolicy(o);
    if (o.signal) this.#signal = o.signal;
    noteClaudeCodeVersion(query, RECONNECT);

    if (!usableDir(this.#opts, RECONNECT) || o.signal?.aborted) {
      this.#closed = true;
      return;
    }
    try {
      this.#sub = upkeep.watchAuthChanges((ev) => this.#onEvent(ev), {
        ...this.#opts,
        ...(o.watch !== undefined ? { watch: o.watch } : {}),
        ...(o.pollIntervalMs !== undefined ? { pollIntervalMs: o.pollIntervalMs } : {}),
      });
    } catch (err) {
      this.#closed = true;
      warn(`${RECONNECT}: onAuthChanged failed: ${errMessage(err)}`);
      return;
    }
    if (this.#signal) this.#signal.addEventListener('abort', this.#onAbort, { once: true });
  }

  /**
   * An onAuthChanged event: queue the servers it names (all when none) and drain the queue. A
   * queued event remembers whether the server's credentials changed and when this process first
   * heard it (signedInAt), for #dialable().
   */
  #onEvent(ev) {
    if (this.#closed) return;
    const servers = ev && Array.isArray(ev.servers) ? ev.servers : [];
    debug(`auth changed (${ev?.reason}): ${servers.length ? servers.join(', ') : 'all servers'}`);
    const heard = { signedInAt: ev?.reason === 'credentials-changed' ? Date.now() : null };
    if (servers.length === 0) this.#queuedAll = mergeHeard(this.#queuedAll, heard);
    else for (const s of servers) this.#queued.set(s, mergeHeard(this.#queued.get(s), heard));
    if (this.#wake) this.#wake();
    this.#startDrain();
  }

  /** Waits PENDING_POLL_MS, or less when an event or close() comes first. */
  #nap() {
    return new Promise((resolve) => {
      const done = () => {
        clearTimeout(timer);
        this.#wake = null;
        resolve();
      };
      const timer = unrefTimeout(done, PENDING_POLL_MS);
      this.#wake = done;
    });
  }

  #hasQueued() {
    return this.#queuedAll !== null || this.#queued.size > 0;
  }

  /** Runs #drain() unless it runs already (it picks up what is queued meanwhile). */
  #startDrain() {
    if (this.#draining || this.#closed) return;
    this.#draining = this.#drain()
      .catch((err) => warn(`${RECONNECT}: ${errMessage(err)}`))
      .finally(() => {
        this.#draining = null;
        // Queued after #drain() last looked (or left by a failed drain): go again.
        if (this.#hasQueued() || this.#waiting.size > 0) this.#startDrain();
      });
  }

  /**
   * Reconnects the queued servers the session reports in `policy.statuses` that a new process
   * would dial, one at a time, until none is left. A server still `pending` (its connect began
   * before the event, maybe with the old token) is waited for: while only such servers are left,
   * one status check every PENDING_POLL_MS (events meanwhile are handled at once); once it
   * settles the usual rule applies; after `pendingWaitMs` without settling it is left alone.
   */
  async #drain() {
    const wait = this.#policy.pendingWaitMs;
    while (!this.#closed && (this.#hasQueued() || this.#waiting.size > 0)) {
      if (!this.#hasQueued()) {
        await this.#nap();
        if (this.#closed) return;
      }
      const all = this.#queuedAll;
      const queued = new Map(this.#queued);
      this.#queuedAll = null;
      this.#queued.clear();
      const statuses = await sessionStatuses(this.#query, this.#policy.statusTimeoutMs, RECONNECT);
      if (!statuses) return this.close();
      const now = Date.now();
      // Each server to look at -> {signedInAt, seenPending, until}; a new event restarts the wait.
      const work = new Map(this.#waiting);
      const add = (name, heard) => {
        const w = work.get(name);
        work.set(name, { ...mergeHeard(w, heard), seenPending: w?.seenPending === true, until: now + wait });
      };
      if (all) for (const st of statuses) if (st && typeof st.name === 'string') add(st.name, all);
      for (const [name, heard] of queued) add(name, heard);
      for (const [name, w] of work) {
        if (this.#closed) return;
        const st = statuses.find((s) => s && s.name === name);
        if (st?.status === 'pending') {
          if (now < w.until) this.#waiting.set(name, { ...w, seenPending: true });
          else {
            this.#waiting.delete(name);
            debug(`${name}: still pending ${wait} ms after the event; not waiting longer`);
          }
          continue;
        }
        this.#waiting.delete(name);
        if (!st || !this.#policy.statuses.has(st.status)) continue;
        if (this.#leaveToSignIn(name, w)) continue;
        if (!this.#dialable(name, w)) {
          debug(`${name}: still skipped (needs-auth entry or token-less credentials); not reconnecting`);
          continue;
        }
        const alive = await reconnectServer(this.#query, name, this.#policy, () => this.#closed, RECONNECT, this.#opts);
        if (!alive) return this.close();
      }
    }
  }

  /**
   * True when a signIn of `name` is in flight in this session: it connects the server itself once
   * the tokens are saved (or leaves that to Claude Code, which connects after its own callback),
   * so a reconnect here would be a second connect. The server is looked at again when that
   * sign-in ends (connected by then, or judged as usual if the sign-in failed).
   */
  #leaveToSignIn(name, w) {
    const flow = signIns.inFlight(this.#query, name);
    if (!flow) return false;
    debug(`${name}: a sign-in of it is in flight in this session; it connects the server`);
    if (!this.#leftToSignIn.has(name)) {
      this.#leftToSignIn.add(name);
      flow.settled.then(() => {
        this.#leftToSignIn.delete(name);
        if (this.#closed) return;
        this.#queued.set(name, mergeHeard(this.#queued.get(name), { signedInAt: w.signedInAt }));
        this.#startDrain();
      });
    }
    return true;
  }

  /**
   * Whether to reconnect `name`: a new process would dial it; or it was still connecting when its
   * credentials changed and settled failing (its connect used the old token), and the only reason
   * a new process would skip it is the needs-auth entry that connect wrote after the sign-in,
   * which the superseded rule rightly keeps (it cannot tell that 401 from a genuine one) while the
   * store holds an access token.
   */
  #dialable(name, w) {
    if (wouldDial(name, this.#opts)) return true;
    if (!w.seenPending || w.signedInAt == null) return false;
    try {
      const d = addon.diagnose(name, this.#opts);
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
    while (this.#draining) await this.#draining;
  }

  /** Stops at once: no further status checks or reconnects. Idempotent. */
  close() {
    if (this.#closed) return;
    this.#closed = true;
    this.#queued.clear();
    this.#queuedAll = null;
    this.#waiting.clear();
    if (this.#wake) this.#wake();
    if (this.#signal) this.#signal.removeEventListener('abort', this.#onAbort);
    try {
      this.#sub.close();
    } catch (err) {
      warn(`${RECONNECT}: closing the onAuthChanged subscription failed: ${errMessage(err)}`);
    }
    this.#sub = null;
    debug(`${RECONNECT}: closed`);
  }

  get closed() {
    return this.#closed;
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
 * after that change does not stop the reconnect (see #dialable). Other servers are not held up.
 * Stops on `close()`, when `options.signal` aborts, or when the session ends (lib/sdk/session.js):
 * at once, also while waiting for a pending server.
 */
function reconnectOnAuthChange(query, options) {
  return new ReconnectSubscription(query, options);
}

module.exports = { ReconnectSubscription, reconnectOnAuthChange };
