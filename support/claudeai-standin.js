'use strict';
// A loopback stand-in for claude.ai's connector list (`GET api.anthropic.com/v1/mcp_servers`) and
// its MCP proxy (`mcp-proxy.anthropic.com/v1/mcp/<connector id>`), for end-to-end tests of the
// real Claude Code's claude.ai connectors (`claudeai-proxy` servers) without any network.
//
// Claude Code hard-codes both URLs (its OAuth config object is always "prod"; no setting or env
// var moves them: ANTHROPIC_BASE_URL moves inference only, CLAUDE_CODE_CUSTOM_OAUTH_URL accepts
// three allow-listed hosts and leaves the proxy URL alone). Both builds honour HTTPS_PROXY and
// NODE_EXTRA_CA_CERTS, so this is an HTTP CONNECT proxy on 127.0.0.1 that terminates TLS itself
// (a throw-away CA made with openssl, in the stand-in's own temp dir) for an allow-list of
// Anthropic hosts and answers them here. Every other CONNECT or proxied request is refused (403):
// nothing is ever forwarded.
//
//   const standin = await startStandin({ connectors: { Figma: 'mcpsrv_01Figma' }, mode: '401code' });
//   env = { ...env, ...standin.env() };         // HTTPS_PROXY, NODE_EXTRA_CA_CERTS, ...
//   standin.setMode('ok');                      // what the proxy answers (all or one connector)
//   standin.proxyPosts()                        // the proxy POSTs seen so far
//   await standin.stop();                       // closes every socket, removes its dir
//
// Proxy answers (`mode`): `401code` (401 + `X-Mcp-Error-Code`: the connector's authorization on
// claude.ai lapsed), `401` (bare: the account token rejected), `403`, `ok` (a tiny MCP server:
// initialize, tools/list, ping). `GET /api/oauth/profile` answers the account and organization
// (Claude Code copies them into `oauthAccount` at start-up); `POST /v1/messages` answers 400 (no
// model here); an account token refresh 404s unless `token: 'ok'`.

const fs = require('node:fs');
const http = require('node:http');
const https = require('node:https');
const os = require('node:os');
const path = require('node:path');
const { execFileSync } = require('node:child_process');

const HOSTS = Object.freeze([
  'api.anthropic.com',
  'mcp-proxy.anthropic.com',
  'claude.ai',
  'platform.claude.com',
  'console.anthropic.com',
  'statsig.anthropic.com',
]);
const DEFAULT_ACCOUNT = '11111111-1111-4111-8111-111111111111';
const DEFAULT_ORG = '22222222-2222-4222-8222-222222222222';
const OPENSSL_TIMEOUT_MS = 30_000;

/** A throw-away CA and a leaf for HOSTS, made with openssl in `dir`. */
function makeCerts(dir) {
  const run = (args) => execFileSync('openssl', args, { cwd: dir, stdio: 'pipe', timeout: OPENSSL_TIMEOUT_MS });
  run([
    'req',
    '-x509',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'ca.key',
    '-out',
    'ca.pem',
    '-days',
    '2',
    '-subj',
    '/CN=claudeai-standin test CA',
    '-addext',
    'basicConstraints=critical,CA:TRUE',
    '-addext',
    'keyUsage=critical,keyCertSign,cRLSign',
  ]);
  run([
    'req',
    '-newkey',
    'rsa:2048',
    '-nodes',
    '-keyout',
    'leaf.key',
    '-out',
    'leaf.csr',
    '-subj',
    '/CN=api.anthropic.com',
  ]);
  fs.writeFileSync(
    path.join(dir, 'leaf.ext'),
    'basicConstraints=CA:FALSE\nkeyUsage=digitalSignature,keyEncipherment\nextendedKeyUsage=serverAuth\n' +
      `subjectAltName=${HOSTS.map((h) => `DNS:${h}`).join(',')}\n`,
  );
  run([
    'x509',
    '-req',
    '-in',
    'leaf.csr',
    '-CA',
    'ca.pem',
    '-CAkey',
    'ca.key',
    '-CAcreateserial',
    '-out',
    'leaf.pem',
    '-days',
    '2',
    '-extfile',
    'leaf.ext',
  ]);
  return {
    ca: path.join(dir, 'ca.pem'),
    key: fs.readFileSync(path.join(dir, 'leaf.key')),
    cert: fs.readFileSync(path.join(dir, 'leaf.pem')),
  };
}

function json(res, code, body, extra = {}) {
  res.writeHead(code, { 'content-type': 'application/json', ...extra });
  res.end(JSON.stringify(body));
}

