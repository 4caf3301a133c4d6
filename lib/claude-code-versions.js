'use strict';
// The Claude Code versions this package's rules were read from, in one place, and the one note
// when a session runs a newer one. A leaf module.
//
// The needs-auth rules (crates/core/src/server_rules.rs) were read off 2.1.332's native binary;
// 2.1.334's judgement function was compared with it (names stripped) and is the same. 2.1.108's
// readable cli.js is the other end of the range the end-to-end tests run.

const { debug } = require('./log.js');

/** The newest Claude Code whose needs-auth judgement was checked. */
const NEWEST_CHECKED = '2.1.334';

/** `a` vs `b` as dotted version numbers (pre-release tags ignored): -1, 0 or 1; null if unreadable. */
function compareVersions(a, b) {
  const parse = (v) => (typeof v === 'string' ? /^(\d+)\.(\d+)\.(\d+)/.exec(v.trim()) : null);
  const x = parse(a);
  const y = parse(b);
  if (!x || !y) return null;
  for (let i = 1; i <= 3; i++) {
    const d = Number(x[i]) - Number(y[i]);
    if (d !== 0) return d < 0 ? -1 : 1;
  }
  return 0;
}

const told = new Set();

/**
 * A session reported running Claude Code `version`: when it is newer than NEWEST_CHECKED, says so
 * once per version (a debug line); never throws, never fails anything. Returns whether it was newer.
 */
function noteClaudeCodeVersion(version, where) {
  if (compareVersions(version, NEWEST_CHECKED) !== 1) return false;
  if (!told.has(version)) {
    told.add(version);
    debug(
      `${where}: the session runs Claude Code ${version}, newer than ${NEWEST_CHECKED}, the newest whose needs-auth rules this package checked; the ${NEWEST_CHECKED} rules are applied`,
    );
  }
  return true;
}

module.exports = { NEWEST_CHECKED, compareVersions, noteClaudeCodeVersion };
