'use strict';
// The installed package is the tested package: packs the main package and this platform's
// package (scripts/pack.js --prebuilt, from the .node `npm run build` left), installs both
// tarballs into an empty project with `npm install --offline`, on a PATH without cargo or rustc,
// and uses it the ways a consumer does: require, the SDK entry from CJS and ESM, the preload, the
// CLI through npx, and the types with tsc (moduleResolution node16 and bundler).
//
//   npm run build && node --test __test__/unit/package.test.js

const { describe, it, before, after } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { tmp } = require('../helpers/tmp.js');

const ROOT = path.resolve(__dirname, '..', '..');
const PKG = JSON.parse(fs.readFileSync(path.join(ROOT, 'package.json'), 'utf8'));
const NAME = PKG.name;
const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');
const TYPE_ROOTS = path.join(ROOT, 'node_modules', '@types');

const work = tmp({ after }, 'mna-package-');
const dist = path.join(work, 'dist');
const project = path.join(work, 'consumer');
const installed = path.join(project, 'node_modules', NAME);

const WIN = process.platform === 'win32';
const EXE = WIN ? '.exe' : '';

/** PATH holding node, npm and npx, and none of PATH's dirs that hold cargo, rustc or rustup. */
function pathWithoutRust() {
  const rust = ['cargo', 'rustc', 'rustup'].map((t) => t + EXE);
  const kept = process.env.PATH.split(path.delimiter).filter(
    (d) => d && !rust.some((t) => fs.existsSync(path.join(d, t))),
  );
  if (WIN) return kept.join(path.delimiter); // Node's own dir holds npm.cmd; Rust lives in ~/.cargo/bin.
  // Node, npm and npx may share a dir with cargo (e.g. /usr/local/bin): link them into one of their own.
  const bin = path.join(work, 'bin');
  fs.mkdirSync(bin);
  fs.symlinkSync(process.execPath, path.join(bin, 'node'));
  for (const tool of ['npm', 'npx']) {
    const found = spawnSync('sh', ['-c', `command -v ${tool}`], { encoding: 'utf8' }).stdout.trim();
    assert.ok(found, `${tool} is not on PATH`);
    fs.symlinkSync(fs.realpathSync(found), path.join(bin, tool));
  }
  return [bin, ...kept].join(path.delimiter);
}

// The consumer's environment: no Rust, no npm script context of the suite (npm_* variables
// would point the child npm back at this checkout), a config dir of its own.
const env = Object.fromEntries(Object.entries(process.env).filter(([k]) => !/^npm_/i.test(k) && k !== 'NODE_OPTIONS'));
const configDir = path.join(work, 'claude');

function run(cmd, args, extra = {}) {
  // npm and npx are .cmd scripts on Windows, which Node spawns only through a shell.
  const r = spawnSync(cmd, args, { cwd: project, env, encoding: 'utf8', timeout: 120000, shell: WIN, ...extra });
  assert.equal(r.error, undefined, `${cmd} ${args.join(' ')} did not run: ${r.error}`);
  assert.equal(
    r.status,
    0,
    `${cmd} ${args.join(' ')} exited ${r.status ?? r.signal}\nstdout: ${r.stdout}\nstderr: ${r.stderr}`,
  );
  return r;
}

const nodeJs = (code, extraArgs = [], extra = {}) => run('node', [...extraArgs, '-e', code], extra).stdout;

before(() => {
  env.PATH = pathWithoutRust();
  env.CLAUDE_CONFIG_DIR = configDir;
  fs.mkdirSync(configDir);
  run(process.execPath, [path.join(ROOT, 'scripts', 'pack.js'), '--prebuilt', '--out', dist], {
    cwd: ROOT,
    env: process.env,
  });
  fs.mkdirSync(project);
  fs.writeFileSync(
    path.join(project, 'package.json'),
    JSON.stringify({ name: 'consumer', version: '1.0.0', private: true }),
  );
  const tarballs = fs.readdirSync(dist).map((n) => path.join(dist, n));
  run('npm', ['install', '--offline', '--no-audit', '--no-fund', '--no-package-lock', ...tarballs]);
});

