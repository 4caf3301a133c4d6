'use strict';
// sdk.d.ts is written by hand: this checks it against the implementation.
// - The values it declares are exactly those sdk.js exports, and sdk.mjs names the same ones
//   (read with the TypeScript compiler API, so a declared function that does not exist, or an
//   export without a declaration, fails here).
// - A strict TypeScript host compiles the README's examples: __test__/fixtures/types/probe.mts,
//   and every TypeScript block of README.md (written to fixtures/types/readme/, once per pinned
//   SDK: its `@anthropic-ai/claude-agent-sdk` import becomes ../sdk-seed.mjs, then
//   ../sdk-newest.mjs), `tsc --strict` with module nodenext, importing this package by its name
//   (self-reference through package.json `exports`) and both pinned Agent SDKs' own types, from
//   the stacks' installs (support/stacks.js, fetched on first use: the SDKs are no
//   devDependencies, as 0.3.x installs its 400 MB native Claude Code with it). One tsc run.
//
//   node --test __test__/unit/sdk-types.test.js

const { describe, it, before } = require('node:test');
const fs = require('node:fs');
const assert = require('node:assert/strict');
const path = require('node:path');
const { spawnSync } = require('node:child_process');
const { pathToFileURL } = require('node:url');
const { readmeExamples } = require('../helpers/readme-examples.js');

const ROOT = path.resolve(__dirname, '..', '..');
const TS_DIR = path.join(ROOT, 'node_modules', 'typescript');
const ts = require(TS_DIR);
const PROBE = path.join(__dirname, '..', 'fixtures', 'types');
const { SEED, stackByName, ensureStacks, STACK_HOOK_TIMEOUT_MS } = require('../../support/stacks.js');
const { tmp } = require('../helpers/tmp.js');

/**
 * The probe's tsconfig, extended with where its two SDK specifiers live: the seed's SDK under
 * its own name (as a host imports it), the current stack's as `claude-agent-sdk-<version>`.
 */
function probeTsconfig(dir) {
  const current = stackByName('current').agentSdk;
  const base = JSON.parse(fs.readFileSync(path.join(PROBE, 'tsconfig.json'), 'utf8'));
  const file = path.join(dir, 'tsconfig.json');
  fs.writeFileSync(
    file,
    JSON.stringify({
      extends: path.join(PROBE, 'tsconfig.json'),
      compilerOptions: {
        paths: {
          '@anthropic-ai/claude-agent-sdk': [path.join(SEED.agentSdk.packageDir, 'sdk.d.ts')],
          [`claude-agent-sdk-${current.version}`]: [path.join(current.packageDir, 'sdk.d.ts')],
        },
        typeRoots: [path.join(ROOT, 'node_modules', '@types')],
      },
      // The base's own files, resolved from here (an extending config replaces them).
      files: base.files.map((f) => path.join(PROBE, f)),
      include: (base.include ?? []).map((f) => path.join(PROBE, f)),
    }),
  );
  return file;
}

const README_DIR = path.join(PROBE, 'readme'); // generated, git-ignored

/** README.md's TypeScript blocks as modules of the probe, one per pinned SDK. Returns their files. */
function writeReadmeModules() {
  fs.rmSync(README_DIR, { recursive: true, force: true });
  fs.mkdirSync(README_DIR);
  const files = [];
  for (const e of readmeExamples().filter((x) => x.lang === 'ts')) {
    for (const sdk of ['seed', 'newest']) {
      const code = e.code.replace(/(['"])@anthropic-ai\/claude-agent-sdk\1/g, `'../sdk-${sdk}.mjs'`);
      const file = path.join(README_DIR, `${e.name}.${sdk}.mts`);
      fs.writeFileSync(
        file,
        `// README.md:${e.line}, example "${e.name}", with the ${sdk} SDK (generated)\n${code}\nexport {};\n`,
      );
      files.push(file);
    }
  }
  return files;
}

/** The names of the values (functions, classes, constants) a declaration file exports. */
function declaredValues(file) {
  const program = ts.createProgram([file], { noEmit: true, skipLibCheck: true, types: [] });
  const checker = program.getTypeChecker();
  const source = program.getSourceFile(file);
  const moduleSymbol = checker.getSymbolAtLocation(source);
  assert.ok(moduleSymbol, `${file} is not a module`);
  return checker
    .getExportsOfModule(moduleSymbol)
    .filter((s) => {
      const target = s.flags & ts.SymbolFlags.Alias ? checker.getAliasedSymbol(s) : s;
      return (target.flags & ts.SymbolFlags.Value) !== 0;
    })
    .map((s) => s.getName())
    .sort();
}

describe('sdk.d.ts matches sdk.js', () => {
  it('declares exactly the values sdk.js exports, and sdk.mjs exports the same names', async () => {
    const declared = declaredValues(path.join(ROOT, 'sdk.d.ts'));
    const cjs = Object.keys(require(path.join(ROOT, 'sdk.js'))).sort();
    const esm = Object.keys(await import(pathToFileURL(path.join(ROOT, 'sdk.mjs')).href))
      .filter((k) => k !== 'default')
      .sort();
    assert.deepEqual(declared, cjs, 'sdk.d.ts vs sdk.js');
    assert.deepEqual(esm, cjs, 'sdk.mjs vs sdk.js');
  });

  before(() => ensureStacks(), { timeout: STACK_HOOK_TIMEOUT_MS });

  it('a strict TypeScript host compiles the README examples against both SDKs without a cast', (t) => {
    const readme = writeReadmeModules();
    assert.ok(readme.length >= 2, "README.md's TypeScript examples");
    const tsconfig = probeTsconfig(tmp(t, 'mna-tsc-probe-'));
    const r = spawnSync(process.execPath, [path.join(TS_DIR, 'bin', 'tsc'), '-p', tsconfig, '--pretty', 'false'], {
      cwd: ROOT,
      encoding: 'utf8',
      timeout: 300_000,
    });
    assert.equal(r.error, undefined, `tsc did not run: ${r.error}`);
    assert.equal(r.status, 0, `tsc --strict on fixtures/types/ failed:\n${r.stdout}${r.stderr}`);
  });
});
