'use strict';
// What the tests of mcp-needs-auth/sdk (unit/ and e2e/ sdk.test.js and sign-in.test.js) share.

const path = require('node:path');

const addon = require(path.resolve(__dirname, '..', '..'));
const { until } = require('./wait.js');

/** reconnectOnAuthChange options for tests: a temp config dir, in-process events only, short backoff. */
const opts = (dir, extra = {}) => ({ configDir: dir, watch: false, backoffMs: 10, ...extra });

/** The messages of this package's process warnings until the test ends. */
function collectWarnings(t) {
  const messages = [];
  const onWarn = (w) => {
    if (w.name === 'McpNeedsAuthWarning') messages.push(w.message);
  };
  process.on('warning', onWarn);
  t.after(() => process.off('warning', onWarn));
  return messages;
}

/** Records every onAuthChanged subscription signIn makes, to check none is left open. */
function spySubscriptions(t) {
  const subs = [];
  const orig = addon.onAuthChanged;
  addon.onAuthChanged = function spied(...args) {
    const sub = orig.apply(this, args);
    subs.push(sub);
    return sub;
  };
  t.after(() => {
    addon.onAuthChanged = orig;
  });
  return subs;
}

module.exports = { opts, collectWarnings, until, spySubscriptions };
