'use strict';
// A private, throw-away Secret Service (D-Bus session bus + gnome-keyring-daemon) for tests.
//
//   const ss = require('./helpers/secret-service');
//   test('…', { skip: ss.skipReason() }, async (t) => {
//     const svc = await ss.startSecretService();
//     t.after(() => svc.stop());
//     await svc.storeItem('Claude Code-credentials', 'alice', JSON.stringify(doc));
//     spawn(process.execPath, [script], { env: { ...process.env, ...svc.env } });
//   });
//
// Items are stored with exactly the attributes the Rust `keyring` 3.6.x crate searches for
// (`Entry::new(service, user)` -> service, username, target=default), plus the ones it would
// add itself when creating an item (application=rust-keyring), in the default collection.
//
// Linux only. Needs: dbus-daemon, dbus-send (Debian: dbus), gnome-keyring-daemon
// (gnome-keyring), secret-tool (libsecret-tools). CommonJS, Node >= 20, built-ins only.

const { spawn, execFile } = require('node:child_process');
const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const readline = require('node:readline');

const BINARIES = ['dbus-daemon', 'dbus-send', 'gnome-keyring-daemon', 'secret-tool'];
const KEYRING_PASSWORD = 'mcp-needs-auth-test';
const READY_TIMEOUT_MS = 15000;
const MAX_SECRET_BYTES = 8191; // secret-tool reads stdin into an 8 KiB buffer: 8192+ bytes are "too long" (and truncated)

function which(bin) {
  for (const dir of (process.env.PATH || '').split(path.delimiter)) {
    if (!dir) continue;
    const p = path.join(dir, bin);
    try {
      fs.accessSync(p, fs.constants.X_OK);
      if (fs.statSync(p).isFile()) return p;
    } catch {}
  }
  return null;
}

/** Names of the needed binaries that are not on PATH (empty when everything is there). */
function missingBinaries() {
  return BINARIES.filter((b) => !which(b));
}

/** True when a private Secret Service can be started here (Linux with all binaries). */
function available() {
  return process.platform === 'linux' && missingBinaries().length === 0;
}

/**
 * For `test(name, { skip: skipReason() }, fn)`.
 * false -> run the test. A string -> skip with that message.
 * Under CI (process.env.CI set) on Linux it never skips: a missing binary makes
 * startSecretService() reject, so the test fails loudly instead of silently passing.
 */
function skipReason() {
  if (process.platform !== 'linux') return `Secret Service tests run on Linux only (this is ${process.platform})`;
  const missing = missingBinaries();
  if (missing.length === 0 || process.env.CI) return false;
  return (
    `Secret Service not available: missing ${missing.join(', ')} ` +
    '(Debian/Ubuntu: apt-get install gnome-keyring dbus dbus-x11 libsecret-tools)'
  );
}

function run(file, args, { env, input, timeout = 10000 } = {}) {
  return new Promise((resolve, reject) => {
    const child = execFile(file, args, { env, timeout, encoding: 'utf8' }, (err, stdout, stderr) => {
      if (err) {
        err.message = `${file} ${args.join(' ')} failed: ${err.message}${stderr ? `\n${stderr}` : ''}`;
        reject(err);
      } else resolve({ stdout, stderr });
    });
    child.stdin.on('error', () => {}); // EPIPE when the tool exits early; the exit code reports it
    child.stdin.end(input === undefined ? '' : input);
  });
}

const sleep = (ms) => new Promise((r) => setTimeout(r, ms));

function killGroup(child, signal) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return;
  try {
    process.kill(-child.pid, signal); // own process group (detached): also gets anything it spawned
  } catch {
    try {
      child.kill(signal);
    } catch {}
  }
}

function waitExit(child, ms) {
  if (!child || child.exitCode !== null || child.signalCode !== null) return Promise.resolve(true);
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(false), ms);
    child.once('exit', () => {
      clearTimeout(timer);
      resolve(true);
    });
  });
}

/**
 * Starts dbus-daemon (private session bus) and gnome-keyring-daemon (secrets component,
 * login keyring unlocked) inside a fresh temp dir. Resolves once the default collection
 * is reachable over `org.freedesktop.secrets`.
 *
 * @returns {Promise<{
 *   env: Record<string,string>,   // DBUS_SESSION_BUS_ADDRESS, HOME, XDG_* : merge into a child's env
 *   dir: string,                   // the temp dir (HOME is dir/home)
 *   storeItem(service: string, account: string, secret: string, opts?: {label?: string, legacy?: boolean}): Promise<void>,
 *   deleteItem(service: string, account: string): Promise<void>,
 *   lookupItem(service: string, account: string): Promise<string|null>,
 *   stop(): Promise<void>,
 * }>}
 */
