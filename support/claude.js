'use strict';
// Run the real Claude Code CLI offline, inside a throw-away HOME. Which Claude Code: a stack of
// support/stacks.js (`{ stack }` in the options of runClaude / mcpAdd / mcpList / runPrint),
// by default the seed's (2.1.108 `cli.js`, from the seed stack's install: await ensureStack first).
//
// Config-dir choice: by default CLAUDE_CONFIG_DIR is NOT set, so the CLI uses
// `$HOME/.claude` (configDir) for the needs-auth cache and .credentials.json, and
// `$HOME/.claude.json` for user-scope MCP servers. This is the layout most users
// have. Pass makeHome({ configDir: true }) to set CLAUDE_CONFIG_DIR=<home>/.claude
// instead; the CLI then keeps everything, including `.claude.json`, inside
// configDir. Either way `configDir` is the directory the cache file lives in.
// Every variable from the real environment that could point at a real account
// or config (CLAUDE_*, ANTHROPIC_*, XDG_CONFIG_HOME, proxies...) is dropped.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');
const { SEED } = require('./stacks.js');

const DEFAULT_TIMEOUT_MS = 60_000;
const live = new Set(); // children we started and have not yet seen exit
const homes = new Set(); // every HOME makeHome made in this process

/** The stack's Claude Code executable: cli.js for the seed's, the native binary for 2.1.332. */
function claudeBin(stack = SEED) {
  return stack.claudeCode.executable;
}

const DROP =
  /^(CLAUDE|ANTHROPIC|CLAUDECODE|MCP_|OTEL_|XDG_|NODE_OPTIONS$|NODE_EXTRA_CA_CERTS$|(HTTPS?|ALL|NO)_PROXY$|AWS_|GOOGLE_|VERTEX_|DEBUG$)/i;

/**
 * The environment for a Claude Code child living in `home`: this process's, less everything that
 * could point at a real account or config, plus what keeps Claude Code offline; then `overrides`.
 * Creates its TMPDIR.
 */
function offlineEnv(home, overrides = {}) {
  const env = {};
  for (const [k, v] of Object.entries(process.env)) {
    if (!DROP.test(k)) env[k] = v;
  }
  Object.assign(
    env,
    {
      HOME: home,
      USERPROFILE: home,
      TMPDIR: path.join(home, 'tmp'),
      DISABLE_AUTOUPDATER: '1',
      CLAUDE_CODE_DISABLE_NONESSENTIAL_TRAFFIC: '1',
      DISABLE_TELEMETRY: '1',
      DISABLE_ERROR_REPORTING: '1',
      CLAUDE_CODE_MAX_RETRIES: '0',
      ANTHROPIC_API_KEY: 'sk-ant-dummy',
      ANTHROPIC_BASE_URL: 'http://127.0.0.1:9',
      NO_PROXY: '127.0.0.1,localhost',
      no_proxy: '127.0.0.1,localhost',
    },
    overrides,
  );
  fs.mkdirSync(env.TMPDIR, { recursive: true });
  return env;
}

/**
 * A throw-away HOME (with its config dir) and the offline env of a Claude Code living in it.
 * cleanup() removes it: stop every process writing into it first (a session's close() from
 * support/session.js resolves once its Claude Code exited), or it comes back (leftoverHomes()).
 */
function makeHome({ configDir: useConfigDirEnv = false, extraEnv = {} } = {}) {
  const home = fs.mkdtempSync(path.join(os.tmpdir(), 'mcp-needs-auth-e2e-'));
  homes.add(home);
  const configDir = path.join(home, '.claude');
  fs.mkdirSync(configDir, { recursive: true });
  const env = offlineEnv(home, extraEnv);
  if (useConfigDirEnv) env.CLAUDE_CONFIG_DIR = configDir;
  else delete env.CLAUDE_CONFIG_DIR;
  return {
    home,
    configDir,
    env,
    cachePath: path.join(configDir, 'mcp-needs-auth-cache.json'),
    cleanup() {
      fs.rmSync(home, { recursive: true, force: true });
    },
  };
}

