'use strict';
// A live Agent SDK session of a stack (support/stacks.js) with no model call, for the tests, the
// benchmark and the demo; and the one way they all stop it.
//
// Why Claude Code is spawned here: the session's close() resolves before its Claude Code child has
// exited, and 2.1.108 still writes its MCP logs under $HOME/.cache after that, which brings back a
// temp HOME removed as soon as close() resolved. So openSession spawns Claude Code as the SDKs do by
// default (Agent SDK 0.2.104's spawnLocalProcess options; the SDK's `spawnClaudeCodeProcess` option,
// honoured by 0.2.x and 0.3.x), keeps the child, and close() resolves only once it has exited.

const { spawn } = require('node:child_process');
const { pathToFileURL } = require('node:url');

const delay = (ms) => new Promise((r) => setTimeout(r, ms));

/** Resolves `p`, or `fallback` after `ms`. */
function within(p, ms, fallback) {
  let t;
  return Promise.race([p, new Promise((r) => (t = setTimeout(r, ms, fallback)))]).finally(() => clearTimeout(t));
}

const exited = (child) => child.exitCode !== null || child.signalCode !== null;

/** Waits for a child to exit: `graceMs`, then SIGKILL and 2 s more. Resolves whether it exited. */
async function reap(child, graceMs = 5_000) {
  if (exited(child)) return true;
  const gone = new Promise((r) => child.once('exit', r));
  if ((await within(gone, graceMs, 'late')) !== 'late') return true;
  try {
    child.kill('SIGKILL');
  } catch {
    /* gone meanwhile */
  }
  await within(gone, 2_000, null);
  return exited(child);
}

/**
 * A `spawnClaudeCodeProcess` for the SDK's options that keeps every child it starts:
 * `{ spawnClaudeCodeProcess, children, reapAll() }`. reapAll() resolves once all have exited
 * (each bounded by reap()), true when all did.
 */
function claudeCodeSpawner() {
  const children = [];
  const spawnClaudeCodeProcess = (o) => {
    // Agent SDK 0.2.104's own spawn options (0.3.x pipes stderr only to keep its tail).
    const child = spawn(o.command, o.args, {
      cwd: o.cwd,
      env: o.env,
      signal: o.signal,
      stdio: ['pipe', 'pipe', 'ignore'],
      windowsHide: true,
    });
    child.on('error', () => {}); // an abort kills it; the SDK reports what matters
    children.push(child);
    return child;
  };
  return {
    spawnClaudeCodeProcess,
    children,
    async reapAll() {
      const done = await Promise.all(children.map((c) => reap(c)));
      return done.every(Boolean);
    },
  };
}

/**
 * A live SDK session of `stack` in `env` (its HOME is the cwd) with no model call: the prompt
 * stream stays open until endPrompt() or close(). `extraOptions` go to query() (not
 * `spawnClaudeCodeProcess`: the session's own spawner is the point). Returns
 * `{ q, children, status(name), settled(name), prompt(text), endPrompt(), close() }`.
 * prompt(text) sends a user message (its turn fails at once on the closed model port, offline,
 * and the session lives on: the hooks that fire before a turn, UserPromptSubmit, run).
 */
async function openSession(stack, env, extraOptions = {}) {
  const { query } = await import(pathToFileURL(stack.agentSdk.module).href);
  const spawner = claudeCodeSpawner();
  let ended = false;
  const queued = [];
  let wake = () => {};
  let release;
  const hold = new Promise((r) => {
    release = () => {
      ended = true;
      r();
      wake();
    };
  });
  async function* input() {
    while (!ended) {
      if (queued.length > 0) {
        yield {
          type: 'user',
          message: { role: 'user', content: queued.shift() },
          parent_tool_use_id: null,
          session_id: '',
        };
        continue;
      }
      await Promise.race([hold, new Promise((r) => (wake = r))]);
    }
  }
  const options = { env, cwd: env.HOME, ...stack.agentSdk.queryOptions, ...extraOptions };
  // The stack SDK's default delivery of the servers, named (0.3.x warns otherwise): 'initialize'
  // on 0.3.334 (over stdin), none on 0.2.104 (argv, its only way).
  if (options.mcpServers && stack.agentSdk.mcpServersDelivery && options.mcpServersDelivery === undefined) {
    options.mcpServersDelivery = stack.agentSdk.mcpServersDelivery;
  }
  options.spawnClaudeCodeProcess = spawner.spawnClaudeCodeProcess;
  const q = query({ prompt: input(), options });
  const drained = (async () => {
    try {
      for await (const _ of q) {
        /* drain */
      }
    } catch {
      /* offline: the model call fails */
    }
  })();
  let closing = null;
  return {
    q,
    children: spawner.children,
    /** Sends a user message on the prompt stream. */
    prompt(text = 'hi') {
      queued.push(text);
      wake();
    },
    async status(name) {
      return (await q.mcpServerStatus()).find((s) => s.name === name);
    },
    /** Polls until `name` leaves 'pending' (or `timeoutMs` passes). */
    async settled(name, timeoutMs = 20_000) {
      const end = Date.now() + timeoutMs;
      let s = await this.status(name);
      while (s && s.status === 'pending' && Date.now() < end) {
        await delay(200);
        s = await this.status(name);
      }
      return s;
    },
    /** Ends the prompt stream (the session then ends by itself); resolves once drained (10 s at most). */
    async endPrompt() {
      release();
      await within(drained, 10_000, null);
    },
    /**
     * Ends the session and resolves once its Claude Code has exited (SIGKILLed after 5 s): only
     * then may its HOME be removed. Resolves whether it exited. Idempotent.
     */
    close() {
      if (!closing) {
        closing = (async () => {
          release();
          try {
            q.close();
          } catch {
            /* closed */
          }
          await within(drained, 10_000, null);
          return spawner.reapAll();
        })();
      }
      return closing;
    },
  };
}

module.exports = { openSession, claudeCodeSpawner, reap, within };
