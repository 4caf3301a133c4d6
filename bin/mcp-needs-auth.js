#!/usr/bin/env node
'use strict';

// mcp-needs-auth: inspect and clear Claude Code's MCP needs-auth cache.
// Built-ins only. The addon is loaded lazily so `--help` and `--version` work without it.

const { parseArgs } = require('node:util');
const path = require('node:path');

const PROG = 'mcp-needs-auth';

const HELP = `Usage: ${PROG} <command> [options]

Inspect and clear Claude Code's MCP needs-auth cache (<config dir>/mcp-needs-auth-cache.json).
While a server has a fresh entry there, Claude Code skips connecting to it at start-up.

Commands:
  list [--json]              Show every entry: its age, when it expires, and whether
                             Claude Code skips the server now.
  clear [server...]          Remove the entries of the given servers (all entries when
                             none are given) and print what was removed.
  path                       Print the path of the cache file.
  purge [--json]             Remove stale entries only: expired ones, and ones superseded
                             by credentials saved after the failure.
  why <server> [--json]      Explain whether Claude Code skips <server> at start-up, and why.
  watch [--json]             Print one line per auth change (one JSON object per line with
                             --json) until Ctrl-C. Entries of servers whose credentials
                             change are removed as the change is seen.
  help                       Show this help.

Options:
  --config-dir DIR           Claude Code's config dir (default: $CLAUDE_CONFIG_DIR or ~/.claude).
  --default-ttl-ms N         TTL for entries without their own ttlMs (default 900000 = 15 min;
                             Claude Code 2.1.332 uses 14400000 for claude.ai-proxy and plugin
                             http/sse servers). list, purge, why.
  --credentials SOURCE       Where credentials are read from: auto (default), file, keychain
                             or none. purge, why, watch.
  --json                     Machine-readable output. list, clear, purge, why, watch.
  -h, --help                 Show this help.
  --version                  Print the version.

Exit status: 0 success, 1 failure, 2 usage error.
`;

// Which options each command accepts (beyond --help / --version).
const COMMANDS = {
  list: ['json', 'config-dir', 'default-ttl-ms'],
  clear: ['json', 'config-dir'],
  path: ['config-dir'],
  purge: ['json', 'config-dir', 'default-ttl-ms', 'credentials'],
  why: ['json', 'config-dir', 'default-ttl-ms', 'credentials'],
  watch: ['json', 'config-dir', 'credentials'],
  help: [],
};

const OPTIONS = {
  json: { type: 'boolean' },
  'config-dir': { type: 'string' },
  'default-ttl-ms': { type: 'string' },
  credentials: { type: 'string' },
  help: { type: 'boolean', short: 'h' },
  version: { type: 'boolean' },
};

class UsageError extends Error {}

function usageFail(message) {
  process.stderr.write(`${PROG}: ${message}\n\n${HELP}`);
  process.exitCode = 2;
}

function fail(err) {
  const message = err?.message ? err.message : String(err);
  const code = err && typeof err.code === 'string' ? ` (${err.code})` : '';
  process.stderr.write(`${PROG}: ${message}${code}\n`);
  process.exitCode = 1;
}

function out(line) {
  process.stdout.write(`${line}\n`);
}

// `watch ... | head -1` must end quietly.
process.stdout.on('error', (err) => {
  if (err && err.code === 'EPIPE') process.exit(process.exitCode || 0);
  throw err;
});

function parse(argv) {
  let parsed;
  try {
    parsed = parseArgs({ args: argv, options: OPTIONS, allowPositionals: true, strict: true, tokens: true });
  } catch (err) {
    throw new UsageError(err.message);
  }
  const { values, positionals, tokens } = parsed;
  if (values.help || values.version) return { values, command: values.help ? 'help' : 'version', args: [] };
  if (positionals.length === 0) throw new UsageError('missing command');
  // The command is the first positional not after `--`.
  const [command, ...args] = positionals;
  const firstPos = tokens.find((t) => t.kind === 'positional');
  const terminator = tokens.find((t) => t.kind === 'option-terminator');
  if (terminator && firstPos && terminator.index < firstPos.index) {
    throw new UsageError('the command must come before `--`');
  }
  if (!Object.hasOwn(COMMANDS, command)) {
    throw new UsageError(`unknown command '${command}'`);
  }
  for (const t of tokens) {
    if (t.kind === 'option' && t.name !== 'help' && t.name !== 'version' && !COMMANDS[command].includes(t.name)) {
      throw new UsageError(`'${command}' does not take --${t.name}`);
    }
  }
  return { values, command, args };
}