describe('the main tarball installed without its platform package', () => {
  const alone = path.join(work, 'alone');
  const platformPkg = () =>
    fs
      .readdirSync(dist)
      .map((n) => n.match(new RegExp(`^(${NAME}-[a-z0-9-]+)-${PKG.version.replace(/\./g, '\\.')}\\.tgz$`))?.[1])
      .find(Boolean);

  before(() => {
    fs.mkdirSync(alone);
    fs.writeFileSync(
      path.join(alone, 'package.json'),
      JSON.stringify({ name: 'alone', version: '1.0.0', private: true }),
    );
    const main = path.join(dist, `${NAME}-${PKG.version}.tgz`);
    // As `npm install --omit=optional` (or a lockfile made on another platform) leaves it.
    run('npm', ['install', '--offline', '--omit=optional', '--no-audit', '--no-fund', '--no-package-lock', main], {
      cwd: alone,
    });
  });

  it('fails to load saying which package is missing, at which version, and how to get it', () => {
    const pkg = platformPkg();
    assert.ok(pkg, `a platform tarball in ${fs.readdirSync(dist)}`);
    assert.equal(fs.existsSync(path.join(alone, 'node_modules', pkg)), false, `${pkg} is not installed`);
    for (const entry of [NAME, `${NAME}/sdk`]) {
      const r = spawnSync(
        'node',
        [
          '-e',
          `try { require('${entry}') } catch (e) { console.log(JSON.stringify({ code: e.code, message: e.message, cause: String(e.cause) })) }`,
        ],
        { cwd: alone, env, encoding: 'utf8', timeout: 60_000 },
      );
      assert.equal(r.status, 0, r.stderr);
      const e = JSON.parse(r.stdout);
      assert.equal(e.code, 'ERR_ADDON_NOT_FOUND', `${entry}: ${e.message}`);
      assert.ok(e.message.includes(`${pkg}@${PKG.version}`), `${entry} names the package and version: ${e.message}`);
      assert.ok(e.message.includes(`npm install ${pkg}@${PKG.version}`), `${entry} says how to get it: ${e.message}`);
      assert.doesNotMatch(e.message, /npm has a bug/);
      assert.match(e.cause, /Cannot find native binding/, "napi-rs's own error is the cause");
    }
  });
});

