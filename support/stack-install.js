'use strict';
// Fetches an end-to-end stack (support/stacks/<name>/package.json + package-lock.json: exact
// pins) on first use, by npm, into a cache outside the repo, so that `npm install` on a clone
// fetches only what build, lint, unit tests and the demo need (the stacks hold three native
// Claude Code binaries, about 1.2 GB).
//
//   <cache root>/<name>/<first 16 hex of the lockfile's sha256>/node_modules/...
//
// The cache root is $MCP_NEEDS_AUTH_STACKS_DIR, else ${XDG_CACHE_HOME:-~/.cache}/mcp-needs-auth/stacks.
// A changed lockfile is a new directory: one in place is never modified. Installing goes into a
// temp directory beside it (`npm ci --ignore-scripts`), which is renamed into place once complete,
// so two processes asking at once never see half a stack (the second waits for the first's
// install while that one's process lives, then uses it). Every npm run is bounded in time.

const crypto = require('node:crypto');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { spawn } = require('node:child_process');

const MANIFESTS = path.join(__dirname, 'stacks');
const COMPLETE = '.complete';
const TMP_PREFIX = '.installing-';
// The whole install (about 1.2 GB for the current stack on a cold npm cache), and how long a
// second process waits for a first one's install before it starts its own.
const INSTALL_TIMEOUT_MS = Number(process.env.MCP_NEEDS_AUTH_STACK_INSTALL_TIMEOUT_MS) || 20 * 60_000;
const delay = (ms) => new Promise((r) => setTimeout(r, ms));

function cacheRoot(env = process.env) {
  if (env.MCP_NEEDS_AUTH_STACKS_DIR) return path.resolve(env.MCP_NEEDS_AUTH_STACKS_DIR);
  const base = env.XDG_CACHE_HOME ? path.resolve(env.XDG_CACHE_HOME) : path.join(os.homedir(), '.cache');
  return path.join(base, 'mcp-needs-auth', 'stacks');
}

/** The committed manifest dir of stack `name` (package.json + package-lock.json). */
function manifestDir(name) {
  return path.join(MANIFESTS, name);
}

/** Where stack `name` is (or will be) installed under `root`: keyed by its lockfile's content. */
function stackDir(name, root = cacheRoot()) {
  const lock = fs.readFileSync(path.join(manifestDir(name), 'package-lock.json'));
  const hash = crypto.createHash('sha256').update(lock).digest('hex').slice(0, 16);
  return path.join(root, name, hash);
}

const isComplete = (dir) => fs.existsSync(path.join(dir, COMPLETE));

function alive(pid) {
  try {
    process.kill(pid, 0);
    return true;
  } catch (err) {
    return err.code === 'EPERM';
  }
}

/** Temp dirs beside `dir` whose installing process still runs. */
function installsUnderWay(dir) {
  const parent = path.dirname(dir);
  const prefix = `${TMP_PREFIX}${path.basename(dir)}-`;
  let names = [];
  try {
    names = fs.readdirSync(parent);
  } catch {
    return [];
  }
  return names.filter((n) => n.startsWith(prefix) && alive(Number(n.slice(prefix.length).split('-')[0])));
}

/** Runs npm with `args`; resolves { code, signal, output, timedOut }, killing it after `timeoutMs`. */
function runNpm(args, { cwd, timeoutMs, env: extraEnv }) {
  return new Promise((resolve) => {
    const child = spawn('npm', args, {
      cwd,
      // Not the npm script context of a surrounding `npm test` (it would point npm back at the repo).
      env: {
        ...Object.fromEntries(
          Object.entries(process.env).filter(
            ([k]) => !/^npm_(lifecycle_|package_|command$|config_(local_)?prefix$)/i.test(k),
          ),
        ),
        ...extraEnv,
      },
      stdio: ['ignore', 'pipe', 'pipe'],
      shell: process.platform === 'win32', // npm is a .cmd script there
      detached: process.platform !== 'win32',
    });
    let output = '';
    const keep = (d) => {
      output = (output + d).slice(-20_000);
    };
    child.stdout.on('data', keep);
    child.stderr.on('data', keep);
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      try {
        if (process.platform !== 'win32') process.kill(-child.pid, 'SIGKILL');
        else child.kill('SIGKILL');
      } catch {
        /* gone */
      }
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      resolve({ code: null, signal: null, output: `${output}\n${err.message}`, timedOut });
    });
    child.on('close', (code, signal) => {
      clearTimeout(timer);
      resolve({ code, signal, output, timedOut });
    });
  });
}

