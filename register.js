'use strict';
// mcp-needs-auth/register — preload for hosts that start Claude Code sessions (claude-agent-acp,
// Agent SDK apps) without changing their code:
//
//   NODE_OPTIONS="--require mcp-needs-auth/register" claude-agent-acp
//   node -r mcp-needs-auth/register host.js
//
// On load: purgeStale() for this process's config dir (CLAUDE_CONFIG_DIR ?? ~/.claude), then ONE
// onAuthChanged subscription (autoInvalidate) for the life of the process, so that a sign-in
// made anywhere removes the server's needs-auth entry before the next session starts.
// Never keeps the process alive, never throws into the host (failures are process warnings),
// idempotent when required twice. MCP_NEEDS_AUTH_DEBUG=1 prints one stderr line per action.

const { debug, debugEnabled, errMessage, warn: emitWarning } = require('./lib/log.js');

const STATE = Symbol.for('mcp-needs-auth.register');

function warn(message) {
  emitWarning(`mcp-needs-auth/register: ${message}`, 'MCP_NEEDS_AUTH_REGISTER');
}

/** The debug line for an event: what changed, for whom, and whether entries are left. */
function describe(ev, addon) {
  const servers = Array.isArray(ev.servers) ? ev.servers : [];
  const who = servers.length ? servers.join(', ') : 'all servers';
  const what =
    ev.reason === 'credentials-changed'
      ? 'credentials changed'
      : ev.reason === 'cache-changed'
        ? 'cache changed'
        : 'invalidated';
  let tail = '';
  if (ev.reason === 'credentials-changed' && servers.length) {
    const cached = servers.filter((s) => {
      try {
        return addon.isNeedsAuthCached(s);
      } catch {
        return false;
      }
    });
    tail = cached.length ? `; still cached: ${cached.join(', ')}` : '; entries removed';
  }
  return `${what}: ${who}${tail}`;
}

function register() {
  const existing = globalThis[STATE];
  if (existing) {
    debug('already registered');
    return existing;
  }
  const state = { subscription: null, purged: [], configDir: null };
  try {
    Object.defineProperty(globalThis, STATE, { value: state, configurable: true });
  } catch {
    globalThis[STATE] = state;
  }

  let addon;
  let upkeep;
  try {
    addon = require('./native.js');
    upkeep = require('./lib/upkeep.js');
  } catch (err) {
    warn(`cannot load the addon: ${errMessage(err)}`);
    return state;
  }

  try {
    state.configDir = addon.configDirFor();
  } catch (err) {
    warn(`cannot resolve the config dir: ${errMessage(err)}`);
    return state;
  }

  // No configDir option: the addon resolves this process's own, as the sessions it starts do.
  try {
    state.purged = upkeep.purgeStale({});
  } catch (err) {
    warn(`purgeStale failed: ${errMessage(err)}`);
  }

  try {
    state.subscription = upkeep.watchAuthChanges((ev) => {
      try {
        if (debugEnabled()) debug(describe(ev, addon));
      } catch {
        // never throw into the host
      }
    }, {});
  } catch (err) {
    warn(`onAuthChanged failed: ${errMessage(err)}`);
  }
  return state;
}

try {
  module.exports = register();
} catch (err) {
  warn(errMessage(err));
  module.exports = {};
}
