'use strict';
// Write `<configDir>/.credentials.json` the way Claude Code does after an MCP
// OAuth sign-in (claude-code-facts.md section 4). Test-only: tokens are fake.

const fs = require('node:fs');
const path = require('node:path');
const crypto = require('node:crypto');

const CREDENTIALS_FILE = '.credentials.json';

function credentialsPath(configDir) {
  return path.join(configDir, CREDENTIALS_FILE);
}

// serverName + "|" + sha256(JSON.stringify({type, url, headers: headers || {}})).hex[0..16]
// Key order matters: exactly type, url, headers.
function credentialKey(serverName, { type = 'http', url, headers } = {}) {
  if (typeof url !== 'string') throw new TypeError('credentialKey: url is required');
  const digest = crypto
    .createHash('sha256')
    .update(JSON.stringify({ type, url, headers: headers || {} }))
    .digest('hex')
    .substring(0, 16);
  return `${serverName}|${digest}`;
}

// Returns the parsed document, or {} when the file is missing or not JSON.
function readCredentials(configDir) {
  try {
    const parsed = JSON.parse(fs.readFileSync(credentialsPath(configDir), 'utf8'));
    return parsed && typeof parsed === 'object' && !Array.isArray(parsed) ? parsed : {};
  } catch {
    return {};
  }
}

function writeDocument(configDir, doc, style) {
  const file = credentialsPath(configDir);
  fs.mkdirSync(configDir, { recursive: true });
  const data = JSON.stringify(doc);
  if (style === 'rename') {
    // 2.1.332: write a sibling temp file then rename over the target.
    const tmp = `${file}.tmp.${crypto.randomBytes(4).toString('hex')}`;
    fs.writeFileSync(tmp, data, { encoding: 'utf8', mode: 0o600 });
    fs.renameSync(tmp, file);
  } else if (style === 'in-place' || style === undefined) {
    // 2.1.108: writeFileSync in place, then chmod 0600 (not atomic).
    fs.writeFileSync(file, data, { encoding: 'utf8' });
    fs.chmodSync(file, 0o600);
  } else {
    throw new TypeError(`unknown style ${JSON.stringify(style)} (want 'in-place' or 'rename')`);
  }
  return file;
}

function baseUrlOf(url) {
  const u = new URL(url);
  return `${u.protocol}//${u.host}`;
}

/**
 * Read-modify-write `.credentials.json`, setting mcpOAuth[key] for serverName/url
 * and keeping every other key (claudeAiOauth, other mcpOAuth entries, ...).
 * opts: { token, refreshToken, style: 'in-place'|'rename', expiresInSec = 3600,
 *         expiresAt (overrides expiresInSec), type = 'http', headers, clientId, scope }
 * Returns { key, file, entry }.
 */
function writeToken(configDir, serverName, url, opts = {}) {
  const {
    token = 'test-access-token',
    refreshToken = `refresh-${crypto.randomBytes(6).toString('hex')}`,
    style = 'in-place',
    expiresInSec = 3600,
    expiresAt,
    type = 'http',
    headers,
    clientId = 'test-client-id',
    scope = 'mcp',
  } = opts;
  const key = credentialKey(serverName, { type, url, headers });
  const base = baseUrlOf(url);
  const doc = readCredentials(configDir);
  const mcpOAuth = doc.mcpOAuth && typeof doc.mcpOAuth === 'object' ? doc.mcpOAuth : {};
  const prev = mcpOAuth[key] && typeof mcpOAuth[key] === 'object' ? mcpOAuth[key] : {};
  const entry = {
    ...prev,
    serverName,
    serverUrl: url,
    accessToken: token,
    refreshToken,
    expiresAt: expiresAt !== undefined ? expiresAt : Date.now() + expiresInSec * 1000,
    scope,
    clientId: prev.clientId || clientId,
    discoveryState: {
      ...(prev.discoveryState || {}),
      authorizationServerUrl: base,
      resourceMetadataUrl: `${base}/.well-known/oauth-protected-resource/mcp`,
      oauthMetadataFound: true,
    },
  };
  doc.mcpOAuth = { ...mcpOAuth, [key]: entry };
  const file = writeDocument(configDir, doc, style);
  return { key, file, entry };
}

function writeFreshToken(configDir, serverName, url, opts = {}) {
  return writeToken(configDir, serverName, url, opts);
}

// Same as writeFreshToken but expiresAt is in the past (default: 1 h ago).
function writeExpiredToken(configDir, serverName, url, opts = {}) {
  const agoSec = opts.expiredSecAgo ?? 3600;
  return writeToken(configDir, serverName, url, { ...opts, expiresAt: Date.now() - agoSec * 1000 });
}

module.exports = {
  CREDENTIALS_FILE,
  credentialsPath,
  credentialKey,
  readCredentials,
  writeFreshToken,
  writeExpiredToken,
  writeToken,
};
