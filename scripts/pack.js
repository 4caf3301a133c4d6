#!/usr/bin/env node
'use strict';
// `npm run pack`: the tarballs npm would publish, in dist/: the main package (JavaScript, types,
// no .node) and one platform package per target built on this machine (npm/<platform>/, laid out
// by `napi create-npm-dirs`). On Linux that is the four Linux targets; macOS and Windows
// packages are built by .github/workflows/release.yml on their own runners.
//
//   npm run pack                                  build this host's targets, check, pack
//   node scripts/pack.js --targets x86_64-unknown-linux-musl
//   node scripts/pack.js --prebuilt --out DIR     pack the main package + this platform's package
//                                                 from the .node `npm run build` left (no cargo)
//
// Linux cross builds go through cargo-zigbuild with zig, both from PyPI (scripts/cross-toolchain.sh
// installs them into a cache dir): one C cross compiler for glibc and musl, x64 and arm64, which
// the vendored libdbus needs, and glibc pinned to 2.17 so the gnu packages load on old distros.
// Every .node is checked before it is packed: an ELF/Mach-O/PE of the target's machine, the right
// libc, and, where this machine can run it, loaded for real by a child Node.

const fs = require('node:fs');
const os = require('node:os');
const path = require('node:path');
const { execFileSync, spawnSync } = require('node:child_process');

const ROOT = path.resolve(__dirname, '..');
const GLIBC = '2.17';
// What each host builds by default: Linux cross-builds its four targets; macOS builds both of
// its own; Windows its host target (arm64 needs the MSVC arm64 tools, its runner builds it).
const HOST_TARGETS = {
  linux: [
    'x86_64-unknown-linux-gnu',
    'aarch64-unknown-linux-gnu',
    'x86_64-unknown-linux-musl',
    'aarch64-unknown-linux-musl',
  ],
  darwin: ['aarch64-apple-darwin', 'x86_64-apple-darwin'],
};
const ELF_MACHINE = { x64: 62, arm64: 183 };

function usage(msg) {
  if (msg) console.error(`pack: ${msg}`);
  console.error('usage: node scripts/pack.js [--targets T1,T2 | --prebuilt] [--out DIR]');
  process.exit(2);
}

function parseArgs(argv) {
  const opts = { out: path.join(ROOT, 'dist'), targets: null, prebuilt: false };
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--out') opts.out = path.resolve(argv[++i] ?? usage('--out needs a directory'));
    else if (a === '--targets')
      opts.targets = (argv[++i] ?? usage('--targets needs a list')).split(',').filter(Boolean);
    else if (a === '--prebuilt') opts.prebuilt = true;
    else usage(`unknown argument ${a}`);
  }
  if (opts.prebuilt && opts.targets) usage('--prebuilt packs this platform only; drop --targets');
  return opts;
}

// npm and npx are .cmd scripts on Windows, which Node spawns only through a shell.
const SHELL = process.platform === 'win32';

function run(cmd, args, options = {}) {
  const r = spawnSync(cmd, args, { cwd: ROOT, stdio: 'inherit', shell: SHELL, ...options });
  if (r.error) throw new Error(`${cmd} could not start: ${r.error.message}`);
  if (r.status !== 0) throw new Error(`${cmd} ${args.join(' ')} failed (exit ${r.status ?? r.signal})`);
}

function isMusl() {
  return process.platform === 'linux' && !process.report.getReport().header.glibcVersionRuntime;
}

/** The napi target this Node process loads (`linux-x64-gnu`, `darwin-arm64`, ...), if declared. */
function hostTarget(targets) {
  const abi = process.platform === 'linux' ? (isMusl() ? 'musl' : 'gnu') : process.platform === 'win32' ? 'msvc' : null;
  return targets.find((t) => t.platform === process.platform && t.arch === process.arch && t.abi === abi);
}

