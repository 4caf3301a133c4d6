'use strict';
// README.md's code examples, as the tests run them. Every fenced JavaScript or TypeScript block
// of the README is preceded by a marker line `<!-- example: NAME -->`; the tests find the blocks
// by it:
//   - JavaScript blocks that need no Claude Code run under node in __test__/unit/readme-examples.test.js;
//   - JavaScript blocks that need the real Claude Code (E2E_EXAMPLES) run on every stack in
//     __test__/e2e/readme-examples.test.js;
//   - TypeScript blocks are compiled by __test__/unit/sdk-types.test.js's one strict tsc run,
//     against both pinned SDKs' own types (written to fixtures/types/readme/ first).
// unit/readme-examples.test.js fails on a block without a marker, and on a JavaScript example
// that neither suite runs.

const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..', '..');
const README = path.join(ROOT, 'README.md');

const JS = new Set(['js', 'javascript', 'mjs', 'cjs']);
const TS = new Set(['ts', 'typescript', 'mts']);

/** The JavaScript examples that need the real Claude Code: run by e2e/readme-examples.test.js. */
const E2E_EXAMPLES = Object.freeze(['agent-sdk', 'sign-in']);

/**
 * `[{ name, lang: 'js' | 'ts', code, line }]` for README's JavaScript and TypeScript blocks.
 * Throws for a block without its marker, and for a name used twice.
 */
function readmeExamples(file = README) {
  const lines = fs.readFileSync(file, 'utf8').split('\n');
  const out = [];
  for (let i = 0; i < lines.length; i++) {
    const open = /^```\s*([\w-]*)\s*$/.exec(lines[i]);
    if (!open) continue;
    let end = i + 1;
    while (end < lines.length && !/^```\s*$/.test(lines[end])) end++;
    const lang = open[1].toLowerCase();
    if (JS.has(lang) || TS.has(lang)) {
      let j = i - 1;
      while (j >= 0 && lines[j].trim() === '') j--;
      const marker = j >= 0 ? /^<!--\s*example:\s*([\w-]+)\s*-->$/.exec(lines[j].trim()) : null;
      if (!marker) {
        throw new Error(`README.md:${i + 1}: a ${lang} block without an <!-- example: NAME --> marker before it`);
      }
      if (out.some((e) => e.name === marker[1])) throw new Error(`README.md:${j + 1}: example "${marker[1]}" twice`);
      out.push({
        name: marker[1],
        lang: JS.has(lang) ? 'js' : 'ts',
        code: lines.slice(i + 1, end).join('\n'),
        line: i + 1,
      });
    }
    i = end;
  }
  return out;
}

/**
 * An example's code as the body of an async function: its static imports become awaited calls of
 * `__import(specifier)` (single-line `import { a, b as c } from 'x'`, `import x from 'x'`,
 * `import * as x from 'x'`), so that a runner can hand it the modules and the free names it uses.
 */
function asFunctionBody(code) {
  return code.replace(
    /^import\s+(?:(\{[^}]*\})|\*\s+as\s+(\w+)|(\w+))\s+from\s+(['"][^'"]+['"]);?\s*$/gm,
    (_m, named, ns, def, spec) => {
      if (named) return `const ${named.replace(/\s+as\s+/g, ': ')} = await __import(${spec});`;
      if (ns) return `const ${ns} = await __import(${spec});`;
      return `const { default: ${def} } = await __import(${spec});`;
    },
  );
}

/** Runs an example with `bindings` (name -> value) as its free names, `__import` among them. */
function runExample(example, bindings) {
  const AsyncFunction = Object.getPrototypeOf(async () => {}).constructor;
  const names = Object.keys(bindings);
  const fn = new AsyncFunction(...names, asFunctionBody(example.code));
  return fn(...names.map((n) => bindings[n]));
}

module.exports = { README, E2E_EXAMPLES, readmeExamples, asFunctionBody, runExample };
