'use strict';
// What mcp-needs-auth/sdk and mcp-needs-auth/register both do to a config dir, with the same
// debug lines: purge stale needs-auth entries, and subscribe to auth changes with autoInvalidate.
// Both throw what the addon throws: each caller decides how to warn.

const addon = require('../native.js');
const { debug } = require('./log.js');

/** The config dir `options` name, for debug lines: options.configDir, else this process's. */
function dirOf(options) {
  return options.configDir ?? addon.configDirFor();
}

/** `addon.purgeStale(options)`, with one debug line per entry removed (or one saying none was). */
function purgeStale(options) {
  const purged = addon.purgeStale(options);
  for (const p of purged) debug(`purged ${p.server} (${p.reason})`);
  if (purged.length === 0) debug(`purged nothing (${dirOf(options)})`);
  return purged;
}

/** `addon.onAuthChanged(listener, { ...options, autoInvalidate: true })`, and a debug line. */
function watchAuthChanges(listener, options) {
  const subscription = addon.onAuthChanged(listener, { ...options, autoInvalidate: true });
  debug(`watching ${dirOf(options)}`);
  return subscription;
}

module.exports = { purgeStale, watchAuthChanges };
