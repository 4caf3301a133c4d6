/**
 * mcp-needs-auth/sdk — needs-auth cache helpers for `@anthropic-ai/claude-agent-sdk` sessions
 * (0.2.x and 0.3.x) and hosts built on it such as claude-agent-acp.
 *
 * Typed structurally: nothing here imports the SDK, so any SDK version whose `Query` has
 * `mcpServerStatus()` and `reconnectMcpServer(name)` fits.
 *
 * @example
 * ```ts
 * import { query } from '@anthropic-ai/claude-agent-sdk'
 * import { prepareQuery, reconnectOnAuthChange } from 'mcp-needs-auth/sdk'
 *
 * const ac = new AbortController()
 * let q: ReturnType<typeof query>
 * q = query({ prompt, options: prepareQuery({ env, mcpServers, abortController: ac }, { query: () => q }) })
 * using sub = reconnectOnAuthChange(q, { env, signal: ac.signal, onReconnect: (o) => console.log(o) })
 * for await (const message of q) { ... } // `using` closes the subscription when the loop ends
 * ```
 */

/** One entry of `Query.mcpServerStatus()` (only the fields this module reads). */
export interface McpServerStatusLike {
  name: string;
  status: 'connected' | 'failed' | 'needs-auth' | 'pending' | 'disabled' | (string & {});
  [key: string]: unknown;
}

/**
 * The part of the SDK's `Query` this module uses: only these two calls, never anything else of
 * the query (no method of it is replaced or wrapped). A session whose `mcpServerStatus()`
 * rejects has ended, for this module: the SDK rejects every control request of a closed query.
 */
export interface QueryLike {
  mcpServerStatus(): Promise<McpServerStatusLike[]>;
  reconnectMcpServer(serverName: string): Promise<void>;
}

/**
 * The SDK's `HookCallback` shape. Declared through a method so that its parameters are checked
 * bivariantly under `strictFunctionTypes`: the SDK's own `HookCallback` (whose `input` is the
 * SDK's `HookInput`) fits it, as needsAuthHooks()'s callbacks fit the SDK's.
 */
export type HookCallbackLike = {
  hook(
    input: unknown,
    toolUseID: string | undefined,
    options: { signal: AbortSignal },
  ): Promise<{ continue?: boolean; [key: string]: unknown }>;
}['hook'];

/** The SDK's `HookCallbackMatcher` shape. */
export interface HookCallbackMatcherLike {
  matcher?: string;
  hooks: HookCallbackLike[];
  timeout?: number;
}

/** The fields of the SDK's query `Options` this module reads or writes. */
export interface QueryOptionsLike {
  /** The Claude Code child's environment (default `process.env`). */
  env?: Record<string, string | undefined>;
  /** The session's MCP servers: `prepareQuery` judges their entries with these configs. */
  mcpServers?: Record<string, import('./index').McpServerConfig>;
  hooks?: Partial<Record<string, HookCallbackMatcherLike[]>>;
  [key: string]: unknown;
}

/** What `onReconnect` receives after each server's reconnect ends. */
export interface ReconnectOutcome {
  server: string;
  /** The server is connected in the session now. */
  ok: boolean;
  /** The last error, when `ok` is false. */
  error?: unknown;
  /** How many `reconnectMcpServer` calls were made (1..retries). */
  attempts: number;
}

/** Which config dir to use, and how the addon reads credentials and judges entries. */
export interface ConfigDirOptions {
  /** Explicit config dir. Default: `configDirFor({ env })`. */
  configDir?: string;
  /** The environment the Claude Code child runs with (the query's `options.env`). Default `process.env`. */
  env?: Record<string, string | undefined>;
  /** Passed to the addon: `'auto'` (default), `'file'`, `'keychain'`, `'none'`. */
  credentials?: 'auto' | 'file' | 'keychain' | 'none';
  /** Passed to the addon. */
  defaultTtlMs?: number;
  /**
   * The session's server configs (the query's `options.mcpServers`): entries of these servers are
   * judged by Claude Code 2.1.332's exact rules. `prepareQuery` passes `mcpServers` itself.
   * Invalid configs are left out with a warning (the name-only rule then applies).
   */
  serverConfigs?: Record<string, import('./index').McpServerConfig>;
}

