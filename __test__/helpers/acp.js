'use strict';
// A minimal ACP client for the end-to-end tests: starts a stack's real claude-agent-acp
// (optionally under `node -r <repo>/register.js`) speaking ACP (newline-delimited JSON-RPC 2.0)
// over stdio, and sends it requests. Enough for `initialize` and `session/new`; requests the
// agent sends back (permissions, file access) are refused, as no prompt is ever sent.

const path = require('node:path');
const { spawn } = require('node:child_process');

const REGISTER = path.join(__dirname, '..', '..', 'register.js');

function lineSplitter(onLine) {
  let buf = '';
  return (d) => {
    buf += d;
    for (let i = buf.indexOf('\n'); i >= 0; i = buf.indexOf('\n')) {
      onLine(buf.slice(0, i));
      buf = buf.slice(i + 1);
    }
  };
}

/**
 * Starts `node [-r register.js] <stack.acp.bin>` with `env` plus the stack's ACP env (which points
 * it at the stack's Claude Code). As root, IS_SANDBOX=1: both ACP versions ask Claude Code to
 * allow `--dangerously-skip-permissions` only then, and Claude Code exits at once when root is
 * offered it outside a sandbox. Returns { child, stderr, request(method, params), stop() }.
 */
function startAcp(stack, env, { preload = false, timeoutMs = 60_000 } = {}) {
  const isRoot = typeof process.getuid === 'function' && process.getuid() === 0;
  const args = [...(preload ? ['-r', REGISTER] : []), stack.acp.bin];
  const child = spawn(process.execPath, args, {
    env: { ...env, ...stack.acp.env, ...(isRoot ? { IS_SANDBOX: '1' } : {}) },
    cwd: env.HOME,
    stdio: ['pipe', 'pipe', 'pipe'],
    detached: process.platform !== 'win32', // its own group: stop() also ends its Claude Code children
  });
  const stderr = [];
  const notifications = [];
  const pending = new Map();
  let nextId = 0;
  const exited = new Promise((resolve) =>
    child.on('close', (code, signal) => {
      for (const { reject } of pending.values()) reject(new Error(`claude-agent-acp exited (${code ?? signal})`));
      pending.clear();
      resolve({ code, signal });
    }),
  );
  const send = (msg) => {
    if (child.stdin.writable) child.stdin.write(`${JSON.stringify(msg)}\n`);
  };

  child.stderr.on(
    'data',
    lineSplitter((l) => stderr.push(l)),
  );
  child.stdout.on(
    'data',
    lineSplitter((line) => {
      let msg;
      try {
        msg = JSON.parse(line);
      } catch {
        return;
      }
      if (msg.method && msg.id !== undefined) {
        send({
          jsonrpc: '2.0',
          id: msg.id,
          error: { code: -32601, message: `not supported by the test client: ${msg.method}` },
        });
      } else if (msg.method) {
        notifications.push(msg);
      } else if (pending.has(msg.id)) {
        const { resolve, reject } = pending.get(msg.id);
        pending.delete(msg.id);
        if (msg.error)
          reject(
            Object.assign(new Error(`ACP error ${msg.error.code}: ${msg.error.message}`), { data: msg.error.data }),
          );
        else resolve(msg.result);
      }
    }),
  );

  function request(method, params) {
    const id = ++nextId;
    return new Promise((resolve, reject) => {
      const timer = setTimeout(() => {
        pending.delete(id);
        reject(new Error(`ACP ${method}: no answer within ${timeoutMs} ms\nstderr:\n${stderr.slice(-20).join('\n')}`));
      }, timeoutMs);
      pending.set(id, {
        resolve: (v) => {
          clearTimeout(timer);
          resolve(v);
        },
        reject: (e) => {
          clearTimeout(timer);
          reject(e);
        },
      });
      send({ jsonrpc: '2.0', id, method, params });
    });
  }

  const killGroup = () => {
    try {
      if (process.platform !== 'win32') process.kill(-child.pid, 'SIGKILL');
      else child.kill('SIGKILL');
    } catch {
      /* gone */
    }
  };

  /** Closes stdin (the agent then disposes its sessions and exits); SIGKILLs the group after 5 s. */
  async function stop() {
    if (child.exitCode === null && child.signalCode === null) {
      child.stdin.end();
      const timer = setTimeout(killGroup, 5000);
      await exited;
      clearTimeout(timer);
    }
    killGroup(); // Claude Code children left behind, if any
    return exited;
  }

  return { child, stderr, notifications, exited, request, stop };
}

module.exports = { startAcp };