/** PATH with the cross toolchain (cargo-zigbuild, zig) first, installing it if it is missing. */
function crossPath() {
  const script = path.join(__dirname, 'cross-toolchain.sh');
  const out = execFileSync('bash', [script], { cwd: ROOT, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'] });
  const bin = out.trim().split('\n').pop();
  return `${bin}${path.delimiter}${process.env.PATH}`;
}

/** Builds `target` into `outDir` and returns the .node path. */
function build(target, host, outDir, env) {
  const args = [
    'napi',
    'build',
    '--platform',
    '--release',
    '--package',
    'mcp-needs-auth',
    '--no-js',
    '--no-dts-header',
    '--dts',
    'index.d.ts',
    '-o',
    outDir,
  ];
  if (target.platform === 'linux') {
    // zig picks the glibc version from the triple's suffix; musl needs none.
    args.push('-x', '--target', target.abi === 'gnu' ? `${target.triple}.${GLIBC}` : target.triple);
  } else if (target !== host) {
    args.push('--target', target.triple);
  }
  run('npx', args, { env });
  return path.join(outDir, `${target.binaryName}.${target.platformArchABI}.node`);
}

/** Reads what the dynamic section and symbol versions of an ELF say (binutils' readelf). */
function elfFacts(file) {
  const r = spawnSync('readelf', ['-dW', '--dyn-syms', file], { encoding: 'utf8', maxBuffer: 64 * 1024 * 1024 });
  if (r.error || r.status !== 0) return null;
  const needed = [...r.stdout.matchAll(/\(NEEDED\)\s+Shared library: \[([^\]]+)\]/g)].map((m) => m[1]);
  const glibc = [...r.stdout.matchAll(/@GLIBC_(\d+)\.(\d+)(?:\.(\d+))?/g)]
    .map((m) => [+m[1], +m[2], +(m[3] ?? 0)])
    .sort((a, b) => a[0] - b[0] || a[1] - b[1] || a[2] - b[2])
    .pop();
  return { needed, maxGlibc: glibc ? glibc.join('.').replace(/\.0$/, '') : null };
}

/** Throws unless `file` is a shared object for `target`'s OS, machine and libc. */
function checkBinary(file, target) {
  const b = fs.readFileSync(file);
  const where = `${path.basename(file)} (${target.triple})`;
  if (target.platform === 'linux') {
    if (b.readUInt32BE(0) !== 0x7f454c46) throw new Error(`${where} is not an ELF file`);
    if (b[4] !== 2 || b[5] !== 1) throw new Error(`${where} is not a 64-bit little-endian ELF`);
    if (b.readUInt16LE(16) !== 3) throw new Error(`${where} is not a shared object (e_type ${b.readUInt16LE(16)})`);
    const machine = b.readUInt16LE(18);
    if (machine !== ELF_MACHINE[target.arch])
      throw new Error(`${where} is built for ELF machine ${machine}, not ${target.arch} (${ELF_MACHINE[target.arch]})`);
    const facts = elfFacts(file);
    if (!facts) return `ELF ${target.arch}, shared object (readelf not found: libc not checked)`;
    const gnu = facts.needed.includes('libc.so.6');
    const musl = facts.needed.includes('libc.so');
    if (target.abi === 'gnu' && (!gnu || musl))
      throw new Error(`${where} does not link glibc: NEEDED ${facts.needed.join(', ')}`);
    if (target.abi === 'musl' && (!musl || gnu || facts.maxGlibc))
      throw new Error(`${where} does not link musl alone: NEEDED ${facts.needed.join(', ')}`);
    const glibc = target.abi === 'gnu' ? `, needs glibc ${facts.maxGlibc}` : '';
    return `ELF ${target.arch} shared object, NEEDED ${facts.needed.join(' ')}${glibc}`;
  }
  if (target.platform === 'darwin') {
    const cpu = { 16777223: 'x64', 16777228: 'arm64' }[b.readUInt32LE(4)];
    if (b.readUInt32LE(0) !== 0xfeedfacf || cpu !== target.arch)
      throw new Error(`${where} is not a 64-bit Mach-O for ${target.arch}`);
    return `Mach-O ${cpu}`;
  }
  const pe = b.readUInt32LE(0x3c);
  const cpu = { 34404: 'x64', 43620: 'arm64' }[b.readUInt16LE(pe + 4)];
  if (b.readUInt32LE(pe) !== 0x4550 || cpu !== target.arch) throw new Error(`${where} is not a PE for ${target.arch}`);
  return `PE ${cpu}`;
}

/** Loads `file` in a child Node and checks the addon's exports are there. */
function loadForReal(file) {
  const code = `const m = require(${JSON.stringify(file)});
    for (const f of ['invalidateNeedsAuth', 'onAuthChanged', 'listNeedsAuth', 'purgeStale']) {
      if (typeof m[f] !== 'function') throw new Error('missing export ' + f);
    }
    process.stdout.write(m.cachePath({ configDir: '/x' }));`;
  const r = spawnSync(process.execPath, ['-e', code], { encoding: 'utf8', timeout: 30000 });
  if (r.status !== 0) throw new Error(`${path.basename(file)} did not load: ${r.stderr || r.error}`);
}

/** `npm pack` of `dir` into `out`; returns the tarball's path. */
function npmPack(dir, out) {
  const args = ['pack', '--ignore-scripts', '--json', '--pack-destination', out];
  const r = spawnSync('npm', args, { cwd: dir, encoding: 'utf8', stdio: ['ignore', 'pipe', 'inherit'], shell: SHELL });
  if (r.status !== 0) throw new Error(`npm pack in ${dir} failed`);
  return path.join(out, JSON.parse(r.stdout)[0].filename);
}

/**
 * Packs the main package from a staged copy whose package.json names every platform package
 * in optionalDependencies, at this version, as `napi prepublish` writes them at publish time.
 * They are not in the committed package.json: until they are on the registry, a lockfile could
 * not record them and `npm ci` would refuse the checkout.
 */
function packMain(config, out) {
  const listing = spawnSync('npm', ['pack', '--dry-run', '--ignore-scripts', '--json'], {
    cwd: ROOT,
    encoding: 'utf8',
    stdio: ['ignore', 'pipe', 'inherit'],
    shell: SHELL,
  });
  if (listing.status !== 0) throw new Error('npm pack --dry-run failed');
  const files = JSON.parse(listing.stdout)[0].files.map((f) => f.path);
  const strays = files.filter((f) => f.endsWith('.node'));
  if (strays.length) throw new Error(`the main package would hold ${strays.join(', ')}: fix "files" in package.json`);
  return staged(out, (stage) => {
    for (const f of files) {
      fs.mkdirSync(path.dirname(path.join(stage, f)), { recursive: true });
      fs.copyFileSync(path.join(ROOT, f), path.join(stage, f));
    }
    const pkg = { ...config.packageJson, scripts: { ...config.packageJson.scripts } };
    // `prepare` builds the addon in a checkout (and for git installs); an installed tarball has
    // its platform package, and npm would list the script as one the user must approve.
    delete pkg.scripts.prepare;
    pkg.optionalDependencies = Object.fromEntries(
      config.targets.map((t) => [`${config.packageName}-${t.platformArchABI}`, pkg.version]),
    );
    fs.writeFileSync(path.join(stage, 'package.json'), `${JSON.stringify(pkg, null, 2)}\n`);
  });
}

/** Packs npm/<platform>/ with `node` in it, from a staged copy: the checkout is left as it is. */
function packPlatform(config, target, node, out) {
  const dir = path.join(ROOT, 'npm', target.platformArchABI);
  const pkg = JSON.parse(fs.readFileSync(path.join(dir, 'package.json'), 'utf8'));
  if (pkg.version !== config.packageJson.version) {
    throw new Error(
      `${dir}/package.json is version ${pkg.version}, the main package ${config.packageJson.version}: run \`npx napi version\``,
    );
  }
  return staged(out, (stage) => {
    fs.cpSync(dir, stage, { recursive: true, filter: (src) => !src.endsWith('.node') });
    fs.copyFileSync(node, path.join(stage, pkg.main));
  });
}

/** Packs into `out` a temp dir that `fill` puts the package's files in. */
function staged(out, fill) {
  const stage = fs.mkdtempSync(path.join(os.tmpdir(), 'mna-pack-'));
  try {
    fill(stage);
    return npmPack(stage, out);
  } finally {
    fs.rmSync(stage, { recursive: true, force: true });
  }
}

async function main() {
  const opts = parseArgs(process.argv.slice(2));
  const { readNapiConfig } = require('@napi-rs/cli');
  const config = await readNapiConfig(path.join(ROOT, 'package.json'));
  for (const t of config.targets) t.binaryName = config.binaryName;
  const host = hostTarget(config.targets);
  const byTriple = new Map(config.targets.map((t) => [t.triple, t]));

  let wanted;
  if (opts.prebuilt) {
    if (!host) throw new Error(`this platform (${process.platform}-${process.arch}) is not in napi.targets`);
    wanted = [host];
  } else {
    const triples = opts.targets ?? HOST_TARGETS[process.platform] ?? [host?.triple].filter(Boolean);
    wanted = triples.map((t) => byTriple.get(t) ?? usage(`${t} is not in package.json's napi.targets`));
  }

  fs.mkdirSync(opts.out, { recursive: true });
  for (const old of fs
    .readdirSync(opts.out)
    .filter((n) => n.startsWith(`${config.packageName}-`) && n.endsWith('.tgz'))) {
    fs.rmSync(path.join(opts.out, old));
  }
  const started = Date.now();
  const built = fs.mkdtempSync(path.join(os.tmpdir(), 'mna-build-'));
  const report = [];
  try {
    const env =
      !opts.prebuilt && wanted.some((t) => t.platform === 'linux')
        ? { ...process.env, PATH: crossPath() }
        : process.env;
    for (const target of wanted) {
      const t0 = Date.now();
      const node = opts.prebuilt
        ? path.join(ROOT, `${config.binaryName}.${target.platformArchABI}.node`)
        : build(target, host, path.join(built, target.platformArchABI), env);
      if (!fs.existsSync(node)) throw new Error(`${node} is missing: run \`npm run build\` first`);
      const facts = checkBinary(node, target);
      const loaded = target === host;
      if (loaded) loadForReal(node);
      const tarball = packPlatform(config, target, node, opts.out);
      report.push(
        `${path.basename(tarball)}: ${facts}${loaded ? ', loaded by this Node' : ', not loadable here'}` +
          (opts.prebuilt ? '' : ` (built in ${((Date.now() - t0) / 1000).toFixed(0)} s)`),
      );
    }
    report.unshift(
      `${path.basename(packMain(config, opts.out))}: JavaScript and types, optionalDependencies on ${config.targets.length} platform packages`,
    );
  } finally {
    fs.rmSync(built, { recursive: true, force: true });
  }
  console.log(
    `\npacked into ${opts.out} in ${((Date.now() - started) / 1000).toFixed(0)} s:\n  ${report.join('\n  ')}`,
  );
}

main().catch((e) => {
  console.error(`pack: ${e.message}`);
  process.exit(1);
});
