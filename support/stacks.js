'use strict';
// The two Claude Code stacks the end-to-end suite runs against, as installed by `npm ci` from the
// devDependencies (package.json pins them exactly):
//
//   seed     Claude Code 2.1.108 (`cli.js` under node), Agent SDK 0.2.104, claude-agent-acp 0.29.2
//   current  Claude Code 2.1.332 (native binary),       Agent SDK 0.3.332, claude-agent-acp 0.101.0
//
// Each stack says how to run its `claude` CLI, which Agent SDK module to import and how to point
// its query() at the stack's Claude Code, which claude-agent-acp to start (and how to point it at
// the same Claude Code: CLAUDE_CODE_EXECUTABLE, honoured by both ACP versions), and the Claude Code
// behaviours the tests meet that differ between the two versions (claude-code-facts.md §2, §3, §7).

const fs = require('node:fs');
const path = require('node:path');

const NODE_MODULES = path.join(__dirname, '..', 'node_modules');
const nm = (...parts) => path.join(NODE_MODULES, ...parts);

/** The suffix of Claude Code's platform packages for this machine (`linux-x64`, `darwin-arm64`, ...). */
function platformSuffix() {
  const arch = process.arch;
  if (process.platform !== 'linux') return `${process.platform}-${arch}`;
  const report = typeof process.report?.getReport === 'function' ? process.report.getReport() : null;
  const musl = report != null && report.header?.glibcVersionRuntime === undefined;
  return `linux-${arch}${musl ? '-musl' : ''}`;
}

/**
 * The native `claude` binary of an installed Claude Code wrapper package (2.1.113+): its
 * optional dependency `@anthropic-ai/claude-code-<platform>` (npm installs it under its real
 * name, beside or inside the aliased wrapper). Used directly, so a `--ignore-scripts` install
 * (no postinstall to copy it over `bin/claude.exe`) runs the same binary.
 */
function nativeClaude(wrapperDir) {
  const pkg = `@anthropic-ai/claude-code-${platformSuffix()}`;
  try {
    const manifest = require.resolve(`${pkg}/package.json`, { paths: [wrapperDir] });
    return path.join(path.dirname(manifest), process.platform === 'win32' ? 'claude.exe' : 'claude');
  } catch {
    return path.join(NODE_MODULES, pkg, 'claude'); // reported as missing by stackProblems()
  }
}

const SEED_CLI = nm('@anthropic-ai', 'claude-code', 'cli.js');
const CURRENT_WRAPPER = nm('claude-code-2.1.332');
const CURRENT_BIN = nativeClaude(CURRENT_WRAPPER);

const DAY_MS = 24 * 3_600_000;

