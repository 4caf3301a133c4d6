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

const STATE = Symbol.for('mcp-needs-auth.register');

function debugEnabled() {
  const v = process.env.MCP_NEEDS_AUTH_DEBUG;
  return v !== undefined && v !== '' && v !== '0' && String(v).toLowerCase() !== 'false';
}

function debug(line) {
  if (!debugEnabled()) return;
  try { process.stderr.write(`mcp-needs-auth: ${line}\n`); } catch { /* ignore */ }
}

function warn(message) {
  try {
    process.emitWarning(`mcp-needs-auth/register: ${message}`, { type: 'McpNeedsAuthWarning', code: 'MCP_NEEDS_AUTH_REGISTER' });
  } catch { /* ignore */ }
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
  try {
    addon = require('./index.js');
  } catch (err) {
    warn(`cannot load the addon: ${err && err.message}`);
    return state;
  }

  try {
    state.configDir = require('node:path').dirname(addon.cachePath());
  } catch (err) {
    warn(`cannot resolve the config dir: ${err && err.message}`);
    return state;
  }

  try {
    state.purged = addon.purgeStale();
    if (state.purged.length === 0) debug(`purged nothing (${state.configDir})`);
    for (const p of state.purged) debug(`purged ${p.server} (${p.reason})`);
  } catch (err) {
    warn(`purgeStale failed: ${err && err.message}`);
  }

  try {
    state.subscription = addon.onAuthChanged((ev) => {
      try {
        if (!debugEnabled()) return;
        const servers = Array.isArray(ev.servers) ? ev.servers : [];
        const who = servers.length ? servers.join(', ') : 'all servers';
        const what = ev.reason === 'credentials-changed' ? 'credentials changed'
          : ev.reason === 'cache-changed' ? 'cache changed' : 'invalidated';
        let tail = '';
        if (ev.reason === 'credentials-changed' && servers.length) {
          const cached = servers.filter((s) => {
            try { return addon.isNeedsAuthCached(s); } catch { return false; }
          });
          tail = cached.length ? `; still cached: ${cached.join(', ')}` : '; entries removed';
        }
        debug(`${what}: ${who}${tail}`);
      } catch { /* never throw into the host */ }
    }, { autoInvalidate: true });
    debug(`watching ${state.configDir}`);
  } catch (err) {
    warn(`onAuthChanged failed: ${err && err.message}`);
  }
  return state;
}

try {
  module.exports = register();
} catch (err) {
  warn(String(err && err.message));
  module.exports = {};
}
