'use strict';
// The errors signIn rejects with, each with a stable `code`, and the redaction that keeps what
// the host handed in for a flow (callback URLs, codes, states) out of every message.

const { errMessage } = require('../log.js');

function signInError(code, message, extra) {
  const err = new Error(message);
  err.code = code;
  if (extra) Object.assign(err, extra);
  return err;
}

/** A bad argument: `ERR_INVALID_ARGUMENT`. */
function invalid(message) {
  return signInError('ERR_INVALID_ARGUMENT', `signIn: ${message}`);
}

/** The error Node's own APIs reject with on abort. */
function abortError(signal) {
  const err = new Error('The operation was aborted', { cause: signal.reason });
  err.name = 'AbortError';
  err.code = 'ABORT_ERR';
  return err;
}

/** An abort or our own time-out: passed through as is, never wrapped. */
function isAbortOrTimeout(err) {
  return Boolean(err && (err.name === 'AbortError' || err.code === 'ERR_SIGN_IN_TIMEOUT'));
}

/** A message from Claude Code, with anything the host handed in for this flow cut out. */
function redact(message, secrets) {
  let out = typeof message === 'string' ? message : String(message);
  for (const s of secrets) if (s && s.length >= 4) out = out.split(s).join('[redacted]');
  // Belt and braces: no query-string value of a code/state/token parameter survives.
  return out.replace(/([?&#](?:code|state|access_token|refresh_token|id_token)=)[^&#\s"']*/gi, '$1[redacted]');
}

function transportError(server, type) {
  return signInError(
    'ERR_SIGN_IN_NOT_SUPPORTED_FOR_TRANSPORT',
    `signIn: MCP server "${server}" uses the ${type} transport; only http and sse servers sign in with OAuth`,
    { transport: type },
  );
}

function unknownServer(server) {
  return signInError('ERR_UNKNOWN_SERVER', `signIn: MCP server "${server}" is not configured in this session`);
}

/** Claude Code's refusals of `mcp_authenticate`, as stable codes. */
function fromClaudeCode(err, server, secrets) {
  const msg = redact(errMessage(err), secrets);
  if (/Server not found/i.test(msg)) return unknownServer(server);
  const transport = /Server type "([^"]*)" does not support OAuth/i.exec(msg);
  if (transport) return transportError(server, transport[1]);
  return signInError('ERR_SIGN_IN_FAILED', `signIn: Claude Code could not sign in "${server}": ${msg}`);
}

/**
 * Whether Claude Code's refusal of a callback URL left its flow waiting for another one: 2.1.332+
 * answers a URL of another attempt (OAuth state mismatch) "... The sign-in in progress is still
 * waiting; submit the redirect URL from its own browser page." (2.1.108 ends its flow instead.)
 */
function flowStillWaiting(message) {
  return /\bstill waiting\b/i.test(message);
}

module.exports = {
  signInError,
  flowStillWaiting,
  invalid,
  abortError,
  isAbortOrTimeout,
  redact,
  transportError,
  unknownServer,
  fromClaudeCode,
};
