'use strict';
// What the modules of mcp-needs-auth/sdk tell each other about one live session, in this
// process: every answer of its `mcpServerStatus()` one of them asked for, a reconnect starting
// and ending, and the session's end. Keyed by the query object (held weakly); onServerStatus
// listens, so that it learns of these without asking the session again. A leaf module.

const { warn, errMessage } = require('../log.js');

/** query -> Set<listener> */
const listeners = new WeakMap();
/** Numbers the status requests of this process in the order they were sent (see nextAsk). */
let asks = 0;

const keyable = (q) => q !== null && (typeof q === 'object' || typeof q === 'function');

/**
 * The number of a `mcpServerStatus()` request about to be sent: a listener keeps only answers
 * to requests sent after the one whose answer it last applied (an older answer arriving late
 * would undo a newer one).
 */
function nextAsk() {
  asks += 1;
  return asks;
}

/** Calls `listener(signal)` for every signal about `query` until the returned function is called. */
function listen(query, listener) {
  if (!keyable(query)) return () => {};
  let set = listeners.get(query);
  if (!set) {
    set = new Set();
    listeners.set(query, set);
  }
  set.add(listener);
  return () => {
    set.delete(listener);
  };
}

/**
 * Tells `query`'s listeners: `{ kind: 'statuses', ask, list }`, `{ kind: 'reconnecting', server }`,
 * `{ kind: 'reconnected', server, ok }`, or `{ kind: 'ended' }`. A listener that throws becomes a
 * warning; the caller goes on.
 */
function tell(query, signal) {
  if (!keyable(query)) return;
  const set = listeners.get(query);
  if (!set || set.size === 0) return;
  for (const listener of [...set]) {
    try {
      listener(signal);
    } catch (err) {
      warn(`session signal listener threw: ${errMessage(err)}`);
    }
  }
}

module.exports = { nextAsk, listen, tell };
