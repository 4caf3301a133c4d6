'use strict';
// The two Claude Code stacks the sign-in tests run against, and a test "user" who follows an
// authUrl with plain HTTP. Kept local to the sign-in tests on purpose (the shared
// support/claude.js is being generalised to both stacks elsewhere; fold this in then).

const fs = require('node:fs');
const http = require('node:http');
const path = require('node:path');
const { spawn } = require('node:child_process');

const NM = path.join(__dirname, '..', '..', 'node_modules');

const STACKS = [
  {
    name: 'Agent SDK 0.2.104 + Claude Code 2.1.108',
    sdk: path.join(NM, '@anthropic-ai', 'claude-agent-sdk', 'sdk.mjs'),
    // The seed's pinned CLI, run with node (the SDK would otherwise run its bundled 2.1.104).
    queryOptions: () => ({
      pathToClaudeCodeExecutable: path.join(NM, '@anthropic-ai', 'claude-code', 'cli.js'),
      executable: 'node',
    }),
    cli: () => [process.execPath, path.join(NM, '@anthropic-ai', 'claude-code', 'cli.js')],
  },
  {
    name: 'Agent SDK 0.3.332 + Claude Code 2.1.332 (native)',
    sdk: path.join(NM, 'claude-agent-sdk-0.3.332', 'sdk.mjs'),
    // The SDK finds its own native binary (@anthropic-ai/claude-agent-sdk-<platform>/claude).
    queryOptions: () => ({}),
    // The same build as the SDK's binary, from the claude-code-2.1.332 alias's platform package.
    cli: () => [path.join(NM, '@anthropic-ai', `claude-code-${process.platform}-${process.arch}`, 'claude')],
  },
];

const delay = (ms) => new Promise((r) => setTimeout(r, ms));

/** Runs the stack's CLI; SIGKILLs its process group after timeoutMs. */
function runCli(stack, env, args, { timeoutMs = 60_000 } = {}) {
  const [cmd, ...pre] = stack.cli();
  return new Promise((resolve, reject) => {
    const child = spawn(cmd, [...pre, ...args], {
      env,
      cwd: env.HOME,
      stdio: ['ignore', 'pipe', 'pipe'],
      detached: true,
    });
    let stdout = '';
    let stderr = '';
    child.stdout.on('data', (d) => {
      stdout += d;
    });
    child.stderr.on('data', (d) => {
      stderr += d;
    });
    const kill = () => {
      try {
        process.kill(-child.pid, 'SIGKILL');
      } catch {
        /* gone */
      }
    };
    let timedOut = false;
    const timer = setTimeout(() => {
      timedOut = true;
      kill();
    }, timeoutMs);
    child.on('error', (err) => {
      clearTimeout(timer);
      reject(err);
    });
    child.on('close', (code) => {
      clearTimeout(timer);
      kill();
      resolve({ code, stdout, stderr, timedOut });
    });
  });
}

/** `claude -p` with a debug file: did the start-up loop connect `name`? */
async function printConnects(stack, env, name) {
  const file = path.join(env.HOME, `debug-${Date.now()}-${Math.random().toString(16).slice(2, 8)}.txt`);
  const r = await runCli(stack, env, ['-p', 'hi', '--max-turns', '1', '--debug-file', file]);
  let debug = '';
  try {
    debug = fs.readFileSync(file, 'utf8');
  } catch {
    /* not written */
  }
  return { ...r, debug, connected: debug.includes(`MCP server "${name}": Successfully connected`) };
}

/**
 * A live SDK session of `stack` with no model call: the prompt stream stays open until close().
 */
async function openSession(stack, env, extraOptions = {}) {
  const { query } = await import(stack.sdk);
  let release;
  const hold = new Promise((r) => {
    release = r;
  });
  // biome-ignore lint/correctness/useYield: the prompt stream stays open without a message
  async function* input() {
    await hold;
  }
  const q = query({ prompt: input(), options: { env, cwd: env.HOME, ...stack.queryOptions(), ...extraOptions } });
  const drained = (async () => {
    try {
      for await (const _ of q) {
        /* drain */
      }
    } catch {
      /* offline */
    }
  })();
  return {
    q,
    async status(name) {
      return (await q.mcpServerStatus()).find((s) => s.name === name);
    },
    /** Polls until `name` leaves 'pending'. */
    async settled(name, timeoutMs = 20_000) {
      const end = Date.now() + timeoutMs;
      let s = await this.status(name);
      while (s && s.status === 'pending' && Date.now() < end) {
        await delay(200);
        s = await this.status(name);
      }
      return s;
    },
    async close() {
      release();
      try {
        q.close();
      } catch {
        /* closed */
      }
      await Promise.race([drained, delay(10_000)]);
    },
  };
}

function isLoopback(u) {
  return u.protocol === 'http:' && ['127.0.0.1', 'localhost', '[::1]'].includes(u.hostname);
}

function get(url) {
  return new Promise((resolve, reject) => {
    const req = http.get(url, (res) => {
      res.resume();
      res.on('end', () => resolve({ status: res.statusCode, location: res.headers.location }));
    });
    req.on('error', reject);
    req.setTimeout(10_000, () => req.destroy(new Error('timed out')));
  });
}

/**
 * The test user: opens `authUrl` and follows redirects, loopback only. With `stopAt` (a URL
 * prefix, the host's own redirect URI) it stops there and returns the callback URL unvisited.
 */
async function followAuthUrl(authUrl, { stopAt } = {}) {
  let url = new URL(authUrl);
  for (let hop = 0; hop < 10; hop++) {
    if (!isLoopback(url)) throw new Error(`the sign-in left loopback (${url.origin})`);
    const r = await get(url);
    if (r.status < 300 || r.status >= 400 || !r.location) return { status: r.status, url: url.href };
    const next = new URL(r.location, url);
    if (stopAt && next.href.startsWith(stopAt)) return { status: r.status, callbackUrl: next.href };
    if (!isLoopback(next)) return { status: r.status, url: url.href, leftFor: next.origin };
    url = next;
  }
  throw new Error('too many redirects');
}

module.exports = { STACKS, runCli, printConnects, openSession, followAuthUrl };