export interface ReconnectOptions extends ConfigDirOptions {
  /** Called after each server's reconnect attempts end. Errors it throws become warnings. */
  onReconnect?: (outcome: ReconnectOutcome) => void | Promise<void>;
  /** Tries per server (default 3). */
  retries?: number;
  /** Backoff before the 2nd try, doubled each time (default 250 ms). */
  backoffMs?: number;
  /** Session statuses that get reconnected (default `['needs-auth', 'failed']`). */
  statuses?: string[];
  /**
   * Closes the subscription when aborted. Pass the signal of the `AbortController` given to the
   * query (`options.abortController`, the SDK's way to cancel a session) to stop with it at once.
   */
  signal?: AbortSignal;
  /** @deprecated Ignored: the query is never wrapped; the subscription stops when the session ends. */
  observeQuery?: boolean;
  /** Treat a `mcpServerStatus()` that takes longer as an ended session, with a warning (default 30000 ms). */
  statusTimeoutMs?: number;
  /**
   * How long to wait, after the last event naming it, for an affected server the session reports
   * `pending` (still connecting) to settle before leaving it alone (default 10000 ms; 0: never wait).
   */
  pendingWaitMs?: number;
  /** Passed to `onAuthChanged` (default true). */
  watch?: boolean;
  /** Passed to `onAuthChanged`. */
  pollIntervalMs?: number;
}

export interface NeedsAuthHooksOptions extends ConfigDirOptions {
  /** The query to reconnect in, or a getter (the query does not exist yet when options are built). */
  query?: QueryLike | (() => QueryLike | undefined | null);
  onReconnect?: (outcome: ReconnectOutcome) => void | Promise<void>;
  retries?: number;
  backoffMs?: number;
  /** How long to wait for `pending` servers to settle before deciding (default 10000 ms). */
  pendingWaitMs?: number;
}

/** The subscription `reconnectOnAuthChange` returns (same surface as the addon's `Subscription`). */
export declare class ReconnectSubscription {
  private constructor();
  /** Stops at once; no further status checks or reconnects. Idempotent. */
  close(): void;
  /** True once closed: by `close()`, the signal, or the session's end. */
  get closed(): boolean;
  /** Resolves once nothing is queued, waited for (a `pending` server) or running; at once after `close()`. */
  settled(): Promise<void>;
  [Symbol.dispose](): void;
}

/**
 * The config dir the Claude Code child of `query({ options: queryOptions })` will use:
 * `(queryOptions.env ?? process.env).CLAUDE_CONFIG_DIR ?? join(<that env's HOME> ?? os.homedir(), '.claude')`,
 * NFC-normalised. A set but empty CLAUDE_CONFIG_DIR gives `''`, as in Claude Code. The addon's
 * `configDirFor(env)` applies the rule (the same one every addon function uses).
 */
export declare function configDirFor(queryOptions?: QueryOptionsLike | null): string;

/**
 * Before a session starts: purges stale needs-auth entries of the session's config dir and
 * appends `needsAuthHooks(helperOptions)` to `queryOptions.hooks.SessionStart` and
 * `.UserPromptSubmit` (the caller's hooks are kept; a second call adds nothing). Returns the
 * same object.
 */
export declare function prepareQuery<T extends QueryOptionsLike>(
  queryOptions: T,
  helperOptions?: NeedsAuthHooksOptions,
): T;

/**
 * `{ SessionStart: [matcher], UserPromptSubmit: [matcher] }` for `options.hooks`: one hook on both
 * (no pinned SDK fires SessionStart for a session; UserPromptSubmit fires before each turn). It
 * purges stale entries and schedules (never awaits) reconnects of servers the session reports
 * `needs-auth` that a new process would now dial; that part needs `options.query` (a getter
 * works). Idempotent per prompt. Returns `{ continue: true }`.
 */
export declare function needsAuthHooks(options?: NeedsAuthHooksOptions): {
  SessionStart: HookCallbackMatcherLike[];
  UserPromptSubmit: HookCallbackMatcherLike[];
};