describe('the packed, installed package', () => {
  it('was installed without Rust: no cargo or rustc on the consumer PATH', () => {
    for (const tool of ['cargo', 'rustc']) {
      const r = spawnSync(tool, ['--version'], { env, encoding: 'utf8' });
      assert.equal(r.error?.code, 'ENOENT', `${tool} is reachable: ${r.stdout}`);
    }
  });

  it('the main package holds no .node, runs nothing at install, and names every platform package', () => {
    const walk = (d) =>
      fs
        .readdirSync(d, { withFileTypes: true })
        .flatMap((e) => (e.isDirectory() ? walk(path.join(d, e.name)) : [e.name]));
    assert.deepEqual(
      walk(installed).filter((n) => n.endsWith('.node')),
      [],
    );
    const manifest = JSON.parse(fs.readFileSync(path.join(installed, 'package.json'), 'utf8'));
    for (const hook of ['preinstall', 'install', 'postinstall', 'prepare']) {
      assert.equal(manifest.scripts?.[hook], undefined, `the published package.json has a ${hook} script`);
    }
    assert.equal(fs.existsSync(path.join(installed, 'binding.gyp')), false, 'npm would run node-gyp');
    const platforms = fs.readdirSync(path.join(ROOT, 'npm')).sort();
    assert.equal(platforms.length, 8);
    assert.deepEqual(
      manifest.optionalDependencies,
      Object.fromEntries(platforms.map((p) => [`${NAME}-${p}`, PKG.version])),
    );
  });

  it("require('mcp-needs-auth') loads the platform package's .node", () => {
    const out = JSON.parse(
      nodeJs(`const m = require('${NAME}');
      const loaded = Object.keys(require.cache).filter((k) => k.endsWith('.node'));
      console.log(JSON.stringify({ keys: Object.keys(m), loaded, path: m.cachePath(), resolved: require.resolve('${NAME}') }));`),
    );
    for (const f of [
      'cachePath',
      'listNeedsAuth',
      'isNeedsAuthCached',
      'markNeedsAuth',
      'invalidateNeedsAuth',
      'onAuthChanged',
      'purgeStale',
      'diagnose',
      'Subscription',
    ]) {
      assert.ok(out.keys.includes(f), `missing export ${f}`);
    }
    assert.equal(out.loaded.length, 1, `loaded: ${out.loaded}`);
    assert.match(
      out.loaded[0].split(path.sep).join('/'),
      new RegExp(`node_modules/${NAME}-[a-z0-9-]+/${NAME}\\.[a-z0-9-]+\\.node$`),
    );
    assert.ok(out.resolved.startsWith(fs.realpathSync(project)), `resolved outside the consumer: ${out.resolved}`);
    assert.equal(out.path, path.join(configDir, 'mcp-needs-auth-cache.json'));
  });

  it('mcp-needs-auth/sdk: the CJS and ESM entries export the same functions', () => {
    const cjs = JSON.parse(nodeJs(`console.log(JSON.stringify(Object.keys(require('${NAME}/sdk')).sort()))`));
    const esm = JSON.parse(
      run('node', [
        '--input-type=module',
        '-e',
        `import * as s from '${NAME}/sdk';
      console.log(JSON.stringify(Object.keys(s).filter((k) => k !== 'default').sort()))`,
      ]).stdout,
    );
    assert.deepEqual(esm, cjs);
    for (const f of ['prepareQuery', 'reconnectOnAuthChange', 'needsAuthHooks', 'configDirFor'])
      assert.ok(cjs.includes(f), `missing ${f}`);
    const esmCore = JSON.parse(
      run('node', [
        '--input-type=module',
        '-e',
        `import { invalidateNeedsAuth } from '${NAME}';
      console.log(JSON.stringify(typeof invalidateNeedsAuth))`,
      ]).stdout,
    );
    assert.equal(esmCore, 'function');
  });

  it('node -r mcp-needs-auth/register purges the expired entry and lets the process exit', () => {
    const cache = path.join(configDir, 'mcp-needs-auth-cache.json');
    const now = Date.now();
    fs.writeFileSync(cache, JSON.stringify({ old: { timestamp: now - 3600_000 }, fresh: { timestamp: now } }));
    const r = run('node', ['-r', `${NAME}/register`, '-e', 'setTimeout(() => {}, 50)'], {
      env: { ...env, MCP_NEEDS_AUTH_DEBUG: '1' },
    });
    assert.match(r.stderr, /purged old \(expired\)/);
    assert.doesNotMatch(r.stderr, /Warning/);
    assert.deepEqual(Object.keys(JSON.parse(fs.readFileSync(cache, 'utf8'))), ['fresh']);
  });

  it('npx mcp-needs-auth list --json', () => {
    const cache = path.join(configDir, 'mcp-needs-auth-cache.json');
    fs.writeFileSync(cache, JSON.stringify({ github: { timestamp: Date.now() } }));
    const list = JSON.parse(run('npx', ['--offline', NAME, 'list', '--json']).stdout);
    assert.deepEqual(
      list.map((e) => [e.server, e.cached]),
      [['github', true]],
    );
  });

  describe('types (tsc --noEmit on a consumer using every export)', () => {
    let coreKeys;
    let sdkKeys;
    before(() => {
      coreKeys = JSON.parse(nodeJs(`console.log(JSON.stringify(Object.keys(require('${NAME}'))))`));
      sdkKeys = JSON.parse(nodeJs(`console.log(JSON.stringify(Object.keys(require('${NAME}/sdk'))))`));
      // Typed use of the API, then every runtime export by name: one without a declaration fails.
      const source = `import {
  cachePath, listNeedsAuth, isNeedsAuthCached, markNeedsAuth, invalidateNeedsAuth, onAuthChanged,
  purgeStale, diagnose, Subscription,
} from '${NAME}';
import type { AuthChangedEvent, NeedsAuthEntry, NeedsAuthOptions, PurgedEntry, Diagnosis } from '${NAME}';
import { configDirFor, prepareQuery, needsAuthHooks, reconnectOnAuthChange, ReconnectSubscription } from '${NAME}/sdk';
import type { QueryLike } from '${NAME}/sdk';
import * as core from '${NAME}';
import * as sdk from '${NAME}/sdk';

const options: NeedsAuthOptions = { configDir: '/tmp/claude' };
const file: string = cachePath(options);
const entries: NeedsAuthEntry[] = listNeedsAuth(options);
const cached: boolean = isNeedsAuthCached('github', options);
markNeedsAuth('github', options);
const removed: string[] = invalidateNeedsAuth('github', options);
const sub: Subscription = onAuthChanged((event: AuthChangedEvent) => {
  const servers: string[] = event.servers;
  void servers;
}, { ...options, signal: new AbortController().signal });
sub.close();
const purged: PurgedEntry[] = purgeStale(options);
const why: Diagnosis = diagnose('github', options);
const dir: string = configDirFor({ env: { CLAUDE_CONFIG_DIR: '/tmp/claude' } });
declare const query: QueryLike;
const prepared = prepareQuery({ env: {} }, { query: () => query });
const hooks = needsAuthHooks({ query });
const reconnecting: ReconnectSubscription = reconnectOnAuthChange(query);
void [file, entries, cached, removed, purged, why, dir, prepared, hooks, reconnecting];

const everyCoreExport: Array<keyof typeof core> = ${JSON.stringify(coreKeys)};
const everySdkExport: Array<keyof typeof sdk> = ${JSON.stringify(sdkKeys)};
void [everyCoreExport, everySdkExport];
`;
      fs.writeFileSync(path.join(project, 'consumer.ts'), source);
      fs.writeFileSync(path.join(project, 'consumer-esm.mts'), source);
    });

    for (const [resolution, module] of [
      ['node16', 'node16'],
      ['bundler', 'esnext'],
    ]) {
      it(`moduleResolution ${resolution}`, () => {
        const tsconfig = path.join(project, `tsconfig.${resolution}.json`);
        fs.writeFileSync(
          tsconfig,
          JSON.stringify({
            compilerOptions: {
              module,
              moduleResolution: resolution,
              target: 'es2022',
              strict: true,
              noEmit: true,
              skipLibCheck: false,
              types: ['node'],
              typeRoots: [TYPE_ROOTS],
            },
            files: resolution === 'node16' ? ['consumer.ts', 'consumer-esm.mts'] : ['consumer.ts'],
          }),
        );
        const r = spawnSync(process.execPath, [TSC, '-p', tsconfig], {
          cwd: project,
          env,
          encoding: 'utf8',
          timeout: 120000,
        });
        assert.equal(r.status, 0, `tsc (${resolution}) failed:\n${r.stdout}${r.stderr}`);
      });
    }
  });
});
