'use strict';
// The one bounded wait of the test suites.

const assert = require('node:assert/strict');

const delay = (ms) => new Promise((r) => setTimeout(r, ms));

/**
 * Polls `pred` (sync or async) every `stepMs` until it gives a truthy value, and returns that
 * value; fails the test, naming `what`, once `timeoutMs` have passed.
 */
async function until(pred, { timeoutMs = 5000, stepMs = 10, what = 'condition' } = {}) {
  const end = Date.now() + timeoutMs;
  for (;;) {
    const hit = await pred();
    if (hit) return hit;
    if (Date.now() >= end) assert.fail(`timed out after ${timeoutMs} ms waiting for ${what}`);
    await delay(stepMs);
  }
}

module.exports = { until };