/**
 * The HOMEs makeHome made in this process that exist now: not cleaned up, or written again after
 * cleanup() by a process that outlived it. A suite asserts none is left once its tests ran.
 */
function leftoverHomes() {
  return [...homes].filter((h) => fs.existsSync(h));
}

/**
 * Run the stack's `claude` with args. Resolves { code, signal, stdout, stderr, ms, timedOut }.
 * The child is SIGKILLed (whole process group) after timeoutMs.
 */
function runClaude(env, args, { timeoutMs = DEFAULT_TIMEOUT_MS, cwd, stack = SEED } = {}) {
  const started = Date.now();
  return new Promise((resolve, reject) => {
    const child = spawn(stack.claudeCode.command, [...stack.claudeCode.args, ...args], {
      env,
      cwd: cwd || env.HOME,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: process.platform !== 'win32', // own process group, so we can kill grandchildren
    });
    live.add(child);
    let stdout = '';
    let stderr = '';
    let timedOut = false;
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const kill = () => {
      try {
        if (process.platform !== 'win32') process.kill(-child.pid, 'SIGKILL');
        else child.kill('SIGKILL');
      } catch {
        /* already gone */
      }
    };
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      live.delete(child);
      reject(err);
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      live.delete(child);
      kill(); // reap any stray grandchildren left in the group
      resolve({ code, signal, stdout, stderr, ms: Date.now() - started, timedOut });
    });
  });
}

function killAll() {
  for (const child of live) {
    try {
      process.kill(-child.pid, 'SIGKILL');
    } catch {
      try {
        child.kill('SIGKILL');
      } catch {
        /* gone */
      }
    }
  }
  live.clear();
}
process.once('exit', killAll);

// `claude mcp add --transport http -s user NAME URL`
function mcpAdd(env, name, url, opts = {}) {
  return runClaude(env, ['mcp', 'add', '--transport', 'http', '-s', 'user', name, url], opts);
}

// `claude mcp list` (dials every server; writes the cache + token-less stub on a 401)
function mcpList(env, opts = {}) {
  return runClaude(env, ['mcp', 'list'], opts);
}

function escapeRe(s) {
  return s.replace(/[.*+?^${}()|[\]\\]/g, '\\$&');
}

/**
 * What a Claude Code debug log (`--debug-file`) says the start-up loop did with server `name`:
 * { skipped, connected, needsAuth }. Same lines in 2.1.108 and 2.1.332.
 */
function mcpStartup(debug, name) {
  const prefix = `MCP server "${escapeRe(name)}": `;
  return {
    skipped: new RegExp(`${prefix}Skipping connection \\(cached needs-auth\\)`).test(debug),
    connected: new RegExp(`${prefix}Successfully connected`).test(debug),
    needsAuth: new RegExp(`${prefix}.*(needs-auth|Authentication required)`, 'i').test(debug),
  };
}

/**
 * `claude -p hi --max-turns 1 --debug-file F` — runs the start-up MCP connection
 * loop, then fails fast on the model call (ANTHROPIC_BASE_URL is a closed port).
 * Returns { code, ms, stdout, stderr, debug, skipped, connected, needsAuth, timedOut }
 * where skipped/connected/needsAuth are about the server called `name`.
 */
async function runPrint(env, name, { debugFile, timeoutMs, prompt = 'hi', extraArgs = [], stack } = {}) {
  const file = debugFile || path.join(env.HOME, `debug-${Date.now()}-${Math.random().toString(16).slice(2, 8)}.txt`);
  const r = await runClaude(env, ['-p', prompt, '--max-turns', '1', '--debug-file', file, ...extraArgs], {
    timeoutMs,
    stack,
  });
  let debug = '';
  try {
    debug = fs.readFileSync(file, 'utf8');
  } catch {
    /* not written */
  }
  return { ...r, debugFile: file, debug, ...mcpStartup(debug, name) };
}

module.exports = {
  DEFAULT_TIMEOUT_MS,
  claudeBin,
  makeHome,
  leftoverHomes,
  offlineEnv,
  runClaude,
  mcpAdd,
  mcpList,
  mcpStartup,
  runPrint,
  killAll,
};
