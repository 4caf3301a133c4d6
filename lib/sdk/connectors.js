'use strict';
// claude.ai connectors (`claudeai-proxy`) in a live session. A connector's needs-auth entry
// stands for its authorization on claude.ai, which nothing on this machine records: a
// re-authorization there changes no file here. What clears the entry is a successful dial by
// Claude Code itself, so the remedies are re-dials (`reconnectMcpServer`) of the connectors the
// session reports `needs-auth`:
//   redialConnectors(query)           once, on demand (the user says "I authorized it")
//   redialConnectorsWhileLive(query)  on a bounded backoff schedule while the session lives, and
//                                     at once when the account or organization changes
// Once a re-dialed connector is connected its entry is removed (Claude Code 2.1.332+ removes it
// itself; 2.1.108 keeps it, and every new process would skip the connector for 15 min).

const addon = require('../../index.js');
const { debug, warn, errMessage } = require('../log.js');
const { unrefTimeout } = require('../timers.js');
const { addonOptions, usableDir } = require('./options.js');
const { isQuery, sessionStatuses } = require('./session.js');
const { dropEntryOfConnected } = require('./reconnect.js');
const { globalConfigPath, accountIdentity, fileStamp } = require('./global-config.js');

const CONNECTOR_PREFIX = 'claude.ai ';
const REDIAL = 'redialConnectors';
/** The default schedule: the n-th re-dial this long after the previous one (63.5 min in all). */
const DEFAULT_SCHEDULE_MS = Object.freeze([30_000, 60_000, 120_000, 240_000, 480_000, 960_000, 1_920_000]);
const DEFAULT_ACCOUNT_POLL_MS = 2000;
const STATUS_TIMEOUT_MS = 30_000;

/** Whether a session's status entry is a claude.ai connector. */
function isConnectorStatus(st) {
  if (!st || typeof st.name !== 'string') return false;
  const type = st.config && typeof st.config === 'object' ? st.config.type : undefined;
  if (type !== undefined) return type === 'claudeai-proxy';
  return st.scope === 'claudeai' || st.name.startsWith(CONNECTOR_PREFIX);
}

function statusesOf(o) {
  return new Set(Array.isArray(o.statuses) ? o.statuses : ['needs-auth']);
}

/**
 * Re-dials, one `reconnectMcpServer` call each, the connectors the session reports in
 * `options.statuses` (default `['needs-auth']`; a `failed` connector is the account token's
 * problem: `/login`). Resolves `[{ server, status, connected, error? }]` (status: what the
 * session reports after the re-dial); `[]` when the session has ended. Never rejects.
 */
async function redialConnectors(query, options) {
  if (!isQuery(query)) {
    throw new TypeError(`${REDIAL}(query): query must have mcpServerStatus() and reconnectMcpServer(name)`);
  }
  const o = options || {};
  const opts = addonOptions(o);
  return redialWith(query, opts, statusesOf(o), o.statusTimeoutMs ?? STATUS_TIMEOUT_MS, () => false);
}

async function redialWith(query, opts, statuses, statusTimeoutMs, stopped) {
  const before = await sessionStatuses(query, statusTimeoutMs, REDIAL);
  if (!before) return [];
  const targets = before.filter((st) => isConnectorStatus(st) && statuses.has(st.status)).map((st) => st.name);
  const outcomes = [];
  for (const server of targets) {
    if (stopped()) break;
    let error;
    try {
      debug(`${REDIAL}: re-dialing ${server}`);
      await query.reconnectMcpServer(server);
    } catch (err) {
      error = errMessage(err);
      debug(`${REDIAL}: ${server}: ${error}`);
    }
    const after = await sessionStatuses(query, statusTimeoutMs, REDIAL);
    if (!after) break;
    const status = after.find((s) => s && s.name === server)?.status ?? 'unknown';
    const connected = status === 'connected';
    if (connected && opts.configDir !== '') dropEntryOfConnected(server, opts, REDIAL);
    outcomes.push(
      error === undefined || connected ? { server, status, connected } : { server, status, connected, error },
    );
  }
  return outcomes;
}

/**
 * The connector entries written before `changedAt` (ms): stale once the account or organization
 * changed, as Claude Code's own login makes them. Removed by name, each only if still written
 * before `changedAt` under the lock (a 401 written since stays); returns the names.
 */
function removeConnectorEntriesBefore(opts, changedAt) {
  try {
    const connectors = addon
      .listNeedsAuth(opts)
      .filter((e) => e.connector)
      .map((e) => e.server);
    return connectors.length ? addon.invalidateNeedsAuth(connectors, { ...opts, writtenBefore: changedAt }) : [];
  } catch (err) {
    warn(
      `${REDIAL}: the connectors' needs-auth entries could not be removed after an account change: ${errMessage(err)}`,
    );
    return [];
  }
}

/**
 * What redialConnectorsWhileLive returns. Re-dials the session's needs-auth connectors on the
 * schedule (`options.scheduleMs`: the n-th re-dial this long after the previous one; default
 * 30 s, 1, 2, 4, 8, 16 and 32 min, then no more; `false`: none), and at once when the account
 * or organization in Claude Code's global config changes (looked at every
 * `options.accountPollMs`, default 2 s; `false`: not watched), after removing the connector
 * entries written before the change. Stops on close(), `options.signal`, or when the session
 * ends (mcpServerStatus() rejects); `onRedial(outcomes)` hears every round.
 */