/**
 * Reconnects a live session's servers after sign-ins: subscribes to `onAuthChanged`
 * (autoInvalidate) for the config dir, and for each affected server the session reports
 * `needs-auth`/`failed` calls `query.reconnectMcpServer(name)`, serially, with bounded retry.
 * An affected server still `pending` (connecting, maybe with the old token) is waited for (status
 * polled every 200 ms, `pendingWaitMs` at most) and then judged the same way; other servers are
 * not held up meanwhile. If its credentials changed while it connected, the needs-auth entry its
 * failed connect wrote after that change does not stop the reconnect when the store holds a token.
 * Once the session reports a reconnected server `connected`, its needs-auth entry (if any) is
 * removed, as Claude Code 2.1.332 does on a successful connect and 2.1.108 never does.
 *
 * Stops for good, with no further status check or reconnect:
 * - on `close()` (or `using`);
 * - when `options.signal` aborts (pass the query's `abortController.signal`);
 * - when the session ends: the first `mcpServerStatus()` that rejects closes it, however the
 *   query ended (`close()`, `break` out of `for await`, an abort, the child exiting). No error
 *   text is read. Until an event comes, an ended session's subscription stays open: close it
 *   when your loop over the query ends.
 *
 * Never throws into the host after creation. Throws at once: `TypeError` when `query` lacks the
 * two methods; `ERR_INVALID_ARGUMENT` naming the option for a known option of the wrong type or
 * range (`options.signal` not an AbortSignal, `options.configDir` not a string, `options.retries`
 * not an integer >= 1, ...), as the addon does; `prepareQuery`, `needsAuthHooks` and `signIn`
 * check their options the same way.
 */
export declare function reconnectOnAuthChange(query: QueryLike, options?: ReconnectOptions): ReconnectSubscription;

/**
 * The part of the SDK's `Query` that `signIn` uses (Agent SDK 0.2.104 and later). The SDK's own
 * `Query` type declares neither method below (0.2.104, 0.3.334), though its queries have them:
 * both are optional here, and `signIn` rejects with `ERR_SIGN_IN_UNSUPPORTED` when one it needs
 * is missing at run time.
 */
export interface SignInQueryLike extends QueryLike {
  /** 0.2.x: `(serverName)`; 0.3.x: `(serverName, redirectUri?, { redirectUriOnly? })`. */
  mcpAuthenticate?(serverName: string, redirectUri?: string, options?: { redirectUriOnly?: boolean }): Promise<unknown>;
  /** Hands Claude Code the URL the OAuth redirect landed on. */
  mcpSubmitOAuthCallbackUrl?(serverName: string, callbackUrl: string): Promise<unknown>;
}

export interface SignInOptions {
  /** Claude Code's config dir for this session. Default: `configDirFor({ env })`. */
  configDir?: string;
  /** The session's `options.env` (to find its config dir). Default `process.env`. */
  env?: Record<string, string | undefined>;
  /** Fails the sign-in with `ERR_SIGN_IN_TIMEOUT` after this long (default 300000 ms). */
  timeoutMs?: number;
  /** Aborting fails the sign-in with an `AbortError` (`code: 'ABORT_ERR'`, `cause: signal.reason`). */
  signal?: AbortSignal;
  /**
   * Agent SDK 0.3.x: the host receives the OAuth callback at this URI itself (Claude Code opens no
   * listener) and hands it over with `pending.submitCallbackUrl(url)`. `ERR_SIGN_IN_UNSUPPORTED`
   * on an SDK whose `mcpAuthenticate` takes no redirect URI.
   */
  redirectUri?: string;
  /**
   * Sign in again even when the session reports the server `connected` (default false). Without
   * it, `signIn` starts no flow for a connected server and resolves a `PendingSignIn` whose
   * `authUrl` is `null` and whose `completed` resolves at once: starting Claude Code's flow drops
   * the working tokens (2.1.334 empties them as soon as it starts), so a user who then abandons
   * the sign-in would be worse off. Pass it for an explicit "sign in again" (another account).
   */
  reauthenticate?: boolean;
}

