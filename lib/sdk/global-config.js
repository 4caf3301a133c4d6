'use strict';
// Claude Code's global config (`.claude.json`) for a config dir, and the account identity it
// keeps there (`oauthAccount.accountUuid` / `organizationUuid`): what Claude Code compares to
// tell an account or organization change. Read-only, and only those two ids are kept (the file
// holds no tokens; nothing else of it is looked at).
//
// Where it lives, as Claude Code 2.1.108 and 2.1.332+ decide it: `<configDir>/.config.json` when
// that (legacy) file exists; else `.claude.json` in `CLAUDE_CONFIG_DIR` when that is set, else in
// the home directory (so `~/.claude.json`, beside `~/.claude/`, for the default config dir).
// (`CLAUDE_CODE_CUSTOM_OAUTH_URL` adds a `-custom-oauth` suffix to the name; not followed here.)

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');

const MAX_BYTES = 64 * 1024 * 1024;

/**
 * The global config file Claude Code uses with the config dir `configDir`. `explicit`: the config
 * dir is set for Claude Code through CLAUDE_CONFIG_DIR (an `options.configDir`, or that env var);
 * otherwise it is the default `~/.claude`.
 */
function globalConfigPath(configDir, explicit) {
  const legacy = path.join(configDir, '.config.json');
  if (fs.existsSync(legacy)) return legacy;
  return path.join(explicit ? configDir : os.homedir(), '.claude.json');
}

/**
 * `acct:<accountUuid>|org:<organizationUuid>` of the file at `file` (Claude Code's own form), or
 * null when it has no account (missing, unreadable, not JSON, no `oauthAccount`).
 */
function accountIdentity(file) {
  let doc;
  try {
    // Only a regular file of a sane size is read: a FIFO there would block the host's thread.
    const st = fs.statSync(file);
    if (!st.isFile() || st.size > MAX_BYTES) return null;
    doc = JSON.parse(fs.readFileSync(file, 'utf8'));
  } catch {
    return null;
  }
  const a = doc && typeof doc === 'object' ? doc.oauthAccount : null;
  if (!a || typeof a !== 'object') return null;
  const acct = typeof a.accountUuid === 'string' ? a.accountUuid : '';
  const org = typeof a.organizationUuid === 'string' ? a.organizationUuid : '';
  if (!acct && !org) return null;
  return `acct:${acct}|org:${org}`;
}

/** What changes when the file does (null: none there), to skip reading an unchanged file. */
function fileStamp(file) {
  try {
    const st = fs.statSync(file);
    return `${st.ino}:${st.size}:${st.mtimeMs}`;
  } catch {
    return null;
  }
}

module.exports = { globalConfigPath, accountIdentity, fileStamp };
