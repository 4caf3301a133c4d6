'use strict';
// signIn(query, server, options): an MCP server's OAuth sign-in driven from an SDK host, through
// Claude Code's own flow (the `mcp_authenticate` control request), made to land everywhere:
// Claude Code stores the tokens and runs the callback listener; this module waits for the tokens
// to reach the store, removes the server's needs-auth entry (Claude Code 2.1.108 keeps it),
// tells this process's onAuthChanged subscribers, and makes sure the session is connected.
//
// It never opens a browser, never writes credentials, and never puts a token, an authorization
// code or a callback URL into a result, an error or a log line (the authUrl carries neither).
//
// Structural: a "query" is the Agent SDK's Query (0.2.104+ for the Claude Code callback
// listener; 0.3.x for a host-owned redirect URI); the SDK is never imported here.

const addon = require('../../index.js');
const { errMessage } = require('../log.js');
const { sleep, unrefTimeout } = require('../timers.js');
const { configDirFor } = require('./config-dir.js');
const errors = require('./sign-in-errors.js');
const { connectorStatus, signInConnector } = require('./sign-in-connector.js');

const DEFAULT_TIMEOUT_MS = 300_000;
/** How long Claude Code gets to connect the server itself once the tokens are stored. */
const CONNECT_GRACE_MS = 3000;
const STATUS_POLL_MS = 100;
/** Upper bound on waiting for our own 'invalidated' event (an in-process hop). */
const HEARD_WAIT_MS = 5000;
const OAUTH_TRANSPORTS = new Set(['http', 'sse']);

/** query -> Map<server, SignIn>: at most one sign-in per server per session. */
const inFlight = new WeakMap();

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
  if (options !== undefined && (options === null || typeof options !== 'object')) {
    throw errors.invalid('options must be an object');
  }
  const o = options || {};
  const timeoutMs = o.timeoutMs === undefined ? DEFAULT_TIMEOUT_MS : o.timeoutMs;
  if (typeof timeoutMs !== 'number' || !(timeoutMs > 0) || timeoutMs > 2 ** 31 - 1) {
    throw errors.invalid('options.timeoutMs must be a number of ms between 1 and 2147483647');
  }
  if (o.signal !== undefined && !(o.signal instanceof AbortSignal))
    throw errors.invalid('options.signal must be an AbortSignal');
  if (o.configDir !== undefined && typeof o.configDir !== 'string')
    throw errors.invalid('options.configDir must be a string');
  if (o.env !== undefined && (o.env === null || typeof o.env !== 'object'))
    throw errors.invalid('options.env must be an object');
  let redirectUri;
  if (o.redirectUri !== undefined) {
    if (typeof o.redirectUri !== 'string' || !URL.canParse(o.redirectUri)) {
      throw errors.invalid('options.redirectUri must be an absolute URL');
    }
    redirectUri = o.redirectUri;
  }
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
  return { configDir, timeoutMs, signal: o.signal, redirectUri };
}

// ---------------------------------------------------------------------------------------------
// One sign-in

class SignIn {
  #query;
  #server;
  #configDir;
  #redirectUri;
  #signal;
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

  constructor(query, server, args) {
    this.#query = query;
    this.#server = server;
    this.#configDir = args.configDir;
    this.#redirectUri = args.redirectUri;
    this.#signal = args.signal;
    this.#failure.promise.catch(() => {});
    this.#result.promise.catch(() => {}); // an abandoned sign-in is no unhandled rejection
    this.#started = this.#start(args.timeoutMs);
    this.#started.catch(() => {});
  }

  /** True once the sign-in completed or failed. */
  get done() {
    return this.#done;
  }

  get redirectUri() {
    return this.#redirectUri;
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
    const map = inFlight.get(this.#query);
    if (map && map.get(this.#server) === this) map.delete(this.#server);
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

  async #start(timeoutMs) {
    const signal = this.#signal;
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
    try {
      await this.#preflight();
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

  async #preflight() {
    let list;
    try {
      list = await this.#guard(this.#query.mcpServerStatus());
    } catch (err) {
      if (errors.isAbortOrTimeout(err)) throw err;
      throw errors.signInError('ERR_SIGN_IN_FAILED', `signIn: mcpServerStatus() failed: ${errMessage(err)}`);
    }
    const entry = Array.isArray(list) ? list.find((s) => s && s.name === this.#server) : undefined;
    if (!entry) throw errors.unknownServer(this.#server);
    const type = entry.config && typeof entry.config === 'object' ? (entry.config.type ?? 'stdio') : undefined;
    if (type !== undefined && !OAUTH_TRANSPORTS.has(type)) throw errors.transportError(this.#server, type);
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

  /** Claude Code connects the server itself after its own callback; after ours (or when it did not), we do. */
  async #connect() {
    const end = Date.now() + CONNECT_GRACE_MS;
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
    try {
      await this.#guard(this.#query.mcpSubmitOAuthCallbackUrl(this.#server, callbackUrl));
    } catch (err) {
      if (errors.isAbortOrTimeout(err)) throw err;
      const e = errors.signInError(
        'ERR_SIGN_IN_FAILED',
        `signIn: Claude Code refused the callback for "${this.#server}": ${errors.redact(errMessage(err), this.#secrets)}`,
      );
      this.#fail(e); // Claude Code's flow is over: nothing more can land
      throw e;
    }
    // Claude Code answers once it has exchanged the code and stored the tokens.
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
  // A claude.ai connector is authorized on claude.ai: its own flow (lib/sdk/sign-in-connector.js).
  if (await connectorStatus(query, server)) return signInConnector(query, server, args);
  let map = inFlight.get(query);
  if (!map) {
    map = new Map();
    inFlight.set(query, map);
  }
  const existing = map.get(server);
  if (existing && !existing.done) {
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
  const flow = new SignIn(query, server, args);
  map.set(server, flow);
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