/** What `pending.completed` resolves with. */
export interface SignInResult {
  server: string;
  /** The session's status for the server once the sign-in landed: `'connected'`, or what it reports. */
  status: McpServerStatusLike['status'] | 'unknown';
}

/** A sign-in waiting for the user. */
export interface PendingSignIn {
  readonly server: string;
  /**
   * Where the user signs in: show it, or open a browser yourself (this library never does).
   * `null` when there is nothing for the user to do: the session reports the server connected
   * (no flow was started; see `reauthenticate`), or Claude Code already held usable tokens.
   */
  readonly authUrl: string | null;
  /**
   * Resolves once the tokens are in Claude Code's store, the server's needs-auth entry is gone,
   * this process's `onAuthChanged` subscribers of the config dir were told, and the session has
   * (re)connected the server. Rejects with `ERR_SIGN_IN_TIMEOUT`, an `AbortError`, or
   * `ERR_SIGN_IN_FAILED`. Never an unhandled rejection when nobody awaits it.
   */
  readonly completed: Promise<SignInResult>;
  /**
   * Hands the callback URL (with its `code`) to Claude Code: for `redirectUri`, or when the
   * browser could not reach Claude Code's own localhost callback. The URL is never echoed.
   * A URL Claude Code refuses while its flow keeps waiting (2.1.332+: another attempt's `state`)
   * rejects this call with `ERR_SIGN_IN_CALLBACK_REJECTED` and the sign-in stays pending; a refusal
   * that ends Claude Code's flow (2.1.108) rejects it and `completed` with `ERR_SIGN_IN_FAILED`.
   */
  submitCallbackUrl(callbackUrl: string): Promise<void>;
}

/**
 * Signs `server` in through Claude Code's own OAuth flow (`query.mcpAuthenticate`) and makes the
 * sign-in land everywhere (see {@link PendingSignIn.completed}). Resolves once Claude Code has an
 * authorization URL. A second call for the same query and server while one is pending returns the
 * same pending sign-in (same `authUrl`, same `completed`; its own `timeoutMs` is not applied and its
 * `signal` only stops its own wait); with another `redirectUri` it rejects with
 * `ERR_SIGN_IN_IN_PROGRESS`.
 *
 * Error codes: `ERR_INVALID_ARGUMENT`, `ERR_SIGN_IN_UNSUPPORTED`, `ERR_UNKNOWN_SERVER`,
 * `ERR_SIGN_IN_NOT_SUPPORTED_FOR_TRANSPORT` (`err.transport`), `ERR_SIGN_IN_TIMEOUT`,
 * `ERR_SIGN_IN_FAILED`, `ERR_SIGN_IN_IN_PROGRESS`, `ERR_SIGN_IN_NOT_PENDING` (submitCallbackUrl
 * after the end), `ERR_SIGN_IN_CALLBACK_REJECTED` (submitCallbackUrl: that URL was refused, the
 * sign-in is still pending), and `AbortError` (`code: 'ABORT_ERR'`). A server the session reports
 * connected is not signed in again without `reauthenticate: true`.
 */
export declare function signIn(query: SignInQueryLike, server: string, options?: SignInOptions): Promise<PendingSignIn>;

/**
 * Why a status was pushed (see the README's "Per-server status, pushed"):
 * - `'init'`: the session's first answer. `'cached-needs-auth'`: needs-auth at first sight or on
 *   leaving `pending`, and the config dir holds a needs-auth entry Claude Code honours for it;
 *   `'tokenless-credentials'`: the same, its credentials a token-less stub. `'added'`: first
 *   reported later.
 * - `'signed-in'`: connected after its credentials changed, the session connecting it itself
 *   (a sign-in in this session: `signIn`, `/mcp`). `'signed-in-elsewhere'`: connected after its
 *   credentials changed, by a reconnect of this package (`reconnectOnAuthChange`, the
 *   `prepareQuery` hook): a sign-in saved by another process. `'credentials-changed'`: any other
 *   status after its credentials changed.
 * - `'write-back'`: after a process wrote its needs-auth entry (a 401, or a Claude Code writing
 *   back its start-up copy). `'invalidated'`: after this process removed its entry.
 *   `'reconnected'`: after a reconnect by this package. `'settled'`: it left `pending`.
 * - `'changed'`: seen on a check made for another reason. `'removed'`: no longer reported.
 */
