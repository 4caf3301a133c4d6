'use strict';
// Writes the needs-auth cache exactly the way Claude Code 2.1.108 does, for the tests and the
// benchmark that race it: read-modify-write of the whole object, bad JSON reads as {}, mkdir -p,
// then a plain writeFileSync (no lock, no temp file, no fsync; a reader can catch it half done).
const fs = require('node:fs');
const path = require('node:path');

/**
 * Applies `mutate(doc)` to the cache file the Claude Code way. Returns whether the read it
 * started from did not parse (torn by another writer, or corrupt).
 */
function changeCacheLikeClaudeCode(file, mutate) {
  let doc;
  let torn = false;
  try {
    doc = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch (e) {
    if (e.code !== 'ENOENT') torn = true;
    doc = {};
  }
  if (!doc || typeof doc !== 'object' || Array.isArray(doc)) doc = {};
  mutate(doc);
  fs.mkdirSync(path.dirname(file), { recursive: true });
  fs.writeFileSync(file, JSON.stringify(doc));
  return torn;
}

module.exports = { changeCacheLikeClaudeCode };
