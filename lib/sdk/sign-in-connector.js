'use strict';
// signIn(query, '<claude.ai connector>'): a connector is authorized on claude.ai, not on this
// machine. Claude Code 2.1.332+ answers `mcp_authenticate` for one at once with claude.ai's
// start-auth URL and `callbackExpected: false` (no tokens land here, nothing calls back);
// 2.1.108 refuses: `Server type "claudeai-proxy" does not support OAuth authentication`.
// So the handle gives the URL, and `completed` resolves once the session reports the connector
// connected: after a re-dial (`redial()` on the handle when the user says they are done, or
// redialConnectors / redialConnectorsWhileLive), its needs-auth entry then removed.

const { errMessage } = require('../log.js');
const { sleep, unrefTimeout } = require('../timers.js');
const errors = require('./sign-in-errors.js');
const { isConnectorStatus } = require('./connectors.js');
const { dropEntryOfConnected } = require('./reconnect.js');

const STATUS_POLL_MS = 1000;

function unsupported(server, why) {
  return errors.signInError(
    'ERR_SIGN_IN_UNSUPPORTED',
    `signIn: "${server}" is a claude.ai connector and ${why}. Authorize it on claude.ai ` +
      `(https://claude.ai/customize/connectors), then re-dial it from the session (redialConnectors(query))`,
    { transport: 'claudeai-proxy' },
  );
}

/** In the session's status list, `server`'s when it is a connector, else null (not ours to handle). */
function connectorIn(list, server) {
  const st = Array.isArray(list) ? list.find((s) => s && s.name === server) : undefined;
  return st && isConnectorStatus(st) ? st : null;
}

/**
 * The sign-in of the connector `server`: `{ server, authUrl, callbackExpected: false,
 * completed, redial(), submitCallbackUrl() }`. `args`: signIn's checked options.
 */
async function signInConnector(query, server, args) {
  let response;
  try {
    response = await query.mcpAuthenticate(server);
  } catch (err) {
    const msg = errors.redact(errMessage(err), []);
    if (/does not support OAuth/i.test(msg)) {
      throw unsupported(server, 'this Claude Code offers no sign-in for connectors (2.1.108 and older)');
    }
    if (/missing org or server id/i.test(msg)) {
      throw unsupported(
        server,
        'Claude Code cannot build its claude.ai authorization URL (no organization in its global config, or no connector id)',
      );
    }
    throw errors.fromClaudeCode(err, server, []);
  }
  const authUrl = response && typeof response.authUrl === 'string' ? response.authUrl : null;
  if (!authUrl) throw unsupported(server, 'Claude Code gave no claude.ai authorization URL for it');

  const opts = { configDir: args.configDir };
  let done = false;
  const completed = (async () => {
    const end = Date.now() + args.timeoutMs;
    for (;;) {
      if (args.signal?.aborted) throw errors.abortError(args.signal);
      let list;
      try {
        list = await query.mcpServerStatus();
      } catch (err) {
        throw errors.signInError(
          'ERR_SIGN_IN_FAILED',
          `signIn: the session ended before "${server}" connected: ${errMessage(err)}`,
        );
      }
      const st = Array.isArray(list) ? list.find((s) => s && s.name === server) : undefined;
      if (st?.status === 'connected') {
        dropEntryOfConnected(server, opts, 'signIn');
        return { server, status: 'connected' };
      }
      if (Date.now() >= end) {
        throw errors.signInError(
          'ERR_SIGN_IN_TIMEOUT',
          `signIn: "${server}" was not reported connected within ${args.timeoutMs} ms (authorize it on claude.ai, then redial())`,
          { timeoutMs: args.timeoutMs },
        );
      }
      await (args.signal ? raceSleep(STATUS_POLL_MS, args.signal) : sleep(STATUS_POLL_MS));
    }
  })().finally(() => {
    done = true;
  });
  completed.catch(() => {});

  return Object.freeze({
    server,
    authUrl,
    callbackExpected: false,
    completed,
    /** The user says they authorized it: one re-dial; resolves with the status it left. */
    redial: async () => {
      if (done) return (await query.mcpServerStatus()).find((s) => s && s.name === server)?.status;
      try {
        await query.reconnectMcpServer(server);
      } catch {
        // Still needs authorization; the status says so.
      }
      const list = await query.mcpServerStatus();
      return list.find((s) => s && s.name === server)?.status;
    },
    submitCallbackUrl: async () => {
      throw errors.signInError(
        'ERR_SIGN_IN_NOT_PENDING',
        `signIn: "${server}" is a claude.ai connector: no callback URL is expected (callbackExpected: false)`,
      );
    },
  });
}

function raceSleep(ms, signal) {
  return new Promise((resolve) => {
    const t = unrefTimeout(done, ms);
    function done() {
      clearTimeout(t);
      signal.removeEventListener('abort', done);
      resolve();
    }
    signal.addEventListener('abort', done, { once: true });
  });
}

module.exports = { connectorIn, signInConnector };