/** The answers of a minimal MCP server to `body` (one JSON-RPC message or a batch). */
function mcpAnswer(res, id, body) {
  let msg;
  try {
    msg = JSON.parse(body || 'null');
  } catch {
    msg = null;
  }
  const out = [];
  for (const m of Array.isArray(msg) ? msg : [msg]) {
    if (!m || m.id === undefined) continue; // a notification
    if (m.method === 'initialize') {
      const protocolVersion = m.params?.protocolVersion ?? '2025-06-18';
      const serverInfo = { name: `standin-${id}`, version: '1.0.0' };
      out.push({ jsonrpc: '2.0', id: m.id, result: { protocolVersion, capabilities: { tools: {} }, serverInfo } });
    } else if (m.method === 'tools/list') {
      const tool = {
        name: 'ping_standin',
        description: 'stand-in tool',
        inputSchema: { type: 'object', properties: {} },
      };
      out.push({ jsonrpc: '2.0', id: m.id, result: { tools: [tool] } });
    } else if (m.method === 'ping') {
      out.push({ jsonrpc: '2.0', id: m.id, result: {} });
    } else {
      out.push({ jsonrpc: '2.0', id: m.id, error: { code: -32601, message: 'Method not found' } });
    }
  }
  if (out.length === 0) {
    res.writeHead(202);
    return res.end();
  }
  json(res, 200, Array.isArray(msg) ? out : out[0], { 'mcp-session-id': 'standin-session' });
}

/**
 * Starts the stand-in. `options`: `connectors` ({ displayName: connectorId }, default
 * `{ Figma: 'mcpsrv_01FigmaStandin' }`), `mode` (default '401code'), `account`, `org`,
 * `token` ('404' | 'ok'). Resolves once it listens.
 */
