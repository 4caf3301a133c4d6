'use strict';
// Which config dir a Claude Code child will use, given the environment it is started with.
// A leaf module: every lib/sdk/ module resolves config dirs through it.

const addon = require('../../native.js');

/**
 * The config dir the Claude Code child of `query({ options: queryOptions })` will use: the
 * addon's `configDirFor(queryOptions.env)` (the rule lives in Rust, next to every other use of it).
 */
function configDirFor(queryOptions) {
  return addon.configDirFor(queryOptions != null ? queryOptions.env : undefined);
}

module.exports = { configDirFor };
