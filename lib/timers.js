'use strict';
// Timers of the package's JavaScript: none of them ever keeps the host process alive (a host
// must be able to exit while a reconnect backs off or a sign-in waits). A leaf module.

/** `setTimeout(fn, ms, ...args)`, unref'd. Returns the timer (for clearTimeout). */
function unrefTimeout(fn, ms, ...args) {
  const t = setTimeout(fn, ms, ...args);
  if (t && typeof t.unref === 'function') t.unref();
  return t;
}

/** Resolves after `ms`, on an unref'd timer. */
function sleep(ms) {
  return new Promise((resolve) => {
    unrefTimeout(resolve, ms);
  });
}

module.exports = { unrefTimeout, sleep };
