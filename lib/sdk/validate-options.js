'use strict';
// The one check of mcp-needs-auth/sdk's options (reconnectOnAuthChange, prepareQuery,
// needsAuthHooks, signIn): a known option of the wrong type or range is an Error with code
// ERR_INVALID_ARGUMENT naming it, as the addon reports its own (`options.configDir must be a
// string, not Number`), thrown when the helper is called, before anything starts. Unknown options
// are ignored, as the addon ignores them. A leaf module.

const CREDENTIALS = ['auto', 'file', 'keychain', 'none'];
const MAX_TIMER_MS = 2 ** 31 - 1;

function invalidArgument(message) {
  const err = new Error(message);
  err.code = 'ERR_INVALID_ARGUMENT';
  return err;
}

/** How a wrong value is named: its type (`Number`, `null`), or the value when the type was right. */
function typeName(v) {
  if (v === null) return 'null';
  if (Array.isArray(v)) return 'Array';
  if (typeof v === 'object') return v.constructor?.name ?? 'Object';
  return typeof v === 'function' ? 'Function' : (typeof v).replace(/^./, (c) => c.toUpperCase());
}

/** A wrong value as a message names it: by value when its typeof was right (`-1`, `"x"`), else by type. */
function named(v, type) {
  if (typeof v !== type || v === null || typeof v === 'object') return typeName(v);
  return typeof v === 'number' ? String(v) : JSON.stringify(v);
}

const isObject = (v) => v !== null && typeof v === 'object' && !Array.isArray(v);
const isNumber = (v) => typeof v === 'number' && Number.isFinite(v);
/** An AbortSignal, or any object shaped like one (the addon's test). */
const isSignal = (v) =>
  v instanceof AbortSignal ||
  (v !== null && typeof v === 'object' && typeof v.aborted === 'boolean' && typeof v.addEventListener === 'function');

// name -> [what it must be, the typeof it must have, test]. A value of that typeof that fails the
// test is named by its value (`not -1`), any other by its type (`not String`).
const RULES = {
  configDir: ['a string', 'string', () => true],
  env: ['an object of environment variables', 'object', isObject],
  credentials: [`one of ${CREDENTIALS.map((c) => `'${c}'`).join(', ')}`, 'string', (v) => CREDENTIALS.includes(v)],
  defaultTtlMs: ['a number of ms >= 0', 'number', (v) => isNumber(v) && v >= 0],
  serverConfigs: ['an object of server configs by name', 'object', isObject],
  signal: ['an AbortSignal', 'object', isSignal],
  onReconnect: ['a function', 'function', () => true],
  retries: ['an integer >= 1', 'number', (v) => Number.isInteger(v) && v >= 1],
  backoffMs: ['a number of ms >= 0', 'number', (v) => isNumber(v) && v >= 0],
  statuses: ['an array of status strings', 'object', (v) => Array.isArray(v) && v.every((s) => typeof s === 'string')],
  statusTimeoutMs: ['a number of ms > 0', 'number', (v) => isNumber(v) && v > 0],
  pendingWaitMs: ['a number of ms >= 0', 'number', (v) => isNumber(v) && v >= 0],
  watch: ['a boolean', 'boolean', () => true],
  pollIntervalMs: ['a number of ms > 0', 'number', (v) => isNumber(v) && v > 0],
  query: [
    'the query, or a function returning it',
    'object',
    (v) => v !== null && typeof v.mcpServerStatus === 'function',
  ],
  timeoutMs: [
    `a number of ms between 1 and ${MAX_TIMER_MS}`,
    'number',
    (v) => isNumber(v) && v >= 1 && v <= MAX_TIMER_MS,
  ],
  redirectUri: ['an absolute URL', 'string', (v) => URL.canParse(v)],
  reauthenticate: ['a boolean', 'boolean', () => true],
};

/** Which options each helper takes (the ones it reads; others are ignored). */
const ADDON = ['configDir', 'env', 'credentials', 'defaultTtlMs', 'serverConfigs'];
const RECONNECT = ['onReconnect', 'retries', 'backoffMs', 'statusTimeoutMs', 'pendingWaitMs'];
const TAKES = {
  reconnectOnAuthChange: [...ADDON, ...RECONNECT, 'statuses', 'signal', 'watch', 'pollIntervalMs'],
  needsAuthHooks: [...ADDON, ...RECONNECT, 'query'],
  prepareQuery: [...ADDON, ...RECONNECT, 'query'],
  signIn: ['configDir', 'env', 'timeoutMs', 'signal', 'redirectUri', 'reauthenticate'],
};

/**
 * Checks the options of `helper` (a key of TAKES): undefined is no options; otherwise an object
 * whose known fields, when not undefined, pass their rule. Returns `options ?? {}`. Throws
 * ERR_INVALID_ARGUMENT (`<helper>: options.<name> must be ..., not ...`).
 */
function validateOptions(helper, options, label = 'options') {
  if (options === undefined) return {};
  if (options === null || typeof options !== 'object') {
    throw invalidArgument(`${helper}: ${label} must be an object, not ${typeName(options)}`);
  }
  for (const name of TAKES[helper]) {
    const v = options[name];
    if (v === undefined) continue;
    const [what, type, ok] = RULES[name];
    // a query getter is a function: the one option whose typeof may be either
    if (name === 'query' && typeof v === 'function') continue;
    if (typeof v === type && ok(v)) continue;
    throw invalidArgument(`${helper}: ${label}.${name} must be ${what}, not ${named(v, type)}`);
  }
  return options;
}

module.exports = { validateOptions, invalidArgument };