export type ServerStatusReason =
  | 'init'
  | 'cached-needs-auth'
  | 'tokenless-credentials'
  | 'added'
  | 'signed-in'
  | 'signed-in-elsewhere'
  | 'credentials-changed'
  | 'write-back'
  | 'invalidated'
  | 'reconnected'
  | 'settled'
  | 'changed'
  | 'removed';

/** What the `onServerStatus` callback receives: one server's new status. Frozen. */
export interface ServerStatusEvent {
  readonly server: string;
  /** The session's status, or `'removed'` once the session no longer reports the server. */
  readonly status: McpServerStatusLike['status'] | 'removed';
  /** The status pushed before for this server; `null` on its first push. */
  readonly previous: McpServerStatusLike['status'] | null;
  readonly reason: ServerStatusReason;
  /** When the session's answer showing it came (ms since the epoch). */
  readonly at: number;
  /** The session's `scope` of the server (`user`, `project`, `local`, `claudeai`, `dynamic`...), when it gives one. */
  readonly scope?: string;
  /** The session's `source` of the server (Agent SDK 0.3.x), when it gives one. */
  readonly source?: string;
  /** The server's transport (`http`, `sse`, `stdio`, `claudeai-proxy`...), when the session gives its config. */
  readonly transport?: string;
}

export interface ServerStatusOptions extends ConfigDirOptions {
  /** Closes the subscription when aborted (pass the query's `abortController.signal`). */
  signal?: AbortSignal;
  /** Passed to `onAuthChanged`: also hear other processes' changes (default true). */
  watch?: boolean;
  /** Passed to `onAuthChanged` (the keychain poll, default 2000 ms). */
  pollIntervalMs?: number;
  /** A `mcpServerStatus()` slower than this ends the subscription, with a warning (default 30000 ms). */
  statusTimeoutMs?: number;
  /** While a server is unsettled (see `onServerStatus`), the time between checks (default 250 ms). */
  settleIntervalMs?: number;
  /** At most this many such checks after each event (default 120; 0: none). */
  settleChecks?: number;
  /** And none later than this after the event (default 30000 ms). */
  settleTimeoutMs?: number;
}

/** The subscription `onServerStatus` returns (same surface as the addon's `Subscription`, and more). */
export declare class ServerStatusSubscription {
  private constructor();
  /** The last status pushed for each server the session reports (first seen first). */
  get statuses(): ServerStatusEvent[];
  /**
   * Asks the session now, for a change this package cannot see (the host's own
   * `reconnectMcpServer` or `setMcpServers`), and resolves once that check (and its settle
   * checks) are done.
   */
  refresh(): Promise<void>;
  /** Resolves once no check is running or due; at once after `close()`. */
  settled(): Promise<void>;
  /** Stops at once: no further check, no further push. Idempotent. */
  close(): void;
  /** True once closed: by `close()`, `using`, the signal, or the session's end. */
  get closed(): boolean;
  [Symbol.dispose](): void;
}

// ---------------------------------------------------------------------------------------------
// claude.ai connectors (lib/sdk/connectors.js, lib/sdk/sign-in-connector.js)

/**
 * What `signIn(query, '<claude.ai connector>')` resolves with on Claude Code 2.1.332+: the
 * connector is authorized on claude.ai (`authUrl`, claude.ai's start-auth page); nothing calls
 * back (`callbackExpected: false`). `completed` resolves once the session reports the connector
 * connected (after a re-dial: `redial()` when the user says they are done). Claude Code 2.1.108
 * offers nothing: `signIn` rejects with `ERR_SIGN_IN_UNSUPPORTED` (`err.transport: 'claudeai-proxy'`).
 */
export interface PendingConnectorSignIn extends PendingSignIn {
  readonly authUrl: string;
  readonly callbackExpected: false;
  /** One re-dial of the connector; resolves with the status the session then reports. */
  redial(): Promise<McpServerStatusLike['status'] | undefined>;
}

