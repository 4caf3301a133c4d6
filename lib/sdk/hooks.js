'use strict';
// needsAuthHooks and prepareQuery: what a new SDK session gets before it starts. The purge runs
// in the config dir the session's Claude Code child will use; the SessionStart hook purges
// again and schedules (never awaits) a reconnect of servers a new process would now dial.

const { debug, warn, errMessage } = require('../log.js');
const { sleep, unrefTimeout } = require('../timers.js');
const upkeep = require('../upkeep.js');
const { configDirFor } = require('./config-dir.js');
const { addonOptions, usableDir, reconnectPolicy } = require('./options.js');
const { isQuery, resolveQuery, sessionStatuses } = require('./session.js');
const { PENDING_POLL_MS, wouldDial, reconnectServer } = require('./reconnect.js');
const { validateOptions } = require('./validate-options.js');

// Marks our SessionStart matcher, so that prepareQuery never adds a second one.
const HOOK_MARK = Symbol.for('mcp-needs-auth.sdk.hook');

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
 * The SessionStart hook's reconnect: once the session's servers are past `pending` (or
 * `pendingWaitMs` passed), reconnects those it reports `needs-auth` that a new process would
 * dial, one at a time, as reconnectOnAuthChange does.
 */
async function reconcileSession(getQuery, opts, helperOptions) {
  const q = resolveQuery(getQuery);
  if (!isQuery(q)) {
    debug('SessionStart: no query to reconnect (pass options.query: () => q)');
    return;
  }
  const policy = reconnectPolicy(helperOptions);
  const deadline = Date.now() + policy.pendingWaitMs;
  let statuses;
  for (;;) {
    statuses = await sessionStatuses(q, policy.statusTimeoutMs, 'SessionStart');
    if (!statuses) return;
    if (!statuses.some((s) => s && s.status === 'pending') || Date.now() >= deadline) break;
    await sleep(PENDING_POLL_MS);
  }
  const names = statuses.filter((s) => s && s.status === 'needs-auth' && wouldDial(s.name, opts)).map((s) => s.name);
  for (const name of names) {
    if (!(await reconnectServer(q, name, policy, () => false, 'SessionStart', opts))) return;
  }
}

/**
 * SDK hooks for `options.hooks`: `{ SessionStart: [matcher] }`. The hook purges stale needs-auth
 * entries of the session's config dir and schedules (never awaits) a reconnect of every server
 * the session reports `needs-auth` that a new process would now dial. The reconnect needs the
 * query, which does not exist yet when the options are built: pass `query` as a getter.
 */
function needsAuthHooks(options) {
  const o = validateOptions('needsAuthHooks', options);
  const hook = async (_input, _toolUseId, ctx) => {
    try {
      const opts = addonOptions(o);
      safePurge(opts, 'SessionStart hook');
      const signal = ctx?.signal;
      const run = () => {
        if (signal?.aborted) return;
        reconcileSession(o.query, opts, o).catch((err) => warn(`SessionStart reconnect: ${errMessage(err)}`));
      };
      if (o.query !== undefined) unrefTimeout(run, 0);
    } catch (err) {
      warn(`SessionStart hook: ${errMessage(err)}`);
    }
    return { continue: true };
  };
  const matcher = { hooks: [hook] };
  Object.defineProperty(matcher, HOOK_MARK, { value: true });
  return { SessionStart: [matcher] };
}

/**
 * Call on the options of `query({ prompt, options })` before the session starts: purges stale
 * entries of the config dir its child will use (so the start-up loop dials freshly signed-in
 * servers), and appends needsAuthHooks() to `options.hooks.SessionStart`, keeping the caller's
 * hooks. The entries of the servers in `options.mcpServers` are judged with their configs
 * (Claude Code 2.1.332's exact rules). Returns the same object. `helperOptions` go to
 * needsAuthHooks (e.g. `{ query: () => q }`).
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
    const existing = Array.isArray(hooks.SessionStart) ? hooks.SessionStart : [];
    if (!existing.some((m) => m?.[HOOK_MARK])) {
      const ours = needsAuthHooks({ ...h, configDir: opts.configDir, serverConfigs: opts.serverConfigs }).SessionStart;
      qo.hooks = { ...hooks, SessionStart: [...existing, ...ours] };
    }
  } catch (err) {
    warn(`prepareQuery: ${errMessage(err)}`);
  }
  return qo;
}

module.exports = { needsAuthHooks, prepareQuery };
