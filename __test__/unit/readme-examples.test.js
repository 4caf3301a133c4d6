'use strict';
// Every code example of README.md is run by a test (issue 21: the README's SDK snippet passed the
// whole query() argument to prepareQuery, so its hooks never reached the SDK and its purge ran in
// the wrong config dir, and no test noticed). Blocks are found by their `<!-- example: NAME -->`
// markers (__test__/helpers/readme-examples.js). Here: every JavaScript or TypeScript block has
// a marker and is run somewhere, and the examples that need no Claude Code run under node, each in
// a child process whose HOME and CLAUDE_CONFIG_DIR are a temp dir. The TypeScript ones are compiled
// by unit/sdk-types.test.js; the ones that need the real Claude Code run in
// e2e/readme-examples.test.js.
//
//   node --test __test__/unit/readme-examples.test.js

const { describe, it } = require('node:test');
const assert = require('node:assert/strict');
const fs = require('node:fs');
const path = require('node:path');
const { spawnSync } = require('node:child_process');

const ROOT = path.resolve(__dirname, '..', '..');
const HELPER = path.join(__dirname, '..', 'helpers', 'readme-examples.js');
const { E2E_EXAMPLES, readmeExamples } = require(HELPER);
const { tmp } = require('../helpers/tmp.js');

/** The examples run here; each may check what it left behind in its config dir. */
const UNIT = {
  'quick-start': () => {},
  'list-needs-auth': () => {},
  'on-auth-changed': () => {},
  diagnose: () => {},
};

// A child's runner: the example as an async function body, `require` and `__import` resolving
// from the package root (so `mcp-needs-auth` is this checkout, by package.json self-reference).
const RUNNER = `
  const path = require('node:path');
  const { createRequire } = require('node:module');
  const { pathToFileURL } = require('node:url');
  const { runExample } = require(${JSON.stringify(HELPER)});
  const req = createRequire(path.join(${JSON.stringify(ROOT)}, 'readme-example.js'));
  const example = JSON.parse(process.env.README_EXAMPLE);
  runExample(example, {
    require: req,
    __import: (s) => import(pathToFileURL(req.resolve(s)).href),
  }).then(
    () => console.log('example ran'),
    (err) => {
      console.error(err && err.stack ? err.stack : err);
      process.exitCode = 1;
    },
  );`;

describe('README.md examples', () => {
  const examples = readmeExamples();

  it('every JavaScript or TypeScript block has a marker and is run by a test', () => {
    assert.ok(examples.length >= 7, `found ${examples.length} examples`);
    for (const e of examples) {
      if (e.lang === 'ts') continue; // compiled by unit/sdk-types.test.js, all of them
      assert.ok(
        e.name in UNIT || E2E_EXAMPLES.includes(e.name),
        `README.md:${e.line}: example "${e.name}" is run by no test (add it to UNIT here or to E2E_EXAMPLES)`,
      );
    }
    for (const name of [...Object.keys(UNIT), ...E2E_EXAMPLES]) {
      assert.ok(
        examples.some((e) => e.name === name && e.lang === 'js'),
        `no JavaScript example "${name}" in README.md`,
      );
    }
    assert.ok(
      examples.some((e) => e.lang === 'ts'),
      'a TypeScript example',
    );
  });

  for (const [name, check] of Object.entries(UNIT)) {
    it(`runs "${name}" under node against a temp config dir`, (t) => {
      const home = tmp(t, 'mna-readme-');
      const configDir = path.join(home, '.claude');
      fs.mkdirSync(configDir);
      const example = examples.find((e) => e.name === name);
      const r = spawnSync(process.execPath, ['-e', RUNNER], {
        cwd: home,
        encoding: 'utf8',
        timeout: 60_000,
        env: { ...process.env, HOME: home, CLAUDE_CONFIG_DIR: configDir, README_EXAMPLE: JSON.stringify(example) },
      });
      assert.equal(r.error, undefined);
      assert.equal(r.status, 0, `README.md:${example.line} "${name}" failed:\n${r.stderr}`);
      assert.match(r.stdout, /example ran/);
      assert.doesNotMatch(r.stderr, /Warning/, r.stderr);
      check({ configDir, stdout: r.stdout });
    });
  }
});
