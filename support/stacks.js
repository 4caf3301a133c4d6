'use strict';
// The two Claude Code stacks the end-to-end suite runs against. Each is pinned exactly by its own
// lockfile (support/stacks/<name>/) and fetched on first use into a cache outside the repo
// (support/stack-install.js; `await ensureStack(stack)` before using one):
//
//   seed     Claude Code 2.1.108 (`cli.js` under node), Agent SDK 0.2.104, claude-agent-acp 0.29.2
//   current  Claude Code 2.1.332 (npm CLI, native) for `claude mcp` / `claude -p`;
//            Agent SDK 0.3.334, whose sessions run its own Claude Code 2.1.334 (native, from
//            @anthropic-ai/claude-agent-sdk-<platform>); claude-agent-acp 0.101.0 on that 2.1.334
//
// Each stack says how to run its `claude` CLI, which Agent SDK module to import and how to point
// its query() at the stack's session Claude Code, which claude-agent-acp to start (and how to
// point it at the same Claude Code: CLAUDE_CODE_EXECUTABLE, honoured by both ACP versions), and
// the Claude Code behaviours the tests meet that differ between the stacks (claude-code-facts.md
// §2, §3, §7, §8). 2.1.334 judges entries as 2.1.332 does (§8), so the current stack's facts
// hold for both of its Claude Codes.

const fs = require('node:fs');
const path = require('node:path');
const { ensureStackInstalled, stackDir, cacheRoot, INSTALL_TIMEOUT_MS } = require('./stack-install.js');

/** The suffix of Claude Code's platform packages for this machine (`linux-x64`, `darwin-arm64`, ...). */
function platformSuffix() {
  const arch = process.arch;
  if (process.platform !== 'linux') return `${process.platform}-${arch}`;
  const report = typeof process.report?.getReport === 'function' ? process.report.getReport() : null;
  const musl = report != null && report.header?.glibcVersionRuntime === undefined;
  return `linux-${arch}${musl ? '-musl' : ''}`;
}

const EXE = process.platform === 'win32' ? 'claude.exe' : 'claude';

/**
 * The native `claude` binary a package runs from its optional dependency `<platformPkg>` (npm
 * installs it beside or inside `packageDir`). Used directly, so a `--ignore-scripts` install (no
 * postinstall to copy it over `bin/claude.exe`) runs the same binary.
 */
function nativeBinary(packageDir, platformPkg, nodeModules) {
  try {
    const manifest = require.resolve(`${platformPkg}/package.json`, { paths: [packageDir] });
    return path.join(path.dirname(manifest), EXE);
  } catch {
    return path.join(nodeModules, platformPkg, EXE); // reported as missing by stackProblems()
  }
}

const DAY_MS = 24 * 3_600_000;