const UNREACHABLE =
  /\b(ENOTFOUND|EAI_AGAIN|ECONNREFUSED|ECONNRESET|ETIMEDOUT|ENETUNREACH|EHOSTUNREACH|ERR_SOCKET_TIMEOUT)\b|network request|request to \S+ failed/i;

function registry(env) {
  return env.npm_config_registry || env.NPM_CONFIG_REGISTRY || 'the npm registry';
}

function installError(name, dir, r, timeoutMs, env) {
  const tail = r.output.trim().split('\n').slice(-15).join('\n');
  const why = r.timedOut
    ? `npm ci did not finish within ${Math.round(timeoutMs / 1000)} s`
    : UNREACHABLE.test(r.output)
      ? `the registry is unreachable (${registry(env)}): the end-to-end tests fetch their Claude Code stacks from it on first use`
      : `npm ci exited ${r.code ?? r.signal}`;
  const err = new Error(
    `could not install the "${name}" Claude Code stack (support/stacks/${name}/) into ${dir}: ${why}.\n` +
      `Retry once the registry answers, or install it yourself: npm ci --ignore-scripts --prefix <dir> with that dir's package files ` +
      `(MCP_NEEDS_AUTH_STACKS_DIR moves the cache).\n--- npm said:\n${tail}`,
  );
  err.code = 'ERR_STACK_INSTALL';
  return err;
}

/**
 * Installs stack `name` if it is not in the cache yet; resolves its directory (holding
 * `node_modules/`). Safe when several processes ask at once. Rejects with ERR_STACK_INSTALL
 * (saying why: registry unreachable, timeout, npm's exit) when the install fails.
 * Options: `root` (the cache root), `timeoutMs` (the whole wait and install), `fetchRetries`
 * (npm's, 2), `env` (added to npm's environment), `log` (progress lines).
 */
async function ensureStackInstalled(
  name,
  { root = cacheRoot(), timeoutMs = INSTALL_TIMEOUT_MS, fetchRetries = 2, env = {}, log = () => {} } = {},
) {
  const dir = stackDir(name, root);
  if (isComplete(dir)) return dir;
  const deadline = Date.now() + timeoutMs;
  fs.mkdirSync(path.dirname(dir), { recursive: true });
  // Another process installing this very stack: wait for it rather than fetch it twice.
  while (!isComplete(dir) && installsUnderWay(dir).length > 0 && Date.now() < deadline) await delay(1000);
  if (isComplete(dir)) return dir;

  const tmp = fs.mkdtempSync(path.join(path.dirname(dir), `${TMP_PREFIX}${path.basename(dir)}-${process.pid}-`));
  try {
    for (const f of ['package.json', 'package-lock.json'])
      fs.copyFileSync(path.join(manifestDir(name), f), path.join(tmp, f));
    log(`installing the "${name}" Claude Code stack into ${dir} (first use; npm ci)`);
    const started = Date.now();
    const left = Math.max(deadline - Date.now(), 60_000);
    const r = await runNpm(
      [
        'ci',
        '--ignore-scripts',
        '--no-audit',
        '--no-fund',
        '--prefer-offline',
        '--loglevel=warn',
        // npm's own per-request timeout stays (5 min: a native binary is 400 MB); the whole
        // install is bounded by `left`.
        `--fetch-retries=${fetchRetries}`,
        '--prefix',
        tmp,
      ],
      { cwd: tmp, timeoutMs: left, env },
    );
    if (r.code !== 0) throw installError(name, dir, r, left, { ...process.env, ...env });
    fs.writeFileSync(
      path.join(tmp, COMPLETE),
      `${JSON.stringify({ installedAt: new Date().toISOString(), ms: Date.now() - started })}\n`,
    );
    try {
      fs.renameSync(tmp, dir);
    } catch (err) {
      // Another process renamed its complete install into place first: use that one.
      if (!isComplete(dir)) throw err;
    }
    log(`installed the "${name}" stack in ${((Date.now() - started) / 1000).toFixed(1)} s`);
    return dir;
  } finally {
    fs.rmSync(tmp, { recursive: true, force: true });
  }
}

module.exports = { ensureStackInstalled, stackDir, cacheRoot, manifestDir, INSTALL_TIMEOUT_MS };
