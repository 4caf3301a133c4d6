'use strict';
// The sign-ins in flight in this process, by session (query) and server: at most one per server
// per session. signIn registers its flows here; reconnectOnAuthChange leaves a server whose
// sign-in is in flight to that sign-in (which connects it once its tokens are saved), so that one
// sign-in makes one connect. A leaf module.

/** query -> Map<server, flow>; a flow has `done` and `settled` (resolves when it ends, either way). */
const flows = new WeakMap();

/** The flow of `server` in `query` that has not ended, if any. */
function inFlight(query, server) {
  const f =
    query != null && (typeof query === 'object' || typeof query === 'function')
      ? flows.get(query)?.get(server)
      : undefined;
  return f && !f.done ? f : undefined;
}

function register(query, server, flow) {
  let map = flows.get(query);
  if (!map) {
    map = new Map();
    flows.set(query, map);
  }
  map.set(server, flow);
}

/** Removes `flow` (only if it is still the one registered for `server`). */
function unregister(query, server, flow) {
  const map = flows.get(query);
  if (map && map.get(server) === flow) map.delete(server);
}

module.exports = { inFlight, register, unregister };