function seedStack() {
  const nodeModules = path.join(stackDir('seed'), 'node_modules');
  const nm = (...parts) => path.join(nodeModules, ...parts);
  const cli = nm('@anthropic-ai', 'claude-code', 'cli.js');
  const claudeCode = Object.freeze({
    version: '2.1.108',
    packageDir: nm('@anthropic-ai', 'claude-code'),
    executable: cli,
    command: process.execPath,
    args: Object.freeze([cli]),
  });
  return Object.freeze({
    name: 'seed',
    title: 'Claude Code 2.1.108 (cli.js) + Agent SDK 0.2.104 + claude-agent-acp 0.29.2',
    dir: path.dirname(nodeModules),
    claudeCode,
    agentSdk: Object.freeze({
      version: '0.2.104',
      packageDir: nm('@anthropic-ai', 'claude-agent-sdk'),
      module: nm('@anthropic-ai', 'claude-agent-sdk', 'sdk.mjs'),
      // The Claude Code its sessions run: the stack's cli.js (0.2.x runs a `.js` under `executable`).
      claudeCode,
      queryOptions: Object.freeze({ pathToClaudeCodeExecutable: cli, executable: 'node' }),
      // 0.2.104 knows no `mcpServersDelivery`: the servers go in `--mcp-config` on the child's argv.
      mcpServersDelivery: undefined,
    }),
    acp: Object.freeze({
      version: '0.29.2',
      packageDir: nm('@agentclientprotocol', 'claude-agent-acp'),
      bin: nm('@agentclientprotocol', 'claude-agent-acp', 'dist', 'index.js'),
      env: Object.freeze({ CLAUDE_CODE_EXECUTABLE: cli }),
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
    // `mcp_authenticate` leaves the stored tokens alone until the flow completes.
    authenticateEmptiesTokens: false,
    // The SDK session's callback hooks that fire with no tool use: UserPromptSubmit before each
    // turn (and StopFailure after the offline one); never SessionStart nor Setup.
    sessionHooksFired: Object.freeze(['UserPromptSubmit']),
  });
}

function currentStack() {
  const nodeModules = path.join(stackDir('current'), 'node_modules');
  const nm = (...parts) => path.join(nodeModules, ...parts);
  const cliDir = nm('@anthropic-ai', 'claude-code');
  const cliBin = nativeBinary(cliDir, `@anthropic-ai/claude-code-${platformSuffix()}`, nodeModules);
  const sdkDir = nm('@anthropic-ai', 'claude-agent-sdk');
  const sessionBin = nativeBinary(sdkDir, `@anthropic-ai/claude-agent-sdk-${platformSuffix()}`, nodeModules);
  const sessionClaudeCode = Object.freeze({
    version: '2.1.334',
    packageDir: sdkDir, // its package.json `claudeCodeVersion` names the build the binary is
    executable: sessionBin,
    command: sessionBin,
    args: Object.freeze([]),
  });
  return Object.freeze({
    name: 'current',
    title: 'Claude Code 2.1.332 (CLI) + Agent SDK 0.3.334 (its Claude Code 2.1.334) + claude-agent-acp 0.101.0',
    dir: path.dirname(nodeModules),
    claudeCode: Object.freeze({
      version: '2.1.332',
      packageDir: cliDir,
      executable: cliBin,
      command: cliBin,
      args: Object.freeze([]),
    }),
    agentSdk: Object.freeze({
      version: '0.3.334',
      packageDir: sdkDir,
      module: nm('@anthropic-ai', 'claude-agent-sdk', 'sdk.mjs'),
      claudeCode: sessionClaudeCode,
      // The SDK's own choice (its platform package's 2.1.334), named so nothing else is picked up.
      queryOptions: Object.freeze({ pathToClaudeCodeExecutable: sessionBin }),
      // 0.3.333+ default: the servers go to the child over stdin (`--await-initialize`), not argv.
      mcpServersDelivery: 'initialize',
    }),
    acp: Object.freeze({
      version: '0.101.0',
      packageDir: nm('@agentclientprotocol', 'claude-agent-acp'),
      bin: nm('@agentclientprotocol', 'claude-agent-acp', 'dist', 'index.js'),
      // Its own Agent SDK (0.3.318) would run 0.3.318's binary: the stack's session build instead.
      env: Object.freeze({ CLAUDE_CODE_EXECUTABLE: sessionBin }),
    }),
    // Discovery only: no client registration until a sign-in.
    registersClientOnNeedsAuth: false,
    // The entry is on disk when `claude mcp list` exits (seen every time here, also under load).
    listAwaitsNeedsAuthWrite: true,
    // 2.1.120+ removes a server's entry after a successful connect or reconnectMcpServer.
    removesEntryOnConnect: true,
    // 2.1.332 honours a token-less stub for 7 days after discoveryState.tokenlessRejectedAt.
    tokenlessStubWindowMs: 7 * DAY_MS,
    // 2.1.334 empties the server's stored tokens as soon as `mcp_authenticate` starts (§8).
    authenticateEmptiesTokens: true,
    // As the seed's: UserPromptSubmit before each turn; SessionStart never fires (§8).
    sessionHooksFired: Object.freeze(['UserPromptSubmit']),
  });
}

const STACKS = Object.freeze([seedStack(), currentStack()]);
const SEED = STACKS[0];

// The demo's Claude Code (scripts/demo.js): the devDependency @anthropic-ai/claude-code 2.1.108
// (`cli.js`, no native binary), so that `npm install && npm run demo` fetches no stack. A CLI
// only: runClaude and its callers read nothing else of a stack.
const DEMO_CLI = path.join(__dirname, '..', 'node_modules', '@anthropic-ai', 'claude-code', 'cli.js');
const DEMO = Object.freeze({
  name: 'demo',
  title: 'Claude Code 2.1.108 (cli.js, the devDependency)',
  claudeCode: Object.freeze({
    version: '2.1.108',
    packageDir: path.dirname(DEMO_CLI),
    executable: DEMO_CLI,
    command: process.execPath,
    args: Object.freeze([DEMO_CLI]),
  }),
});

/** Look a stack up by name; the seed's when `name` is empty. */
function stackByName(name) {
  if (!name) return SEED;
  const s = STACKS.find((x) => x.name === name);
  if (!s) throw new Error(`unknown stack "${name}" (known: ${STACKS.map((x) => x.name).join(', ')})`);
  return s;
}

function manifest(packageDir) {
  try {
    return JSON.parse(fs.readFileSync(path.join(packageDir, 'package.json'), 'utf8'));
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
    const v = manifest(part.packageDir)?.version;
    if (v !== part.version)
      problems.push(
        `${what}: expected ${part.version} in ${part.packageDir}, found ${v ?? 'nothing'} (await ensureStack)`,
      );
  }
  // The package that ships each executable: the wrapper itself for cli.js, the platform package
  // for a native binary. Its version must be the pin too (the SDK's: its own version, and the
  // SDK names the Claude Code build it ships as `claudeCodeVersion`).
  const cli = stack.claudeCode;
  const shipped = manifest(path.dirname(cli.executable))?.version;
  if (shipped !== cli.version)
    problems.push(
      `Claude Code executable: expected ${cli.version} beside ${cli.executable}, found ${shipped ?? 'nothing'}`,
    );
  const session = stack.agentSdk.claudeCode;
  if (session !== cli) {
    const platformVersion = manifest(path.dirname(session.executable))?.version;
    if (platformVersion !== stack.agentSdk.version)
      problems.push(
        `Agent SDK's Claude Code: expected ${stack.agentSdk.version} beside ${session.executable}, found ${platformVersion ?? 'nothing'}`,
      );
    const built = manifest(stack.agentSdk.packageDir)?.claudeCodeVersion;
    if (built !== session.version)
      problems.push(
        `Agent SDK ${stack.agentSdk.version} ships Claude Code ${built ?? '?'}, expected ${session.version}`,
      );
  }
  for (const file of [cli.executable, session.executable, stack.agentSdk.module, stack.acp.bin]) {
    if (!fs.existsSync(file)) problems.push(`missing ${file} (await ensureStack)`);
  }
  return problems;
}

/**
 * Fetches the stack on first use (support/stack-install.js: exact pins, into the cache), then
 * checks it; rejects with what is wrong. Safe to call from every suite and process at once.
 */
async function ensureStack(stack, options) {
  await ensureStackInstalled(stack.name, options);
  const problems = stackProblems(stack);
  if (problems.length > 0) throw new Error(`the ${stack.name} stack is not as pinned:\n  ${problems.join('\n  ')}`);
  return stack;
}

/** How long a test hook that awaits ensureStacks() may take: a first fetch on a cold npm cache. */
const STACK_HOOK_TIMEOUT_MS = INSTALL_TIMEOUT_MS + 60_000;

/**
 * What a child process that loads this module needs in its env to find the same installs: its
 * HOME is usually a temp one, and support/claude.js's offlineEnv drops MCP_* and XDG_* variables.
 */
function stacksEnv() {
  return { MCP_NEEDS_AUTH_STACKS_DIR: cacheRoot() };
}

/** ensureStack() for every stack, at once (for a suite's root `before`). */
function ensureStacks(stacks = STACKS, options) {
  return Promise.all(stacks.map((s) => ensureStack(s, options)));
}

module.exports = {
  STACKS,
  SEED,
  DEMO,
  stackByName,
  stackProblems,
  ensureStack,
  ensureStacks,
  stacksEnv,
  STACK_HOOK_TIMEOUT_MS,
  platformSuffix,
};