class ConnectorRedial {
  #query;
  #opts;
  #statuses;
  #schedule;
  #onRedial;
  #signal = null;
  #onAbort = () => this.close();
  #closed = false;
  #timer = null;
  #accountTimer = null;
  #next = 0; // index into #schedule of the next scheduled round
  #running = null;
  #configFile = null;
  #identity = null;
  #stamp = null;
  #rounds = 0;

  constructor(query, options) {
    if (!isQuery(query)) {
      throw new TypeError(
        `redialConnectorsWhileLive(query): query must have mcpServerStatus() and reconnectMcpServer(name)`,
      );
    }
    const o = options || {};
    this.#query = query;
    this.#opts = addonOptions(o);
    this.#statuses = statusesOf(o);
    this.#schedule =
      o.scheduleMs === false
        ? []
        : Array.isArray(o.scheduleMs)
          ? o.scheduleMs.filter((ms) => typeof ms === 'number' && ms >= 0).slice(0, 100)
          : DEFAULT_SCHEDULE_MS;
    this.#onRedial = typeof o.onRedial === 'function' ? o.onRedial : null;
    if (!usableDir(this.#opts, 'redialConnectorsWhileLive') || o.signal?.aborted) {
      this.#closed = true;
      return;
    }
    if (o.signal && typeof o.signal.addEventListener === 'function') {
      this.#signal = o.signal;
      this.#signal.addEventListener('abort', this.#onAbort, { once: true });
    }
    if (o.accountPollMs !== false) {
      const env = o.env ?? process.env;
      const explicit = typeof o.configDir === 'string' || Boolean(env.CLAUDE_CONFIG_DIR);
      this.#configFile =
        typeof o.globalConfigPath === 'string' ? o.globalConfigPath : globalConfigPath(this.#opts.configDir, explicit);
      this.#stamp = fileStamp(this.#configFile);
      this.#identity = accountIdentity(this.#configFile);
      const every =
        typeof o.accountPollMs === 'number' && o.accountPollMs >= 50 ? o.accountPollMs : DEFAULT_ACCOUNT_POLL_MS;
      this.#watchAccount(every);
    }
    this.#arm();
  }

  #watchAccount(every) {
    this.#accountTimer = unrefTimeout(() => {
      if (this.#closed) return;
      // Read only when the file changed (it can be megabytes of project history).
      const stamp = fileStamp(this.#configFile);
      if (stamp === this.#stamp) return this.#watchAccount(every);
      this.#stamp = stamp;
      const now = accountIdentity(this.#configFile);
      if (now !== null && now !== this.#identity) {
        const changedAt = Date.now();
        debug(`${REDIAL}: the account or organization changed`);
        this.#identity = now;
        removeConnectorEntriesBefore(this.#opts, changedAt);
        this.#round('account');
      } else if (now !== null) {
        this.#identity = now;
      }
      this.#watchAccount(every);
    }, every);
  }

  #arm() {
    if (this.#closed || this.#next >= this.#schedule.length) return;
    const delay = this.#schedule[this.#next++];
    this.#timer = unrefTimeout(() => {
      this.#timer = null;
      this.#round('schedule').finally(() => this.#arm());
    }, delay);
  }

  /** One round of re-dials (after the one running, if any). */
  #round(why) {
    const run = async () => {
      if (this.#closed) return;
      const before = await sessionStatuses(this.#query, STATUS_TIMEOUT_MS, REDIAL);
      if (!before) return this.close();
      if (!before.some((st) => isConnectorStatus(st) && this.#statuses.has(st.status))) return;
      this.#rounds++;
      debug(`${REDIAL}: round ${this.#rounds} (${why})`);
      const outcomes = await redialWith(this.#query, this.#opts, this.#statuses, STATUS_TIMEOUT_MS, () => this.#closed);
      if (this.#onRedial && !this.#closed) {
        try {
          this.#onRedial(outcomes);
        } catch (err) {
          warn(`onRedial threw: ${errMessage(err)}`);
        }
      }
    };
    const prev = this.#running ?? Promise.resolve();
    const p = prev.then(run).catch((err) => warn(`${REDIAL}: ${errMessage(err)}`));
    this.#running = p;
    p.finally(() => {
      if (this.#running === p) this.#running = null;
    });
    return p;
  }

  /** Re-dials now (the user says they authorized a connector); resolves when the round is over. */
  redialNow() {
    return this.#round('on demand');
  }

  /** How many rounds re-dialed at least one connector. */
  get rounds() {
    return this.#rounds;
  }

  /** Whether a scheduled round is still to come. */
  get scheduled() {
    return !this.#closed && this.#timer !== null;
  }

  /** Resolves once no round runs. */
  async settled() {
    while (this.#running) await this.#running;
  }

  /** Stops at once: no further round starts, the account is no longer watched. Idempotent. */
  close() {
    if (this.#closed) return;
    this.#closed = true;
    clearTimeout(this.#timer);
    clearTimeout(this.#accountTimer);
    this.#timer = null;
    if (this.#signal) this.#signal.removeEventListener('abort', this.#onAbort);
    debug(`${REDIAL}: closed`);
  }

  get closed() {
    return this.#closed;
  }

  [Symbol.dispose]() {
    this.close();
  }
}

function redialConnectorsWhileLive(query, options) {
  return new ConnectorRedial(query, options);
}

module.exports = {
  CONNECTOR_PREFIX,
  DEFAULT_SCHEDULE_MS,
  isConnectorStatus,
  redialConnectors,
  redialConnectorsWhileLive,
  ConnectorRedial,
  removeConnectorEntriesBefore,
};
