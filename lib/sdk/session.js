'use strict';
// A live SDK session, as far as mcp-needs-auth/sdk knows it: only through its control requests
// (`mcpServerStatus()`, `reconnectMcpServer(name)`); the SDK is never imported and no method of
// the query is replaced or wrapped.
//
// The session has ended, for this package, when `mcpServerStatus()` rejects: the SDK (0.2.x and
// 0.3.x) rejects every control request of a closed query, however it closed (close(), return()
// by `break` in `for await`, its abortController aborted, the child exiting), and a session that
// cannot report its servers cannot reconnect them either. No error text is inspected.
// Every answer (and the end) is also told to the session's listeners (lib/sdk/session-signals.js).

const versions = require('../claude-code-versions.js');
const { debug, warn, errMessage } = require('../log.js');
const { unrefTimeout } = require('../timers.js');
const { nextAsk, tell } = require('./session-signals.js');

const NO_ANSWER = Symbol('no answer');

function isQuery(q) {
  return q != null && typeof q.mcpServerStatus === 'function' && typeof q.reconnectMcpServer === 'function';
}

/** `q`, or what the getter `q` returns (undefined when it throws). */
function resolveQuery(q) {
  try {
    return typeof q === 'function' ? q() : q;
  } catch {
    return undefined;
  }
}

/**
 * The session's servers (`query.mcpServerStatus()`), or null when the session cannot answer:
 * it rejected (the query ended), or it gave no answer within `timeoutMs` (warned: a live
 * session that stops answering is worth hearing about).
 */
async function sessionStatuses(query, timeoutMs, where) {
  let timer;
  const noAnswer = new Promise((resolve) => {
    if (!(timeoutMs > 0) || !Number.isFinite(timeoutMs)) return;
    timer = unrefTimeout(resolve, timeoutMs, NO_ANSWER);
  });
  const ask = nextAsk();
  try {
    const list = await Promise.race([Promise.resolve().then(() => query.mcpServerStatus()), noAnswer]);
    if (list === NO_ANSWER) {
      warn(`${where}: mcpServerStatus() gave no answer in ${timeoutMs} ms; the session is taken as ended`);
      return null;
    }
    const answer = Array.isArray(list) ? list : [];
    tell(query, { kind: 'statuses', ask, list: answer }); // onServerStatus diffs it, asking nothing
    return answer;
  } catch (err) {
    debug(`${where}: the session ended (mcpServerStatus() rejected: ${errMessage(err)})`);
    tell(query, { kind: 'ended' });
    return null;
  } finally {
    clearTimeout(timer);
  }
}

const versionAsked = new WeakSet();

/**
 * Notes the Claude Code version the session runs (lib/claude-code-versions.js), once per query:
 * the SDK's `initializationResult()` carries what system/init does (`claude_code_version`, Agent
 * SDK 0.3.x). Never awaited by the caller, never throws, never sends a request of its own.
 */
function noteClaudeCodeVersion(query, where) {
  try {
    if (query == null || typeof query.initializationResult !== 'function' || versionAsked.has(query)) return;
    versionAsked.add(query);
    Promise.resolve()
      .then(() => query.initializationResult())
      .then(
        (init) => versions.noteClaudeCodeVersion(init?.claude_code_version, where),
        () => {},
      );
  } catch {
    // a query that cannot say: nothing to note
  }
}

module.exports = { isQuery, resolveQuery, sessionStatuses, noteClaudeCodeVersion };
