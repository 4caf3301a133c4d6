'use strict';
// signIn(query, server, options): an MCP server's OAuth sign-in driven from an SDK host, through
// Claude Code's own flow (the `mcp_authenticate` control request), made to land everywhere:
// Claude Code stores the tokens and runs the callback listener; this module waits for the tokens
// to reach the store, removes the server's needs-auth entry (Claude Code 2.1.108 keeps it),
// tells this process's onAuthChanged subscribers, and makes sure the session is connected, with
// one connect. It never makes things worse: a server the session reports connected is not signed
// in again unless the host asks (`reauthenticate`), since Claude Code 2.1.334 empties the stored
// tokens as soon as a sign-in starts.
//
// It never opens a browser, never writes credentials, and never puts a token, an authorization
// code or a callback URL into a result, an error or a log line (the authUrl carries neither).
//
// Structural: a "query" is the Agent SDK's Query (0.2.104+ for the Claude Code callback
// listener; 0.3.x for a host-owned redirect URI); the SDK is never imported here.

const addon = require('../../native.js');
const { errMessage } = require('../log.js');
const { sleep, unrefTimeout } = require('../timers.js');
const { configDirFor } = require('./config-dir.js');
const { dropEntryOfConnected } = require('./reconnect.js');
const { noteClaudeCodeVersion, sessionStatuses } = require('./session.js');
const errors = require('./sign-in-errors.js');
const { connectorIn, signInConnector } = require('./sign-in-connector.js');
const signIns = require('./sign-ins.js');
const { validateOptions } = require('./validate-options.js');

const DEFAULT_TIMEOUT_MS = 300_000;
/** How long signIn's first look at the session's statuses may take (as the other helpers'). */
const STATUS_TIMEOUT_MS = 30_000;
/**
 * How long Claude Code gets to connect the server itself once the tokens are stored through its
 * own callback listener (it does, about 0.2 s after the callback). Not waited after a callback URL
 * handed over with submitCallbackUrl: Claude Code does not connect then (2.1.108, 2.1.334).
 */
const CONNECT_GRACE_MS = 3000;
const STATUS_POLL_MS = 100;
/** Upper bound on waiting for our own 'invalidated' event (an in-process hop). */
const HEARD_WAIT_MS = 5000;
const OAUTH_TRANSPORTS = new Set(['http', 'sse']);

function deferred() {
  let resolve;
  let reject;
  const promise = new Promise((res, rej) => {
    resolve = res;
    reject = rej;
  });
  return { promise, resolve, reject };
}

// ---------------------------------------------------------------------------------------------
// Argument checks

function checkArgs(query, server, options) {
  if (query === null || (typeof query !== 'object' && typeof query !== 'function')) {
    throw errors.invalid('query must be the Agent SDK Query returned by query()');
  }
  if (typeof server !== 'string' || server === '') throw errors.invalid('server must be a non-empty string');
  const o = validateOptions('signIn', options);
  const timeoutMs = o.timeoutMs === undefined ? DEFAULT_TIMEOUT_MS : o.timeoutMs;
  const redirectUri = o.redirectUri;
  const configDir = typeof o.configDir === 'string' ? o.configDir.normalize('NFC') : configDirFor({ env: o.env });
  if (configDir === '') throw errors.invalid("the config dir is '' (CLAUDE_CONFIG_DIR is set but empty)");

  for (const m of ['mcpAuthenticate', 'mcpServerStatus', 'reconnectMcpServer']) {
    if (typeof query[m] !== 'function') {
      throw errors.signInError(
        'ERR_SIGN_IN_UNSUPPORTED',
        `signIn: this query has no ${m}() (Agent SDK 0.2.104 or later is needed for sign-in)`,
      );
    }
  }
  // 0.3.x: mcpAuthenticate(name, redirectUri, { redirectUriOnly }); 0.2.x takes the name only.
  if (
    redirectUri !== undefined &&
    (query.mcpAuthenticate.length < 2 || typeof query.mcpSubmitOAuthCallbackUrl !== 'function')
  ) {
    throw errors.signInError(
      'ERR_SIGN_IN_UNSUPPORTED',
      'signIn: options.redirectUri needs an Agent SDK whose mcpAuthenticate takes a redirect URI (0.3.x)',
    );
  }
  return { configDir, timeoutMs, signal: o.signal, redirectUri, reauthenticate: o.reauthenticate === true };
}