function buildOptions(values) {
  const options = {};
  if (values['config-dir'] !== undefined) {
    if (values['config-dir'] === '') throw new UsageError('--config-dir needs a directory');
    options.configDir = path.resolve(values['config-dir']);
  }
  if (values['default-ttl-ms'] !== undefined) {
    const raw = values['default-ttl-ms'].trim();
    const n = raw === '' ? NaN : Number(raw);
    if (!Number.isFinite(n) || n < 0) {
      throw new UsageError(`--default-ttl-ms must be a number of milliseconds >= 0, not '${values['default-ttl-ms']}'`);
    }
    options.defaultTtlMs = n;
  }
  if (values.credentials !== undefined) {
    // The stores are the addon's (`CredentialStore`), so the list is written once, in Rust.
    const stores = Object.values(loadAddon().CredentialStore);
    if (!stores.includes(values.credentials)) {
      throw new UsageError(`--credentials must be ${stores.join(', ')}, not '${values.credentials}'`);
    }
    options.credentials = values.credentials;
  }
  return options;
}

function loadAddon() {
  return require('..');
}

// --- formatting -------------------------------------------------------------------------------

// Durations are spelt by the addon (`formatDuration`), so the CLI's ages read exactly like the
// addon's own messages (`why` prints both).
function formatAge(addon, timestamp, now) {
  if (typeof timestamp !== 'number') return '-';
  const age = now - timestamp;
  return age >= 0 ? `${addon.formatDuration(age)} ago` : `${addon.formatDuration(-age)} in the future`;
}

function formatExpiresIn(addon, expiresAt, now) {
  if (typeof expiresAt !== 'number') return '-';
  const left = expiresAt - now;
  return left > 0 ? addon.formatDuration(left) : 'expired';
}

function table(header, rows) {
  const widths = header.map((h, i) => Math.max(h.length, ...rows.map((r) => String(r[i]).length)));
  const line = (cells) =>
    cells
      .map((c, i) => (i === cells.length - 1 ? String(c) : String(c).padEnd(widths[i])))
      .join('  ')
      .trimEnd();
  return [line(header), ...rows.map(line)].join('\n');
}

function json(value) {
  out(JSON.stringify(value, null, 2));
}

// Only the documented, token-free fields leave the process (defence in depth: the API never
// returns tokens, and this keeps it that way even if the result grows).
function safeEntry(e) {
  if (!e) return null;
  const r = { server: e.server, timestamp: e.timestamp, ttlMs: e.ttlMs, expiresAt: e.expiresAt, cached: e.cached };
  if (e.id !== undefined) r.id = e.id;
  return r;
}

function safeDiagnosis(d) {
  const c = d.credentials || {};
  return {
    server: d.server,
    skipped: d.skipped,
    reasons: (d.reasons || []).map((r) => {
      const o = { kind: r.kind, message: r.message };
      for (const k of ['ageMs', 'expiresInMs', 'superseded']) if (r[k] !== undefined) o[k] = r[k];
      return o;
    }),
    cacheEntry: safeEntry(d.cacheEntry),
    credentials: {
      present: !!c.present,
      hasAccessToken: !!c.hasAccessToken,
      hasRefreshToken: !!c.hasRefreshToken,
      expiresAt: typeof c.expiresAt === 'number' ? c.expiresAt : null,
      tokenlessStub: !!c.tokenlessStub,
    },
    ...(typeof d.connectorNote === 'string' ? { connectorNote: d.connectorNote } : {}),
    watch: d.watch ? { mode: String(d.watch.mode), filesystem: String(d.watch.filesystem) } : null,
  };
}

const yesNo = (b) => (b ? 'yes' : 'no');

// --- commands ---------------------------------------------------------------------------------

function cmdList(addon, options, values) {
  const entries = addon.listNeedsAuth(options);
  if (values.json) return json(entries);
  if (entries.length === 0) {
    out(`No needs-auth entries (${addon.cachePath(options)}).`);
    return;
  }
  const now = Date.now();
  const withId = entries.some((e) => e.id !== undefined);
  const header = ['SERVER', 'AGE', 'EXPIRES IN', 'CACHED'];
  if (withId) header.push('ID');
  const rows = entries.map((e) => {
    const row = [
      e.server,
      formatAge(addon, e.timestamp, now),
      formatExpiresIn(addon, e.expiresAt, now),
      yesNo(e.cached),
    ];
    if (withId) row.push(e.id ?? '-');
    return row;
  });
  out(table(header, rows));
}

function cmdClear(addon, options, values, args) {
  const removed = addon.invalidateNeedsAuth(args.length > 0 ? args : undefined, options);
  if (values.json) return json({ removed });
  out(removed.length > 0 ? `removed: ${removed.join(', ')}` : 'nothing to remove');
}

function cmdPath(addon, options) {
  out(addon.cachePath(options));
}

const PURGE_REASONS = {
  expired: 'expired: older than its TTL, Claude Code already ignores it',
  superseded: 'superseded: credentials were saved after the failure',
};

function cmdPurge(addon, options, values) {
  const removed = addon.purgeStale(options);
  if (values.json) return json(removed.map((r) => ({ server: r.server, reason: r.reason })));
  if (removed.length === 0) {
    out('nothing to remove');
    return;
  }
  const width = Math.max(...removed.map((r) => r.server.length));
  for (const r of removed) out(`removed ${r.server.padEnd(width)}  ${PURGE_REASONS[r.reason] || r.reason}`);
}