async function startStandin(options = {}) {
  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'claudeai-standin-'));
  const certs = makeCerts(dir);
  const connectors = Object.entries(options.connectors ?? { Figma: 'mcpsrv_01FigmaStandin' }).map(([name, id]) => ({
    name,
    id,
  }));
  const state = {
    mode: options.mode ?? '401code',
    perId: new Map(),
    account: options.account ?? DEFAULT_ACCOUNT,
    org: options.org ?? DEFAULT_ORG,
    token: options.token ?? '404',
    tokenSeq: 0,
  };
  const requests = []; // { host, method, path, status } (no header, no body: the bearer is a token)

  function handle(req, res, body, host) {
    const u = new URL(req.url, `https://${host}`);
    if (host === 'api.anthropic.com' && u.pathname === '/v1/mcp_servers') {
      const data = connectors.map((c) => ({
        type: 'mcp_server',
        id: c.id,
        display_name: c.name,
        name: c.name,
        url: `https://mcp.${c.name.toLowerCase()}.example/mcp`,
        created_at: '2026-01-01T00:00:00Z',
      }));
      return json(res, 200, { data, has_more: false, next_page: null });
    }
    const proxied = host === 'mcp-proxy.anthropic.com' && /^\/v1\/mcp\/([^/]+)$/.exec(u.pathname);
    if (proxied) {
      const id = proxied[1];
      const mode = state.perId.get(id) ?? state.mode;
      if (req.method === 'GET') {
        res.writeHead(405);
        return res.end();
      }
      if (req.method === 'DELETE') {
        res.writeHead(200);
        return res.end();
      }
      if (mode === '401')
        return json(res, 401, { error: { type: 'authentication_error', message: 'bearer rejected' } });
      if (mode === '401code') {
        return json(
          res,
          401,
          { error: { type: 'authentication_error', message: 'connector needs auth' } },
          { 'x-mcp-error-code': 'connector_auth_required', 'www-authenticate': 'Bearer' },
        );
      }
      if (mode === '403')
        return json(res, 403, { error: { type: 'permission_error', message: 'connector forbidden' } });
      return mcpAnswer(res, id, body);
    }
    if (host === 'api.anthropic.com' && u.pathname === '/api/oauth/profile') {
      return json(res, 200, {
        account: { uuid: state.account, email: 'standin@example.com', display_name: 'Standin', has_claude_max: true },
        organization: { uuid: state.org, name: 'Standin Org', organization_type: 'claude_max' },
      });
    }
    if (host === 'platform.claude.com' && u.pathname === '/v1/oauth/token' && state.token === 'ok') {
      state.tokenSeq++;
      return json(res, 200, {
        access_token: `sk-ant-oat01-standin-refreshed-${state.tokenSeq}`,
        refresh_token: `sk-ant-ort01-standin-${state.tokenSeq}`,
        token_type: 'Bearer',
        expires_in: 3600,
        scope: 'user:inference user:profile user:sessions:claude_code user:mcp_servers',
      });
    }
    if (u.pathname.startsWith('/v1/messages')) {
      return json(res, 400, { type: 'error', error: { type: 'invalid_request_error', message: 'stand-in: no model' } });
    }
    json(res, 404, { type: 'error', error: { type: 'not_found_error', message: 'stand-in: not served' } });
  }

  const sockets = new Set();
  const track = (s) => {
    sockets.add(s);
    s.on('close', () => sockets.delete(s));
  };
  // One https server per host: the handler knows the CONNECT target without SNI or Host.
  const inner = new Map();
  for (const host of HOSTS) {
    const server = https.createServer({ key: certs.key, cert: certs.cert }, (req, res) => {
      const chunks = [];
      req.on('data', (c) => chunks.push(c));
      req.on('end', () => {
        const record = { host, method: req.method, path: req.url.split('?')[0] };
        res.on('finish', () => requests.push({ ...record, status: res.statusCode }));
        try {
          handle(req, res, Buffer.concat(chunks).toString('utf8'), host);
        } catch {
          res.writeHead(500);
          res.end();
        }
      });
    });
    server.on('secureConnection', track);
    inner.set(host, server);
  }
  const proxy = http.createServer((req, res) => {
    requests.push({ refused: 'plain-http', method: req.method });
    res.writeHead(403);
    res.end('stand-in: plain HTTP proxying refused');
  });
  proxy.on('connection', track);
  proxy.on('connect', (req, sock, head) => {
    const [host, port] = req.url.split(':');
    if (!inner.has(host) || (port && port !== '443')) {
      requests.push({ refused: 'connect', target: req.url });
      sock.end('HTTP/1.1 403 Forbidden\r\n\r\n');
      return;
    }
    sock.write('HTTP/1.1 200 Connection Established\r\n\r\n');
    if (head?.length) sock.unshift(head);
    inner.get(host).emit('connection', sock);
  });
  await new Promise((resolve, reject) => {
    proxy.once('error', reject);
    proxy.listen(0, '127.0.0.1', resolve);
  });
  const port = proxy.address().port;
  const url = `http://127.0.0.1:${port}`;
  let stopped = null;

  return {
    port,
    ca: certs.ca,
    connectors,
    /** The env a Claude Code child needs to reach the stand-in (and nothing else). */
    env() {
      return {
        HTTPS_PROXY: url,
        HTTP_PROXY: url,
        https_proxy: url,
        http_proxy: url,
        NO_PROXY: '127.0.0.1,localhost',
        no_proxy: '127.0.0.1,localhost',
        NODE_EXTRA_CA_CERTS: certs.ca,
      };
    },
    /** What the proxy answers: for every connector, or only the one with `id`. */
    setMode(mode, id) {
      if (id) state.perId.set(id, mode);
      else {
        state.mode = mode;
        state.perId.clear();
      }
    },
    /** What the profile (and so Claude Code's `oauthAccount`) says from now on. */
    setAccount({ account, org } = {}) {
      if (account) state.account = account;
      if (org) state.org = org;
    },
    get account() {
      return { accountUuid: state.account, organizationUuid: state.org };
    },
    /** Every request answered so far: `{ host, method, path, status }`. */
    requests() {
      return requests.slice();
    },
    /** The POSTs to the MCP proxy so far (a connector dial makes at least one). */
    proxyPosts() {
      return requests.filter((r) => r.host === 'mcp-proxy.anthropic.com' && r.method === 'POST').length;
    },
    /** Refused CONNECTs and plain proxy requests (a test asserts none). */
    refused() {
      return requests.filter((r) => r.refused);
    },
    /** Stops listening, ends every socket, removes its dir. Idempotent. */
    stop() {
      if (!stopped) {
        stopped = new Promise((resolve) => {
          proxy.close(() => resolve());
          for (const s of sockets) s.destroy();
          for (const server of inner.values()) server.close();
        }).then(() => fs.rmSync(dir, { recursive: true, force: true }));
      }
      return stopped;
    },
  };
}

/**
 * Account credentials as Claude Code keeps them after a claude.ai login (fake tokens), with the
 * scope connectors need: `claudeAiOauth` in `<configDir>/.credentials.json`. For tests only.
 */
function accountCredentials(token, expiresAt) {
  return {
    claudeAiOauth: {
      accessToken: token,
      refreshToken: `${token}-refresh`,
      expiresAt,
      scopes: ['user:inference', 'user:profile', 'user:sessions:claude_code', 'user:mcp_servers'],
      subscriptionType: 'max',
    },
  };
}

module.exports = { startStandin, accountCredentials, HOSTS, DEFAULT_ACCOUNT, DEFAULT_ORG };
