'use strict';
// The sign-in tests' own piece: a test "user" who follows an authUrl with plain HTTP. A live SDK
// session of a stack is support/session.js's (openSession); running the stacks' `claude` CLI is
// support/claude.js's (runClaude, runPrint).

const http = require('node:http');

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

module.exports = { followAuthUrl };