function cmdWhy(addon, options, values, args) {
  const d = safeDiagnosis(addon.diagnose(args[0], options));
  if (values.json) return json(d);

  const now = Date.now();
  out(
    d.skipped
      ? `${d.server}: SKIPPED - Claude Code will not connect to it at start-up.`
      : `${d.server}: not skipped - Claude Code will try to connect to it at start-up.`,
  );
  if (d.reasons.length > 0) {
    out('');
    out('Reasons:');
    for (const r of d.reasons) out(`  - [${r.kind}] ${r.message}`);
  }
  if (d.connectorNote) {
    out('');
    out(`claude.ai connector: ${d.connectorNote}`);
  }
  out('');
  if (d.cacheEntry) {
    const e = d.cacheEntry;
    out(
      `Cache entry: written ${formatAge(addon, e.timestamp, now)}, expires in ${formatExpiresIn(addon, e.expiresAt, now)}` +
        ` (ttl ${addon.formatDuration(e.ttlMs)}), cached ${yesNo(e.cached)}${e.id !== undefined ? `, id ${e.id}` : ''}`,
    );
  } else {
    out('Cache entry: none');
  }
  const c = d.credentials;
  const whose = d.connectorNote
    ? 'Account credentials (claudeAiOauth, what connectors are dialed with)'
    : 'Credentials';
  if (!c.present) {
    out(d.connectorNote ? `${whose}: none stored` : 'Credentials: none stored for this server');
  } else {
    let expires = '';
    if (c.hasAccessToken && c.expiresAt !== null) {
      const left = c.expiresAt - now;
      expires =
        left > 0 ? ` (expires in ${addon.formatDuration(left)})` : ` (expired ${addon.formatDuration(-left)} ago)`;
    }
    out(
      `${whose}: access token ${yesNo(c.hasAccessToken)}${expires}, refresh token ${yesNo(c.hasRefreshToken)},` +
        ` token-less stub ${yesNo(c.tokenlessStub)}`,
    );
  }
  if (d.watch) out(`watch: ${d.watch.mode} (${d.watch.filesystem})`);
}

function cmdWatch(addon, options, values) {
  // Keeps the process alive: subscriptions never do.
  const keepAlive = setInterval(() => {}, 1 << 30);
  let sub;
  const stop = () => {
    clearInterval(keepAlive);
    if (sub) sub.close();
    process.exitCode = process.exitCode || 0;
    // Should anything else still hold the event loop, do not hang on Ctrl-C.
    setTimeout(() => process.exit(process.exitCode), 2000).unref();
  };
  process.once('SIGINT', stop);
  process.once('SIGTERM', stop);
  try {
    sub = addon.onAuthChanged(
      (ev) => {
        if (values.json) {
          out(
            JSON.stringify({
              reason: ev.reason,
              servers: ev.servers,
              source: ev.source,
              at: ev.at,
              configDir: ev.configDir,
            }),
          );
        } else {
          const who = ev.servers.length > 0 ? ev.servers.join(', ') : '(all servers)';
          out(`${new Date(ev.at).toISOString()}  ${ev.reason}  ${who}  (${ev.source})`);
        }
      },
      { ...options, watch: true, autoInvalidate: true },
    );
  } catch (err) {
    clearInterval(keepAlive);
    process.removeListener('SIGINT', stop);
    process.removeListener('SIGTERM', stop);
    throw err;
  }
  // Status goes to stderr so stdout stays one event per line.
  process.stderr.write(`watching ${path.dirname(addon.cachePath(options))} for auth changes (Ctrl-C to stop)\n`);
}

// --- main -------------------------------------------------------------------------------------

function main(argv) {
  let parsed;
  let options;
  try {
    parsed = parse(argv);
    options = buildOptions(parsed.values);
  } catch (err) {
    if (err instanceof UsageError) return usageFail(err.message);
    throw err;
  }
  const { command, values, args } = parsed;

  if (command === 'help') return void process.stdout.write(HELP);
  if (command === 'version') return out(require('../package.json').version);
  if (args.length > 0 && command !== 'clear' && command !== 'why') {
    return usageFail(`'${command}' takes no arguments (got '${args[0]}')`);
  }
  if (command === 'why' && args.length !== 1) {
    return usageFail(args.length === 0 ? "'why' needs a server name" : "'why' takes exactly one server name");
  }

  try {
    const addon = loadAddon();
    const run = { list: cmdList, clear: cmdClear, path: cmdPath, purge: cmdPurge, why: cmdWhy, watch: cmdWatch }[
      command
    ];
    run(addon, options, values, args);
  } catch (err) {
    if (err instanceof UsageError) return usageFail(err.message);
    fail(err);
  }
}

main(process.argv.slice(2));
