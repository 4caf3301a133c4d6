'use strict';
// Option shaping of mcp-needs-auth/sdk: a helper's options become the addon's options (which
// config dir, which credentials, which server configs) and the reconnect settings, with their
// defaults. The values were checked when the helper was called (validate-options.js).

const addon = require('../../native.js');
const { warn, errMessage } = require('../log.js');
const { configDirFor } = require('./config-dir.js');

const DEFAULT_STATUSES = Object.freeze(['needs-auth', 'failed']);

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
      addon.validateServerConfig(name, config);
      usable[name] = config;
    } catch (err) {
      const why = errMessage(err);
      warn(`server config of ${JSON.stringify(name)} left out, its needs-auth entry is judged by name only: ${why}`);
    }
  }
  return usable;
}

/** False, with a warning, for the config dir '' (CLAUDE_CONFIG_DIR set but empty): nothing to do. */
function usableDir(opts, what) {
  if (opts.configDir === '') {
    warn(`${what}: the config dir is '' (CLAUDE_CONFIG_DIR is set but empty); nothing done`);
    return false;
  }
  return true;
}

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

module.exports = { addonOptions, usableDir, reconnectPolicy };
