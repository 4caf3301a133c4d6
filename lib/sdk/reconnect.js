'use strict';
// Reconnecting one server in a live session: whether a new Claude Code process would dial it,
// the bounded retries, and what follows a connect (its needs-auth entry dropped, the outcome
// reported). Used by the reconnect subscription and by needsAuthHooks.

const addon = require('../../native.js');
const { debug, warn, errMessage } = require('../log.js');
const { sleep } = require('../timers.js');
const { sessionStatuses } = require('./session.js');
const { tell } = require('./session-signals.js');

// How often a server the session reports `pending` is looked at again while waiting for it.
const PENDING_POLL_MS = 200;

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
      tell(query, { kind: 'reconnecting', server }); // onServerStatus: why its status will change
      await query.reconnectMcpServer(server);
      tell(query, { kind: 'reconnected', server, ok: true });
      debug(`${server}: reconnected`);
      // Dropped only once the session says connected (a reconnect that resolved is not proof).
      const after = await sessionStatuses(query, policy.statusTimeoutMs, where);
      if (after?.find((s) => s && s.name === server)?.status === 'connected') dropEntryOfConnected(server, opts, where);
      report(policy, { server, ok: true, attempts: attempt });
      return true;
    } catch (err) {
      lastError = err;
      tell(query, { kind: 'reconnected', server, ok: false });
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

module.exports = { PENDING_POLL_MS, wouldDial, reconnectServer, dropEntryOfConnected };
