'use strict';
// Which config dir a Claude Code child will use, given the environment it is started with.
// A leaf module: sdk.js and sign-in.js both resolve config dirs through it.

const os = require('node:os');
const path = require('node:path');

/**
 * The config dir the Claude Code child of `query({ options: queryOptions })` will use:
 * `(queryOptions.env ?? process.env).CLAUDE_CONFIG_DIR ?? join(<that env's home>, '.claude')`,
 * NFC-normalised. Mirrors Claude Code's `??`: a set-but-empty CLAUDE_CONFIG_DIR is kept ('').
 * The home is that env's HOME (USERPROFILE on Windows), else os.homedir().
 */
function configDirFor(queryOptions) {
  const env = (queryOptions != null ? queryOptions.env : undefined) ?? process.env;
  const homeVar = process.platform === 'win32' ? 'USERPROFILE' : 'HOME';
  const dir = env.CLAUDE_CONFIG_DIR ?? path.join(env[homeVar] ?? os.homedir(), '.claude');
  return String(dir).normalize('NFC');
}

module.exports = { configDirFor };