export interface RedialOptions extends ConfigDirOptions {
  /** The statuses of connectors to re-dial (default `['needs-auth']`). */
  statuses?: string[];
  /** How long a `mcpServerStatus()` answer is waited for (default 30000 ms). */
  statusTimeoutMs?: number;
}

/** One connector's re-dial. */
export interface RedialOutcome {
  server: string;
  /** What the session reports after the re-dial. */
  status: McpServerStatusLike['status'] | 'unknown';
  connected: boolean;
  /** What `reconnectMcpServer` rejected with, when it did and the connector is not connected. */
  error?: string;
}

/**
 * Re-dials, one `reconnectMcpServer` each, the claude.ai connectors the session reports
 * `needs-auth`; a connector then connected loses its needs-auth entry (Claude Code 2.1.108 keeps
 * it). Resolves `[]` when the session has ended; never rejects.
 */
export declare function redialConnectors(query: QueryLike, options?: RedialOptions): Promise<RedialOutcome[]>;

export interface RedialWhileLiveOptions extends RedialOptions {
  /**
   * The n-th scheduled re-dial this long after the previous one; `false`: none. Default
   * `[30000, 60000, 120000, 240000, 480000, 960000, 1920000]` (63.5 min, then no more).
   */
  scheduleMs?: number[] | false;
  /** How often Claude Code's global config is looked at for an account change (default 2000 ms); `false`: never. */
  accountPollMs?: number | false;
  /** The global config file (default: where Claude Code keeps it for the config dir). */
  globalConfigPath?: string;
  /** Hears the outcomes of every round that re-dialed. */
  onRedial?: (outcomes: RedialOutcome[]) => void;
  /** Aborting stops it. */
  signal?: AbortSignal;
}

/** What `redialConnectorsWhileLive` returns. */
export declare class ConnectorRedial {
  private constructor();
  /** A round now (the user says they authorized a connector). */
  redialNow(): Promise<void>;
  /** How many rounds re-dialed at least one connector. */
  readonly rounds: number;
  /** Whether a scheduled round is still to come. */
  readonly scheduled: boolean;
  /** Resolves once no round runs. */
  settled(): Promise<void>;
  /** Stops at once. Idempotent. */
  close(): void;
  readonly closed: boolean;
  [Symbol.dispose](): void;
}

/**
 * Pushes each MCP server's status in a live session to `callback`: every server the session
 * reports (servers the host passed, settings servers, plugin servers, claude.ai connectors) once
 * from its first answer, then each change, once. No fixed poll: it asks the session
 * (`mcpServerStatus()`) once per event of this package (an `onAuthChanged` event of the config
 * dir: a sign-in saved anywhere, a needs-auth entry written or written back, entries removed in
 * this process; a reconnect by `reconnectOnAuthChange`, `prepareQuery`'s hook) and applies every
 * `mcpServerStatus()` answer those helpers get for the same query. While a server is `pending`,
 * or its credentials changed and it is neither connected nor being reconnected by this package,
 * it asks again every `settleIntervalMs`, at most `settleChecks` times and `settleTimeoutMs` after
 * the event; then it waits for the next event (or `refresh()`).
 *
 * It observes only: pair it with `reconnectOnAuthChange` to have sign-ins saved elsewhere
 * connect the live session. Stops on `close()`/`using`, when `options.signal` aborts, or when the
 * session ends (its `mcpServerStatus()` rejects). Throws `ERR_INVALID_ARGUMENT` (naming the
 * argument or option) at once; never throws into the host afterwards (a callback that throws
 * becomes a warning).
 */
export declare function onServerStatus(
  query: Pick<QueryLike, 'mcpServerStatus'>,
  callback: (event: ServerStatusEvent) => void | Promise<void>,
  options?: ServerStatusOptions,
): ServerStatusSubscription;

/**
 * Re-dials the session's needs-auth claude.ai connectors on a bounded backoff schedule while the
 * session lives, and at once when the account or organization in Claude Code's global config
 * changes (after removing the connector entries written before the change). Stops on `close()`,
 * `options.signal`, or when the session ends.
 */
export declare function redialConnectorsWhileLive(query: QueryLike, options?: RedialWhileLiveOptions): ConnectorRedial;