// ---------------------------------------------------------------------------------------------
// One sign-in

class SignIn {
  #query;
  #server;
  #configDir;
  #redirectUri;
  #signal;
  #reauthenticate;
  #submitted = false; // a callback URL was handed over: Claude Code will not connect by itself
  #submitting = 0; // submits not answered yet (the tokens' save may be seen before the answer)
  #secrets = []; // callback URLs and their parts, cut out of Claude Code's messages
  #done = false;
  #sub = null;
  #timer = null;
  #onAbort = null;
  #failure = deferred(); // rejects when the sign-in fails; never resolves
  #landed = deferred(); // the tokens are in the store
  #heard = deferred(); // our own 'invalidated' event came back
  #invalidateSent = false;
  #result = deferred(); // what `completed` settles with
  #started; // the authUrl, once Claude Code has one
  #settled; // resolves when the sign-in ends, either way (for lib/sdk/sign-ins.js)

  /** `statuses`: the session's status list signIn just got, or null (then the preflight asks). */
  constructor(query, server, args, statuses) {
    this.#query = query;
    this.#server = server;
    this.#configDir = args.configDir;
    this.#redirectUri = args.redirectUri;
    this.#signal = args.signal;
    this.#reauthenticate = args.reauthenticate;
    this.#failure.promise.catch(() => {});
    this.#result.promise.catch(() => {}); // an abandoned sign-in is no unhandled rejection
    this.#settled = this.#result.promise.then(
      () => {},
      () => {},
    );
    this.#started = this.#start(args.timeoutMs, statuses);
    this.#started.catch(() => {});
  }

  /** True once the sign-in completed or failed. */
  get done() {
    return this.#done;
  }

  get redirectUri() {
    return this.#redirectUri;
  }

  /** Resolves (never rejects) once the sign-in completed or failed. */
  get settled() {
    return this.#settled;
  }

  /** Resolves with the authUrl (or null) once Claude Code has one; rejects as signIn does. */
  get started() {
    return this.#started;
  }

  /** `p`, or the sign-in's failure if that comes first. */
  #guard(p) {
    return Promise.race([Promise.resolve(p), this.#failure.promise]);
  }

  #fail(err) {
    if (this.#done) return;
    this.#done = true;
    this.#cleanup();
    this.#failure.reject(err);
    this.#result.reject(err);
  }

  #succeed(value) {
    if (this.#done) return;
    this.#done = true;
    this.#cleanup();
    this.#result.resolve(value);
  }

  #cleanup() {
    const sub = this.#sub;
    this.#sub = null;
    if (sub) {
      try {
        sub.close();
      } catch {
        /* already closed */
      }
    }
    if (this.#timer) {
      clearTimeout(this.#timer);
      this.#timer = null;
    }
    if (this.#onAbort) {
      this.#signal.removeEventListener('abort', this.#onAbort);
      this.#onAbort = null;
    }
    signIns.unregister(this.#query, this.#server, this);
  }

  #onEvent(ev) {
    if (this.#done || !ev) return;
    const servers = Array.isArray(ev.servers) ? ev.servers : [];
    const concerned = servers.length === 0 || servers.includes(this.#server);
    if (!concerned) return;
    if (ev.reason === 'credentials-changed' && this.#hasTokens()) this.#landed.resolve('credentials-changed');
    if (ev.reason === 'invalidated' && this.#invalidateSent) this.#heard.resolve();
  }

  #hasTokens() {
    try {
      const c = addon.diagnose(this.#server, { configDir: this.#configDir }).credentials;
      return c.hasAccessToken || c.hasRefreshToken;
    } catch {
      return false;
    }
  }

  async #start(timeoutMs, statuses) {
    const signal = this.#signal;
    try {
      if (signal?.aborted) throw errors.abortError(signal);
      this.#timer = unrefTimeout(
        () =>
          this.#fail(
            errors.signInError(
              'ERR_SIGN_IN_TIMEOUT',
              `signIn: the sign-in of "${this.#server}" did not complete within ${timeoutMs} ms`,
              { timeoutMs },
            ),
          ),
        timeoutMs,
      );
      if (signal) {
        this.#onAbort = () => this.#fail(errors.abortError(signal));
        signal.addEventListener('abort', this.#onAbort, { once: true });
      }
      const status = await this.#preflight(statuses);
      if (status === 'connected' && !this.#reauthenticate) {
        // Never make things worse: starting Claude Code's flow would drop the working tokens
        // (2.1.334 empties them at once). The session's connect proves the store's credentials,
        // so a needs-auth entry left beside them (2.1.108 keeps it) is wrong: dropped.
        dropEntryOfConnected(this.#server, { configDir: this.#configDir }, 'signIn');
        this.#succeed({ server: this.#server, status });
        return null;
      }
      // Subscribe before Claude Code can store anything, so no change is missed.
      this.#sub = addon.onAuthChanged((ev) => this.#onEvent(ev), { configDir: this.#configDir });
      if (this.#done) this.#cleanup(); // failed while subscribing: the guard below rejects
      const response = await this.#guard(this.#authenticate());
      const authUrl = response && typeof response.authUrl === 'string' ? response.authUrl : null;
      // requiresUserAction false: Claude Code finished the flow without the user (tokens it had).
      if (!authUrl || (response && response.requiresUserAction === false)) this.#landed.resolve('no-user-action');
      this.#finish().catch((err) =>
        this.#fail(
          err?.code
            ? err
            : errors.signInError(
                'ERR_SIGN_IN_FAILED',
                `signIn: the sign-in of "${this.#server}" could not complete: ${errors.redact(errMessage(err), this.#secrets)}`,
              ),
        ),
      );
      return authUrl;
    } catch (err) {
      this.#fail(err);
      throw err;
    }
  }

  async #preflight(statuses) {
    let list = statuses;
    try {
      list ??= await this.#guard(this.#query.mcpServerStatus());
    } catch (err) {
      if (errors.isAbortOrTimeout(err)) throw err;
      throw errors.signInError('ERR_SIGN_IN_FAILED', `signIn: mcpServerStatus() failed: ${errMessage(err)}`);
    }
    const entry = Array.isArray(list) ? list.find((s) => s && s.name === this.#server) : undefined;
    if (!entry) throw errors.unknownServer(this.#server);
    const type = entry.config && typeof entry.config === 'object' ? (entry.config.type ?? 'stdio') : undefined;
    if (type !== undefined && !OAUTH_TRANSPORTS.has(type)) throw errors.transportError(this.#server, type);
    noteClaudeCodeVersion(this.#query, 'signIn');
    return entry.status;
  }

  async #authenticate() {
    try {
      if (this.#redirectUri !== undefined) {
        return await this.#query.mcpAuthenticate(this.#server, this.#redirectUri, { redirectUriOnly: true });
      }
      return await this.#query.mcpAuthenticate(this.#server);
    } catch (err) {
      throw errors.fromClaudeCode(err, this.#server, this.#secrets);
    }
  }

  /** Waits for the tokens, then removes the entry, tells subscribers, and connects the session. */
  async #finish() {
    await this.#guard(this.#landed.promise);
    this.#invalidateSent = true;
    addon.invalidateNeedsAuth(this.#server, { configDir: this.#configDir });
    await this.#guard(Promise.race([this.#heard.promise, sleep(HEARD_WAIT_MS)]));
    const status = await this.#connect();
    this.#succeed({ server: this.#server, status });
  }

  async #status() {
    const list = await this.#guard(this.#query.mcpServerStatus());
    const entry = Array.isArray(list) ? list.find((s) => s && s.name === this.#server) : undefined;
    return entry ? entry.status : 'unknown';
  }

  /**
   * Claude Code connects the server itself after its own callback (given CONNECT_GRACE_MS); after
   * a submitted callback URL it does not, so we connect at once; and when it did not, we do.
   */
  async #connect() {
    const byHost = this.#submitted || this.#submitting > 0 || this.#redirectUri !== undefined;
    const end = Date.now() + (byHost ? 0 : CONNECT_GRACE_MS);
    let status = await this.#status();
    while (status !== 'connected' && Date.now() < end) {
      await this.#guard(sleep(STATUS_POLL_MS));
      status = await this.#status();
    }
    if (status === 'connected') return status;
    try {
      await this.#guard(this.#query.reconnectMcpServer(this.#server));
    } catch (err) {
      if (errors.isAbortOrTimeout(err)) throw err;
      // The session's status below says what became of it.
    }
    return this.#status();
  }

  async #submitCallbackUrl(callbackUrl) {
    if (typeof this.#query.mcpSubmitOAuthCallbackUrl !== 'function') {
      throw errors.signInError('ERR_SIGN_IN_UNSUPPORTED', 'signIn: this query has no mcpSubmitOAuthCallbackUrl()');
    }
    if (typeof callbackUrl !== 'string' || !URL.canParse(callbackUrl)) {
      throw errors.invalid('submitCallbackUrl(url): url must be the absolute callback URL the browser landed on');
    }
    const u = new URL(callbackUrl);
    if (!u.searchParams.has('code') && !u.searchParams.has('error')) {
      throw errors.invalid('submitCallbackUrl(url): the URL has neither a code nor an error parameter');
    }
    if (this.#done) {
      throw errors.signInError(
        'ERR_SIGN_IN_NOT_PENDING',
        `signIn: the sign-in of "${this.#server}" is no longer pending`,
      );
    }
    this.#secrets.push(callbackUrl, u.search, ...u.searchParams.values());
    this.#submitting++;
    try {
      await this.#guard(this.#query.mcpSubmitOAuthCallbackUrl(this.#server, callbackUrl));
    } catch (err) {
      this.#submitting--;
      if (errors.isAbortOrTimeout(err)) throw err;
      const why = errors.redact(errMessage(err), this.#secrets);
      if (errors.flowStillWaiting(why)) {
        // 2.1.332+: a URL of another attempt (OAuth state mismatch) is refused and the flow in
        // progress keeps waiting: this submit fails, the sign-in stays pending.
        throw errors.signInError(
          'ERR_SIGN_IN_CALLBACK_REJECTED',
          `signIn: Claude Code did not accept this callback URL for "${this.#server}"; the sign-in is still pending: ${why}`,
        );
      }
      const e = errors.signInError(
        'ERR_SIGN_IN_FAILED',
        `signIn: Claude Code refused the callback for "${this.#server}": ${why}`,
      );
      this.#fail(e); // Claude Code's flow is over: nothing more can land
      throw e;
    }
    // Claude Code answers once it has exchanged the code and stored the tokens, and does not
    // connect the server by itself after a submitted URL: #connect() does, at once.
    this.#submitting--;
    this.#submitted = true;
    this.#landed.resolve('callback-submitted');
  }

  /** What signIn resolves with: the host's handle on this sign-in. */
  pending(authUrl) {
    return Object.freeze({
      server: this.#server,
      authUrl,
      completed: this.#result.promise,
      submitCallbackUrl: (url) => this.#submitCallbackUrl(url),
    });
  }
}

/**
 * Starts Claude Code's OAuth sign-in of `server` in the session `query` and resolves
 * `{ server, authUrl, completed, submitCallbackUrl(url) }` once Claude Code has an authorization
 * URL. See the README's "Sign-in from your host".
 */
async function signIn(query, server, options) {
  const args = checkArgs(query, server, options);
  if (args.signal?.aborted) throw errors.abortError(args.signal); // before anything is registered
  // One status list for both questions: is it a claude.ai connector (authorized on claude.ai: its
  // own flow, lib/sdk/sign-in-connector.js), and is it connected already (the preflight)? A
  // failure here is the preflight's to report (it asks again). Bounded, and seen by
  // onServerStatus, as every helper's status answer is.
  const statuses = await sessionStatuses(query, STATUS_TIMEOUT_MS, 'signIn');
  if (connectorIn(statuses, server)) return signInConnector(query, server, args);
  const existing = signIns.inFlight(query, server);
  if (existing) {
    if (existing.redirectUri !== args.redirectUri) {
      throw errors.signInError(
        'ERR_SIGN_IN_IN_PROGRESS',
        `signIn: a sign-in of "${server}" with another redirect URI is pending in this session`,
      );
    }
    // The same sign-in: same authUrl, same `completed`. This caller's signal only stops its wait.
    const authUrl = await (args.signal ? raceAbort(existing.started, args.signal) : existing.started);
    return existing.pending(authUrl);
  }
  const flow = new SignIn(query, server, args, statuses);
  if (!flow.done) signIns.register(query, server, flow);
  const authUrl = await flow.started;
  return flow.pending(authUrl);
}

function raceAbort(promise, signal) {
  if (signal.aborted) return Promise.reject(errors.abortError(signal));
  let onAbort;
  const aborted = new Promise((_, reject) => {
    onAbort = () => reject(errors.abortError(signal));
    signal.addEventListener('abort', onAbort, { once: true });
  });
  return Promise.race([promise, aborted]).finally(() => signal.removeEventListener('abort', onAbort));
}

module.exports = { signIn, DEFAULT_TIMEOUT_MS };