const STACKS = Object.freeze([
  Object.freeze({
    name: 'seed',
    title: 'Claude Code 2.1.108 (cli.js) + Agent SDK 0.2.104 + claude-agent-acp 0.29.2',
    claudeCode: Object.freeze({
      version: '2.1.108',
      packageDir: nm('@anthropic-ai', 'claude-code'),
      executable: SEED_CLI,
      command: process.execPath,
      args: Object.freeze([SEED_CLI]),
    }),
    agentSdk: Object.freeze({
      version: '0.2.104',
      packageDir: nm('@anthropic-ai', 'claude-agent-sdk'),
      module: nm('@anthropic-ai', 'claude-agent-sdk', 'sdk.mjs'),
      // 0.2.x runs a `.js` executable under `executable`.
      queryOptions: Object.freeze({ pathToClaudeCodeExecutable: SEED_CLI, executable: 'node' }),
    }),
    acp: Object.freeze({
      version: '0.29.2',
      packageDir: nm('claude-agent-acp-0.29.2'),
      bin: nm('claude-agent-acp-0.29.2', 'dist', 'index.js'),
      env: Object.freeze({ CLAUDE_CODE_EXECUTABLE: SEED_CLI }),
    }),
    // A 401 met during OAuth discovery also registers a client (POST /register, DCR).
    registersClientOnNeedsAuth: true,
    // `claude mcp list` starts the entry's write and exits without awaiting it (cli.js: the
    // write is chained on a promise nobody awaits, then the CLI exits): under load it may not land.
    listAwaitsNeedsAuthWrite: false,
    // 2.1.108 never removes one entry: not after a successful connect, not after a reconnect.
    removesEntryOnConnect: false,
    // 2.1.108 honours a token-less stub forever.
    tokenlessStubWindowMs: Infinity,
  }),
  Object.freeze({
    name: 'current',
    title: 'Claude Code 2.1.332 (native) + Agent SDK 0.3.332 + claude-agent-acp 0.101.0',
    claudeCode: Object.freeze({
      version: '2.1.332',
      packageDir: CURRENT_WRAPPER,
      executable: CURRENT_BIN,
      command: CURRENT_BIN,
      args: Object.freeze([]),
    }),
    agentSdk: Object.freeze({
      version: '0.3.332',
      packageDir: nm('claude-agent-sdk-0.3.332'),
      module: nm('claude-agent-sdk-0.3.332', 'sdk.mjs'),
      // The SDK would spawn its own platform package's binary (the same 2.1.332 build); pointing
      // it at the stack's binary keeps one Claude Code per stack.
      queryOptions: Object.freeze({ pathToClaudeCodeExecutable: CURRENT_BIN }),
    }),
    acp: Object.freeze({
      version: '0.101.0',
      packageDir: nm('claude-agent-acp-0.101.0'),
      bin: nm('claude-agent-acp-0.101.0', 'dist', 'index.js'),
      env: Object.freeze({ CLAUDE_CODE_EXECUTABLE: CURRENT_BIN }),
    }),
    // Discovery only: no client registration until a sign-in.
    registersClientOnNeedsAuth: false,
    // The entry is on disk when `claude mcp list` exits (seen every time here, also under load).
    listAwaitsNeedsAuthWrite: true,
    // 2.1.120+ removes a server's entry after a successful connect or reconnectMcpServer.
    removesEntryOnConnect: true,
    // 2.1.332 honours a token-less stub for 7 days after discoveryState.tokenlessRejectedAt.
    tokenlessStubWindowMs: 7 * DAY_MS,
  }),
]);

const SEED = STACKS[0];

/** Look a stack up by name; the seed's when `name` is empty. */
function stackByName(name) {
  if (!name) return SEED;
  const s = STACKS.find((x) => x.name === name);
  if (!s) throw new Error(`unknown stack "${name}" (known: ${STACKS.map((x) => x.name).join(', ')})`);
  return s;
}

function installedVersion(packageDir) {
  try {
    return JSON.parse(fs.readFileSync(path.join(packageDir, 'package.json'), 'utf8')).version;
  } catch {
    return null;
  }
}

/**
 * What is wrong with this stack's install, as sentences (empty when it is complete): a missing
 * file or a version other than the pin. The suite fails on these rather than testing something
 * else than it says.
 */
function stackProblems(stack) {
  const problems = [];
  for (const [what, part] of [
    ['Claude Code', stack.claudeCode],
    ['Agent SDK', stack.agentSdk],
    ['claude-agent-acp', stack.acp],
  ]) {
    const v = installedVersion(part.packageDir);
    if (v !== part.version)
      problems.push(`${what}: expected ${part.version} in ${part.packageDir}, found ${v ?? 'nothing'} (run npm ci)`);
  }
  // The package that ships the executable: the wrapper itself for cli.js, the platform package
  // for a native binary. Its version must be the pin too.
  const shipped = installedVersion(path.dirname(stack.claudeCode.executable));
  if (shipped !== stack.claudeCode.version) {
    problems.push(
      `Claude Code executable: expected ${stack.claudeCode.version} beside ${stack.claudeCode.executable}, found ${shipped ?? 'nothing'}`,
    );
  }
  for (const file of [stack.claudeCode.executable, stack.agentSdk.module, stack.acp.bin]) {
    if (!fs.existsSync(file)) problems.push(`missing ${file} (run npm ci)`);
  }
  return problems;
}

module.exports = { STACKS, SEED, stackByName, stackProblems, platformSuffix };
