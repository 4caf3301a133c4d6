'use strict';
// The sign-in tests' own pieces: a live SDK session of a stack (support/stacks.js) with no model
// call, and a test "user" who follows an authUrl with plain HTTP. Running the stacks' `claude`
// CLI is support/claude.js's (runClaude, runPrint).

const http = require('node:http');

const delay = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * A live SDK session of `stack` with no model call: the prompt stream stays open until close().
 */
async function openSession(stack, env, extraOptions = {}) {
  const { query } = await import(stack.agentSdk.module);
  let release;
  const hold = new Promise((r) => {
    release = r;
  });
  // biome-ignore lint/correctness/useYield: the prompt stream stays open without a message
  async function* input() {
    await hold;
  }
  const q = query({
    prompt: input(),
    options: { env, cwd: env.HOME, ...stack.agentSdk.queryOptions, ...extraOptions },
  });
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

module.exports = { openSession, followAuthUrl };
