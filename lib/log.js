'use strict';
// How the package's JavaScript reports: one stderr line per action when MCP_NEEDS_AUTH_DEBUG is
// set (not '', '0' or 'false'), and process warnings (type McpNeedsAuthWarning) for failures
// that have no caller to throw to. Neither ever throws into the host.

const WARNING_TYPE = 'McpNeedsAuthWarning';

function debugEnabled() {
  const v = process.env.MCP_NEEDS_AUTH_DEBUG;
  return v !== undefined && v !== '' && v !== '0' && v.toLowerCase() !== 'false';
}

function debug(line) {
  if (!debugEnabled()) return;
  try {
    process.stderr.write(`mcp-needs-auth: ${line}\n`);
  } catch {
    // stderr is gone: nothing left to tell
  }
}

/** `code`: MCP_NEEDS_AUTH_SDK for mcp-needs-auth/sdk, MCP_NEEDS_AUTH_REGISTER for the preload. */
function warn(message, code = 'MCP_NEEDS_AUTH_SDK') {
  try {
    process.emitWarning(message, { type: WARNING_TYPE, code });
  } catch {
    // a throwing 'warning' listener must not reach the host
  }
}

function errMessage(err) {
  return err && typeof err.message === 'string' ? err.message : String(err);
}

module.exports = { debugEnabled, debug, warn, errMessage };
