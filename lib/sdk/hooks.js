'use strict';
// needsAuthHooks and prepareQuery: what a new SDK session gets before it starts. The purge runs
// in the config dir the session's Claude Code child will use; the hooks purge again and schedule
// (never await) a reconnect of servers a new process would now dial.
//
// Which hook: SessionStart would be the natural one, but no pinned stack fires it for an SDK
// session's callback hooks (Agent SDK 0.2.104 + Claude Code 2.1.108, 0.3.334 + 2.1.334: only
// UserPromptSubmit fires, before each turn). So the same hook is registered for both events; as
// UserPromptSubmit fires on every prompt, its work is idempotent: the purge removes only stale
// entries, a reconcile reconnects only servers the session reports `needs-auth` that a new
// process would dial, and a trigger while one runs for the same query makes it run once more
// instead of starting a second.

const { debug, warn, errMessage } = require('../log.js');
const { sleep, unrefTimeout } = require('../timers.js');
const upkeep = require('../upkeep.js');
const { configDirFor } = require('./config-dir.js');
const { addonOptions, usableDir, reconnectPolicy } = require('./options.js');
const { isQuery, resolveQuery, sessionStatuses } = require('./session.js');
const { PENDING_POLL_MS, wouldDial, reconnectServer } = require('./reconnect.js');
const { validateOptions } = require('./validate-options.js');

// Marks our matchers, so that prepareQuery never adds a second one.
const HOOK_MARK = Symbol.for('mcp-needs-auth.sdk.hook');
// The events the hook runs on (see above); the first one that fires for a session does the work.
const HOOK_EVENTS = Object.freeze(['SessionStart', 'UserPromptSubmit']);

/** `purgeStale(opts)`; a failure becomes a warning and purges nothing. */
function safePurge(opts, where) {
  if (!usableDir(opts, where)) return [];
  try {
    return upkeep.purgeStale(opts);
  } catch (err) {
    warn(`${where}: purgeStale failed: ${errMessage(err)}`);
    return [];
  }
}

/**
 * The hooks' reconnect: once the session's servers are past `pending` (or `pendingWaitMs`
 * passed), reconnects those it reports `needs-auth` that a new process would dial, one at a
 * time, as reconnectOnAuthChange does.
 */
async function reconcileSession(q, opts, helperOptions) {
  const policy = reconnectPolicy(helperOptions);
  const deadline = Date.now() + policy.pendingWaitMs;
  let statuses;
  for (;;) {
    statuses = await sessionStatuses(q, policy.statusTimeoutMs, 'needsAuthHooks');
    if (!statuses) return;
    if (!statuses.some((s) => s && s.status === 'pending') || Date.now() >= deadline) break;
    await sleep(PENDING_POLL_MS);
  }
  const names = statuses.filter((s) => s && s.status === 'needs-auth' && wouldDial(s.name, opts)).map((s) => s.name);
  for (const name of names) {
    if (!(await reconnectServer(q, name, policy, () => false, 'needsAuthHooks', opts))) return;
  }
}

/**
 * Starts reconcileSession for the query `getQuery` names, unless one runs for it already: then
 * that one runs once more when it is done (a prompt can follow a sign-in the running one missed).
 */
function reconciler(getQuery, opts, helperOptions) {
  const running = new WeakMap(); // query -> { again }
  return () => {
    const q = resolveQuery(getQuery);
    if (!isQuery(q)) {
      debug('needsAuthHooks: no query to reconnect (pass options.query: () => q)');
      return;
    }
    const busy = running.get(q);
    if (busy) {
      busy.again = true;
      return;
    }
    const state = { again: true };
    running.set(q, state);
    (async () => {
      while (state.again) {
        state.again = false;
        await reconcileSession(q, opts, helperOptions);
      }
    })()
      .catch((err) => warn(`needsAuthHooks reconnect: ${errMessage(err)}`))
      .finally(() => running.delete(q));
  };
}

/**
 * SDK hooks for `options.hooks`: `{ SessionStart: [matcher], UserPromptSubmit: [matcher] }`.
 * The hook purges stale needs-auth entries of the session's config dir and schedules (never
 * awaits) a reconnect of every server the session reports `needs-auth` that a new process would
 * now dial. The reconnect needs the query, which does not exist yet when the options are built:
 * pass `query` as a getter.
 */
function needsAuthHooks(options) {
  const o = validateOptions('needsAuthHooks', options);
  let reconcile;
  const hook = async (input, _toolUseId, ctx) => {
    const event = typeof input?.hook_event_name === 'string' ? input.hook_event_name : 'hook';
    try {
      const opts = addonOptions(o);
      safePurge(opts, `${event} hook`);
      if (o.query !== undefined) {
        reconcile ??= reconciler(o.query, opts, o);
        const signal = ctx?.signal;
        unrefTimeout(() => {
          if (!signal?.aborted) reconcile();
        }, 0);
      }
    } catch (err) {
      warn(`${event} hook: ${errMessage(err)}`);
    }
    return { continue: true };
  };
  const hooks = {};
  for (const event of HOOK_EVENTS) {
    const matcher = { hooks: [hook] };
    Object.defineProperty(matcher, HOOK_MARK, { value: true });
    hooks[event] = [matcher];
  }
  return hooks;
}

/**
 * Call on the options of `query({ prompt, options })` before the session starts: purges stale
 * entries of the config dir its child will use (so the start-up loop dials freshly signed-in
 * servers), and appends needsAuthHooks() to `options.hooks.SessionStart` and
 * `options.hooks.UserPromptSubmit`, keeping the caller's hooks. The entries of the servers in
 * `options.mcpServers` are judged with their configs (Claude Code 2.1.332's exact rules).
 * Returns the same object. `helperOptions` go to needsAuthHooks (e.g. `{ query: () => q }`).
 */
function prepareQuery(queryOptions, helperOptions) {
  const qo = queryOptions == null ? {} : queryOptions;
  validateOptions('prepareQuery', helperOptions, 'helperOptions');
  try {
    const h = { ...helperOptions };
    // The session's own server configs: the addon judges their entries exactly as 2.1.332 does.
    if (h.serverConfigs === undefined && qo.mcpServers && typeof qo.mcpServers === 'object') {
      h.serverConfigs = qo.mcpServers;
    }
    const opts = addonOptions({ ...h, configDir: typeof h.configDir === 'string' ? h.configDir : configDirFor(qo) });
    safePurge(opts, 'prepareQuery');
    const hooks = qo.hooks && typeof qo.hooks === 'object' ? qo.hooks : {};
    const existing = (event) => (Array.isArray(hooks[event]) ? hooks[event] : []);
    if (!HOOK_EVENTS.some((event) => existing(event).some((m) => m?.[HOOK_MARK]))) {
      const ours = needsAuthHooks({ ...h, configDir: opts.configDir, serverConfigs: opts.serverConfigs });
      const merged = { ...hooks };
      for (const event of HOOK_EVENTS) merged[event] = [...existing(event), ...ours[event]];
      qo.hooks = merged;
    }
  } catch (err) {
    warn(`prepareQuery: ${errMessage(err)}`);
  }
  return qo;
}

module.exports = { needsAuthHooks, prepareQuery };