async function startSecretService() {
  if (process.platform !== 'linux') throw new Error('startSecretService: Linux only');
  const missing = missingBinaries();
  if (missing.length) {
    throw new Error(
      `startSecretService: missing ${missing.join(', ')} on PATH ` +
        '(apt-get install -y --no-install-recommends gnome-keyring dbus dbus-x11 libsecret-tools)',
    );
  }

  const dir = fs.mkdtempSync(path.join(os.tmpdir(), 'mcp-ss-'));
  const sub = (n) => {
    const p = path.join(dir, n);
    fs.mkdirSync(p, { mode: 0o700 });
    fs.chmodSync(p, 0o700); // mkdir's mode is filtered by umask
    return p;
  };
  const runtimeDir = sub('runtime');
  const env = {
    HOME: sub('home'),
    XDG_DATA_HOME: sub('data'),
    XDG_CONFIG_HOME: sub('config'),
    XDG_CACHE_HOME: sub('cache'),
    XDG_RUNTIME_DIR: runtimeDir,
    DBUS_SESSION_BUS_ADDRESS: '', // filled in below
  };
  // Environment for the daemons and tools: no DISPLAY (no GUI prompts), no inherited bus.
  const baseEnv = { ...process.env, ...env };
  delete baseEnv.DISPLAY;
  delete baseEnv.WAYLAND_DISPLAY;
  delete baseEnv.GNOME_KEYRING_CONTROL;

  const children = [];
  let stopped = false;
  const onExit = () => {
    // Process is exiting without stop(): synchronous best effort.
    for (const c of children) killGroup(c, 'SIGKILL');
    try {
      fs.rmSync(dir, { recursive: true, force: true });
    } catch {}
  };
  process.on('exit', onExit);

  async function stop() {
    if (stopped) return;
    stopped = true;
    process.removeListener('exit', onExit);
    for (const c of [...children].reverse()) {
      killGroup(c, 'SIGTERM');
      if (!(await waitExit(c, 2000))) {
        killGroup(c, 'SIGKILL');
        await waitExit(c, 2000);
      }
    }
    fs.rmSync(dir, { recursive: true, force: true });
  }

  function daemon(file, args, extraEnv) {
    const child = spawn(file, args, {
      env: { ...baseEnv, ...extraEnv },
      stdio: ['pipe', 'pipe', 'pipe'],
      detached: true, // own process group, so stop() can kill it and its children by -pid
    });
    children.push(child);
    let stderr = '';
    child.stderr.setEncoding('utf8');
    child.stderr.on('data', (d) => {
      if (stderr.length < 8192) stderr += d;
    });
    child.stderrText = () => stderr;
    child.on('error', (e) => {
      child.spawnError = e;
    });
    child.unref();
    for (const s of [child.stdin, child.stdout, child.stderr]) s.unref?.();
    return child;
  }

  try {
    // 1. Private session bus on a socket inside the temp dir. --nofork: child.pid is the daemon.
    //    Own config with no service directories: nothing is ever bus-activated (the stock
    //    session config would auto-start a second, locked gnome-keyring-daemon on the first
    //    call to org.freedesktop.secrets, and prompters on an unlock request).
    const busSocket = path.join(runtimeDir, 'bus');
    const busConfig = path.join(dir, 'session.conf');
    fs.writeFileSync(
      busConfig,
      [
        '<!DOCTYPE busconfig PUBLIC "-//freedesktop//DTD D-Bus Bus Configuration 1.0//EN"',
        ' "http://www.freedesktop.org/standards/dbus/1.0/busconfig.dtd">',
        '<busconfig>',
        '  <type>session</type>',
        '  <keep_umask/>',
        `  <listen>unix:path=${busSocket}</listen>`,
        '  <auth>EXTERNAL</auth>',
        '  <policy context="default">',
        '    <allow send_destination="*" eavesdrop="true"/>',
        '    <allow eavesdrop="true"/>',
        '    <allow own="*"/>',
        '  </policy>',
        '</busconfig>',
        '',
      ].join('\n'),
    );
    const bus = daemon('dbus-daemon', [`--config-file=${busConfig}`, '--nofork', '--nopidfile', '--print-address=1']);
    bus.stdin.end();
    env.DBUS_SESSION_BUS_ADDRESS = await new Promise((resolve, reject) => {
      const timer = setTimeout(() => reject(new Error('dbus-daemon printed no address within 5 s')), 5000);
      const rl = readline.createInterface({ input: bus.stdout });
      rl.once('line', (line) => {
        clearTimeout(timer);
        rl.close();
        resolve(line.trim());
      });
      bus.once('exit', (code, sig) => {
        clearTimeout(timer);
        reject(new Error(`dbus-daemon exited (${code ?? sig}): ${bus.spawnError?.message ?? bus.stderrText()}`));
      });
    });
    bus.stdout.resume(); // drain anything else
    baseEnv.DBUS_SESSION_BUS_ADDRESS = env.DBUS_SESSION_BUS_ADDRESS;

    // 2. gnome-keyring-daemon in the foreground (child.pid is the daemon), password on stdin:
    //    creates and unlocks the "login" keyring, which becomes the default collection.
    const keyring = daemon('gnome-keyring-daemon', ['--foreground', '--unlock', '--components=secrets']);
    keyring.stdin.end(KEYRING_PASSWORD);
    keyring.stdout.resume();

    // 3. Wait (bounded) until org.freedesktop.secrets is owned and the default alias resolves.
    const deadline = Date.now() + READY_TIMEOUT_MS;
    for (;;) {
      if (keyring.exitCode !== null || keyring.signalCode !== null || keyring.spawnError) {
        throw new Error(
          `gnome-keyring-daemon exited early (${keyring.exitCode ?? keyring.signalCode}): ` +
            `${keyring.spawnError?.message ?? keyring.stderrText()}`,
        );
      }
      if (bus.exitCode !== null || bus.signalCode !== null) {
        throw new Error(`dbus-daemon exited early: ${bus.stderrText()}`);
      }
      const owned = await run(
        'dbus-send',
        [
          '--session',
          '--print-reply',
          '--dest=org.freedesktop.DBus',
          '/org/freedesktop/DBus',
          'org.freedesktop.DBus.NameHasOwner',
          'string:org.freedesktop.secrets',
        ],
        { env: baseEnv, timeout: 3000 },
      ).then(
        ({ stdout }) => /boolean true/.test(stdout),
        () => false,
      );
      const ok =
        owned &&
        (await run(
          'dbus-send',
          [
            '--session',
            '--print-reply',
            '--dest=org.freedesktop.secrets',
            '/org/freedesktop/secrets',
            'org.freedesktop.Secret.Service.ReadAlias',
            'string:default',
          ],
          { env: baseEnv, timeout: 3000 },
        ).then(
          ({ stdout }) => /object path "\/org\/freedesktop\/secrets\/collection\//.test(stdout),
          () => false,
        ));
      if (ok) break;
      if (Date.now() > deadline) {
        throw new Error(
          `org.freedesktop.secrets not ready within ${READY_TIMEOUT_MS} ms. gnome-keyring-daemon: ` +
            `${keyring.stderrText() || '(no output)'} dbus-daemon: ${bus.stderrText() || '(no output)'}`,
        );
      }
      await sleep(50);
    }
  } catch (err) {
    await stop();
    throw err;
  }

  // Attributes `keyring` 3.6.x (`Entry::new(service, user)`) searches for, and sets on creation.
  const attrs = (service, account, legacy) => [
    'service',
    service,
    'username',
    account,
    ...(legacy ? [] : ['target', 'default']),
    'application',
    'rust-keyring',
  ];

  return {
    env: { ...env },
    dir,
    /**
     * Creates or replaces (same attributes => same item, secret and label updated) the item.
     * opts.legacy: omit `target` (keyring v1 / third-party style item; keyring 3.6 still finds
     * it through its default-collection fallback search).
     */
    async storeItem(service, account, secret, opts = {}) {
      const input = String(secret);
      // secret-tool silently truncates longer secrets to 8192 bytes (exit code 0,
      // "password is too long" on stderr): refuse instead of storing a corrupt document.
      if (Buffer.byteLength(input, 'utf8') > MAX_SECRET_BYTES) {
        throw new Error(
          `storeItem: secret is ${Buffer.byteLength(input, 'utf8')} bytes; secret-tool stores at most ${MAX_SECRET_BYTES}`,
        );
      }
      const label = opts.label ?? `${account}@${service}:default:keyring-rs v3.6.3`;
      const { stderr } = await run(
        'secret-tool',
        ['store', `--label=${label}`, ...attrs(service, account, opts.legacy)],
        {
          env: baseEnv,
          input,
        },
      );
      if (/too long/i.test(stderr)) throw new Error(`storeItem: secret-tool: ${stderr.trim()}`);
    },
    /** Deletes every item with this service and username (with or without `target`). */
    async deleteItem(service, account) {
      await run('secret-tool', ['clear', 'service', service, 'username', account], { env: baseEnv });
    },
    /** The stored secret, or null when there is no such item. */
    async lookupItem(service, account) {
      try {
        const { stdout } = await run('secret-tool', ['lookup', 'service', service, 'username', account], {
          env: baseEnv,
        });
        return stdout;
      } catch (e) {
        if (e.code === 1) return null;
        throw e;
      }
    },
    stop,
  };
}

/** Runs fn(svc) with a fresh Secret Service and always stops it afterwards. */
async function withSecretService(fn) {
  const svc = await startSecretService();
  try {
    return await fn(svc);
  } finally {
    await svc.stop();
  }
}

module.exports = {
  startSecretService,
  withSecretService,
  available,
  missingBinaries,
  skipReason,
  KEYRING_PASSWORD,
  MAX_SECRET_BYTES,
};
