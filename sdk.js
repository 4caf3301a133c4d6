'use strict';
// mcp-needs-auth/sdk: glue between the needs-auth cache addon and the Claude Agent SDK
// (`@anthropic-ai/claude-agent-sdk` 0.2.x and 0.3.x) or anything built on it (claude-agent-acp).
//
// Structural only: this module never imports the SDK. A "query" is any object with
// `mcpServerStatus(): Promise<{name, status}[]>` and `reconnectMcpServer(name): Promise<void>`.
//
//   import { query } from '@anthropic-ai/claude-agent-sdk'; // an ES module
//   import { prepareQuery, reconnectOnAuthChange } from 'mcp-needs-auth/sdk';
//
//   const ac = new AbortController();
//   let q;
//   q = query({ prompt, options: prepareQuery({ env, mcpServers, abortController: ac }, { query: () => q }) });
//   // (prepareQuery takes the query's options, not the whole query() argument)
//   const sub = reconnectOnAuthChange(q, { env, signal: ac.signal }); // live session: reconnect after sign-in
//   try { for await (const m of q) { ... } } finally { sub.close(); }
//
// Bad options throw ERR_INVALID_ARGUMENT when a helper is called; nothing here throws into the
// host once set up: failures are reported with process.emitWarning (and, with
// MCP_NEEDS_AUTH_DEBUG=1, one stderr line per action).
//
// The modules, each importing only those below it:
//   lib/sdk/hooks.js                   prepareQuery, needsAuthHooks (a new session)
//   lib/sdk/reconnect-subscription.js  reconnectOnAuthChange (a live session)
//   lib/sdk/sign-in.js                 signIn (lib/sdk/sign-in-errors.js: its error codes;
//                                      lib/sdk/sign-in-connector.js: a claude.ai connector's)
//   lib/sdk/server-status.js           onServerStatus (each server's status, pushed)
//   lib/sdk/connectors.js              redialConnectors, redialConnectorsWhileLive (claude.ai
//                                      connectors; lib/sdk/global-config.js: the account ids)
//   lib/sdk/reconnect.js               reconnecting one server, with bounded retries
//   lib/sdk/session.js                 a session as its control requests show it
//   lib/sdk/session-signals.js         what the modules above tell each other about a session
//   lib/sdk/options.js                 a helper's options as addon options and reconnect settings
//   lib/sdk/config-dir.js              configDirFor
//   lib/sdk/validate-options.js        every helper's option check (leaf)
//   lib/sdk/sign-ins.js                the sign-ins in flight, by query and server (leaf)
//   lib/log.js, lib/timers.js, lib/upkeep.js (shared with mcp-needs-auth/register),
//   lib/claude-code-versions.js (the newest Claude Code checked)

const { configDirFor } = require('./lib/sdk/config-dir.js');
const { prepareQuery, needsAuthHooks } = require('./lib/sdk/hooks.js');
const { reconnectOnAuthChange, ReconnectSubscription } = require('./lib/sdk/reconnect-subscription.js');
const { signIn } = require('./lib/sdk/sign-in.js');
const { onServerStatus, ServerStatusSubscription } = require('./lib/sdk/server-status.js');
const { redialConnectors, redialConnectorsWhileLive, ConnectorRedial } = require('./lib/sdk/connectors.js');

module.exports = {
  configDirFor,
  prepareQuery,
  needsAuthHooks,
  reconnectOnAuthChange,
  ReconnectSubscription,
  signIn,
  onServerStatus,
  ServerStatusSubscription,
  redialConnectors,
  redialConnectorsWhileLive,
  ConnectorRedial,
};
