#!/usr/bin/env node
'use strict';
// `npm run lint`'s module-graph check: in every crate of the workspace, which module uses which,
// and no import circle. A module is a file (`lib.rs` is the crate root, `a/mod.rs` and `a.rs` are
// `a`); it uses another when it names a path into it (`crate::…`, `super::…`, `self::…`, in a
// `use` or inline). A name a parent re-exports (`pub use child::Name`) counts as the child's, so
// `use super::Stamp` in `fs/read.rs` is an edge to `fs/stamp.rs`, not to `fs/mod.rs`. `mod x;` is
// no edge, nor is anything inside a `#[cfg(test)]` module.
//
//   node scripts/module-graph.js            check; exit 1 and print every circle found
//   node scripts/module-graph.js --print    also print each crate's edges

const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const CRATES = path.join(ROOT, 'crates');

/** Source without comments, string and char literals (their text could look like paths). */
function stripNoise(src) {
  let out = '';
  let i = 0;
  while (i < src.length) {
    const c = src[i];
    const next = src[i + 1];
    if (c === '/' && next === '/') {
      while (i < src.length && src[i] !== '\n') i++;
    } else if (c === '/' && next === '*') {
      let depth = 1;
      i += 2;
      while (i < src.length && depth > 0) {
        if (src[i] === '/' && src[i + 1] === '*') {
          depth++;
          i += 2;
        } else if (src[i] === '*' && src[i + 1] === '/') {
          depth--;
          i += 2;
        } else i++;
      }
    } else if (c === 'r' && (next === '"' || (next === '#' && /^r#+"/.test(src.slice(i, i + 10))))) {
      const hashes = /^r(#*)"/.exec(src.slice(i))[1];
      const end = `"${hashes}`;
      const close = src.indexOf(end, i + 2 + hashes.length);
      i = close < 0 ? src.length : close + end.length;
      out += '""';
    } else if (c === '"') {
      i++;
      while (i < src.length && src[i] !== '"') i += src[i] === '\\' ? 2 : 1;
      i++;
      out += '""';
    } else if (c === "'" && /^'(\\.[^']*|[^\\'])'/.test(src.slice(i, i + 12))) {
      i += /^'(\\.[^']*|[^\\'])'/.exec(src.slice(i, i + 12))[0].length;
      out += "' '";
    } else {
      out += c;
      i++;
    }
  }
  return out;
}

/** Drops `#[cfg(test)]` (and `#[cfg(all(test, …))]`) modules: a test module's `use super::*` is no edge. */
function stripTests(src) {
  let out = src;
  for (let guard = 0; guard < 1000; guard++) {
    const m = /#\[cfg\((?:test|all\(test\b[^\]]*\))\)\]\s*(pub(\([^)]*\))?\s+)?mod\s+\w+\s*\{/.exec(out);
    if (!m) return out;
    let depth = 0;
    let j = m.index + m[0].length - 1;
    for (; j < out.length; j++) {
      if (out[j] === '{') depth++;
      else if (out[j] === '}' && --depth === 0) break;
    }
    out = out.slice(0, m.index) + out.slice(j + 1);
  }
  throw new Error('too many test modules');
}

/** `a::{b, c::{d, e}}` → ['a::b', 'a::c::d', 'a::c::e'] (`self` in a group is the prefix itself). */
function expandUse(tree) {
  const s = tree.replace(/\s+/g, '');
  const brace = s.indexOf('{');
  if (brace < 0) return [s.replace(/::self$/, '').replace(/\bas\w+$/, '')];
  const prefix = s.slice(0, brace);
  const inner = s.slice(brace + 1, s.lastIndexOf('}'));
  const parts = [];
  let depth = 0;
  let start = 0;
  for (let i = 0; i <= inner.length; i++) {
    const ch = inner[i];
    if (ch === '{') depth++;
    else if (ch === '}') depth--;
    else if ((ch === ',' || i === inner.length) && depth === 0) {
      const part = inner.slice(start, i);
      if (part) parts.push(part);
      start = i + 1;
    }
  }
  return parts.flatMap((p) => (p === 'self' ? [prefix.replace(/::$/, '')] : expandUse(prefix + p)));
}

function modulesOf(srcDir) {
  const mods = new Map(); // module path ('' for the root) → { file, src }
  const walk = (dir, prefix) => {
    for (const ent of fs.readdirSync(dir, { withFileTypes: true })) {
      const full = path.join(dir, ent.name);
      if (ent.isDirectory()) walk(full, prefix ? `${prefix}::${ent.name}` : ent.name);
      else if (ent.name.endsWith('.rs')) {
        const stem = ent.name.slice(0, -3);
        const name =
          stem === 'lib' || stem === 'mod' || stem === 'main' ? prefix : prefix ? `${prefix}::${stem}` : stem;
        mods.set(name, { file: path.relative(ROOT, full), src: stripTests(stripNoise(fs.readFileSync(full, 'utf8'))) });
      }
    }
  };
  walk(srcDir, '');
  return mods;
}

function parentOf(mod) {
  const i = mod.lastIndexOf('::');
  return i < 0 ? '' : mod.slice(0, i);
}

function graphOf(srcDir) {
  const mods = modulesOf(srcDir);
  // Per module, the names it re-exports and the path each comes from.
  const reexports = new Map();
  const uses = new Map();
  for (const [mod, { src }] of mods) {
    const paths = [];
    const exported = new Map();
    for (const m of src.matchAll(/\b(pub(\([^)]*\))?\s+)?use\s+([^;]+);/g)) {
      for (const p of expandUse(m[3])) {
        paths.push(p);
        if (m[1]) {
          const alias = /as\s*(\w+)$/.exec(m[3]);
          exported.set(alias ? alias[1] : p.split('::').pop(), p);
        }
      }
    }
    for (const m of src.matchAll(/\b(?:crate|super|self)(?:::\w+)+/g)) paths.push(m[0]);
    reexports.set(mod, exported);
    uses.set(mod, paths);
  }
  /** The module a path from `mod` lands in, following re-exports of a final item name. */
  const resolve = (mod, p, seen = 0) => {
    const segs = p.split('::');
    let base;
    if (segs[0] === 'crate') base = '';
    else if (segs[0] === 'self') base = mod;
    else if (segs[0] === 'super') base = parentOf(mod);
    // `use child::…` (2018 paths)
    else if (mods.has(mod ? `${mod}::${segs[0]}` : segs[0])) base = mod;
    else return null; // another crate, or std
    let i = base === mod && segs[0] !== 'self' ? 0 : 1;
    while (segs[i] === 'super') {
      base = parentOf(base);
      i++;
    }
    let at = base;
    for (; i < segs.length; i++) {
      const next = at ? `${at}::${segs[i]}` : segs[i];
      if (mods.has(next)) at = next;
      else {
        const via = reexports.get(at)?.get(segs[i]);
        if (via && seen < 16) {
          const target = resolve(at, via, seen + 1);
          if (target !== null) return target;
        }
        break;
      }
    }
    return at;
  };
  const edges = new Map();
  for (const [mod, paths] of uses) {
    const to = new Set();
    for (const p of paths) {
      const t = resolve(mod, p);
      if (t !== null && t !== mod) to.add(t);
    }
    edges.set(mod, to);
  }
  return { mods, edges };
}

/** Strongly connected components with more than one module (Tarjan), each a circle. */
function circles(edges) {
  let index = 0;
  const idx = new Map();
  const low = new Map();
  const stack = [];
  const on = new Set();
  const found = [];
  const visit = (v) => {
    idx.set(v, index);
    low.set(v, index++);
    stack.push(v);
    on.add(v);
    for (const w of edges.get(v) ?? []) {
      if (!idx.has(w)) {
        visit(w);
        low.set(v, Math.min(low.get(v), low.get(w)));
      } else if (on.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
    }
    if (low.get(v) === idx.get(v)) {
      const scc = [];
      let w;
      do {
        w = stack.pop();
        on.delete(w);
        scc.push(w);
      } while (w !== v);
      if (scc.length > 1) found.push(scc.sort());
    }
  };
  for (const v of edges.keys()) if (!idx.has(v)) visit(v);
  return found;
}

function main() {
  const print = process.argv.includes('--print');
  let bad = 0;
  for (const crate of fs.readdirSync(CRATES).sort()) {
    const srcDir = path.join(CRATES, crate, 'src');
    if (!fs.existsSync(srcDir)) continue;
    const { mods, edges } = graphOf(srcDir);
    const name = (m) => mods.get(m)?.file ?? m;
    if (print) {
      for (const [m, to] of [...edges].sort()) {
        if (to.size) console.log(`${name(m)} -> ${[...to].sort().map(name).join(', ')}`);
      }
    }
    for (const scc of circles(edges)) {
      bad++;
      console.error(`module-graph: import circle in crates/${crate}:`);
      for (const m of scc) {
        const into = [...edges.get(m)].filter((t) => scc.includes(t)).map(name);
        console.error(`  ${name(m)} uses ${into.join(', ')}`);
      }
    }
    if (print || bad === 0) console.log(`module-graph: crates/${crate}: ${mods.size} modules, no circle`);
  }
  if (bad) {
    console.error('module-graph: a module imports downward only; move what both sides need into a module below them.');
    process.exit(1);
  }
}

if (require.main === module) main();
module.exports = { graphOf, circles, expandUse, stripNoise };
