#!/usr/bin/env node
// Checks the import graph of the TypeScript sources: no import cycles, and no import that runs up the
// layers. Plain Node, no packages: it reads every .ts file under src/, coordinator/, cli/, bench/,
// e2e/ and scripts/, takes the relative specifiers of import/export ... from, import '...' and
// import('...') (type-only imports included: a type cycle is still a loop between files), and
// resolves them to .ts files.
//
// Layers, lowest first (a file may import its own layer and any lower one):
//   0 src/util
//   1 src/compress, src/data, src/optim, src/schema (the data shapes; may use the codec-name grammar)
//   2 src/gpu
//   3 src/model
//   4 src/protocol (low, but may use util, compress and the model's config types: see PROTOCOL_MAY_USE)
//   5 src/sync
//   6 src/worker, src/donor, src/console
//   7 coordinator, cli
//   8 bench, e2e, scripts, top-level files
// A codec family's GPU part (src/compress/<family>/<family>.gpu.ts) sits in its family's folder but in
// the gpu layer: it may use src/gpu, and no CPU codec may import it.
// Tests (*.test.ts, *.test-helper.ts) may import any layer (they compare against references from
// elsewhere, e.g. a GPT layout in a codec test); they still count for cycles. Files under src/ in no
// listed folder are reported and skipped for layering.
//
// Usage: node scripts/check-imports.mjs [root]   (root defaults to the repository). Exit 1 with the
// offending chains printed, 0 when clean.
import { readdirSync, readFileSync, statSync, existsSync } from 'node:fs';
import { join, relative, dirname, resolve, sep } from 'node:path';

const LAYERS = [
  ['src/util'],
  ['src/compress', 'src/data', 'src/optim', 'src/schema'],
  ['src/gpu'],
  ['src/model'],
  ['src/protocol'],
  ['src/sync'],
  ['src/worker', 'src/donor', 'src/console'],
  ['coordinator', 'cli'],
  ['bench', 'e2e', 'scripts'],
];
/** What src/protocol may import besides src/util and src/compress. */
const PROTOCOL_MAY_USE = ['src/model/model.ts', 'src/model/mlp-spec.ts', 'src/model/gpt-spec.ts'];
/** Known exceptions, each an importer and what it imports, printed as warnings rather than failing (none now). */
const ALLOWED = [];
const ROOTS = ['src', 'coordinator', 'cli', 'bench', 'e2e', 'scripts'];

const root = resolve(process.argv[2] ?? join(dirname(new URL(import.meta.url).pathname), '..'));
const rel = (p) => relative(root, p).split(sep).join('/');

const files = [];
function walk(dir) {
  for (const name of readdirSync(dir)) {
    if (name === 'node_modules' || name.startsWith('.') || name === 'dist') continue;
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p);
    else if (name.endsWith('.ts') && !name.endsWith('.d.ts')) files.push(p);
  }
}
for (const d of ROOTS) if (existsSync(join(root, d))) walk(join(root, d));
for (const name of readdirSync(root)) if (name.endsWith('.ts') && !name.endsWith('.d.ts')) files.push(join(root, name));

const SPEC = new RegExp(
  [
    /(?:\bimport|\bexport)\s[^'"`;]*?\bfrom\s*['"]([^'"]+)['"]/.source, // import/export ... from '...'
    /\bimport\s*['"]([^'"]+)['"]/.source, // import '...'
    /\bimport\(\s*['"]([^'"]+)['"]\s*\)/.source, // import('...')
  ].join('|'),
  'g',
);

function stripComments(text) {
  return text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`\\])\/\/.*$/gm, '$1');
}

function resolveImport(from, spec) {
  if (!spec.startsWith('.')) return null;
  const base = resolve(dirname(from), spec.replace(/\?.*$/, ''));
  for (const c of [base, `${base}.ts`, join(base, 'index.ts')]) {
    if (c.endsWith('.ts') && existsSync(c) && statSync(c).isFile()) return c;
  }
  if (base.endsWith('.js') && existsSync(`${base.slice(0, -3)}.ts`)) return `${base.slice(0, -3)}.ts`;
  return null; // not a .ts file (a .wgsl, .json, .css, ...)
}

const graph = new Map();
for (const f of files) {
  const deps = new Set();
  for (const m of stripComments(readFileSync(f, 'utf8')).matchAll(SPEC)) {
    const target = resolveImport(f, m[1] ?? m[2] ?? m[3]);
    if (target) deps.add(rel(target));
  }
  graph.set(rel(f), [...deps].sort());
}

const GPU_LAYER = LAYERS.findIndex((l) => l.includes('src/gpu'));

function layerOf(path) {
  if (path.startsWith('src/') && /\.gpu\.ts$/.test(path)) return GPU_LAYER;
  for (let i = 0; i < LAYERS.length; i++) {
    if (LAYERS[i].some((d) => path === d || path.startsWith(`${d}/`))) return i;
  }
  return path.includes('/') ? -1 : LAYERS.length - 1; // top-level files sit with the tools
}
const isTest = (p) => /\.test(-helper)?\.ts$/.test(p);
const dirOf = (p) =>
  /\.gpu\.ts$/.test(p) ? `${p} (gpu layer)` : (LAYERS.flat().find((d) => p.startsWith(`${d}/`)) ?? p);

const problems = [];
const warnings = [];
for (const [from, deps] of graph) {
  const lf = layerOf(from);
  if (lf < 0) {
    warnings.push(`${from}: in no layer (add its folder to LAYERS in scripts/check-imports.mjs)`);
    continue;
  }
  if (isTest(from)) continue;
  for (const to of deps) {
    const lt = layerOf(to);
    if (lt < 0) continue;
    const allowed = ALLOWED.some(([a, b]) => a === from && b === to);
    let bad = null;
    if (lt > lf) bad = `${dirOf(to)} (layer ${lt}) is above ${dirOf(from)} (layer ${lf})`;
    else if (dirOf(from) === 'src/protocol' && lt === LAYERS.findIndex((l) => l.includes('src/model'))) {
      const types = PROTOCOL_MAY_USE.join(', ');
      if (!PROTOCOL_MAY_USE.includes(to)) bad = `src/protocol may use only the model's config types (${types})`;
    }
    if (!bad) continue;
    if (allowed) warnings.push(`allowed for now: ${from} → ${to}: ${bad}`);
    else problems.push(`import up the layers: ${from} → ${to}: ${bad}`);
  }
}

// Cycles: Tarjan's strongly connected components, then one shortest loop through each.
let index = 0;
const idx = new Map();
const low = new Map();
const stack = [];
const onStack = new Set();
const sccs = [];
function strong(v) {
  idx.set(v, index);
  low.set(v, index++);
  stack.push(v);
  onStack.add(v);
  for (const w of graph.get(v) ?? []) {
    if (!graph.has(w)) continue;
    if (!idx.has(w)) {
      strong(w);
      low.set(v, Math.min(low.get(v), low.get(w)));
    } else if (onStack.has(w)) low.set(v, Math.min(low.get(v), idx.get(w)));
  }
  if (low.get(v) === idx.get(v)) {
    const scc = [];
    let w;
    do {
      w = stack.pop();
      onStack.delete(w);
      scc.push(w);
    } while (w !== v);
    if (scc.length > 1 || (graph.get(v) ?? []).includes(v)) sccs.push(scc);
  }
}
for (const v of [...graph.keys()].sort()) if (!idx.has(v)) strong(v);
for (const scc of sccs) {
  const inScc = new Set(scc);
  const start = scc.slice().sort()[0];
  // Breadth-first from start's successors back to start, inside the component.
  const prev = new Map([[start, null]]);
  const queue = [start];
  let chain = null;
  while (queue.length && !chain) {
    const v = queue.shift();
    for (const w of graph.get(v)) {
      if (!inScc.has(w)) continue;
      if (w === start) {
        chain = [start];
        for (let u = v; u !== start; u = prev.get(u)) chain.splice(1, 0, u);
        chain.push(start);
        break;
      }
      if (!prev.has(w)) {
        prev.set(w, v);
        queue.push(w);
      }
    }
  }
  problems.push(`import cycle: ${chain.join(' → ')}`);
}

for (const w of warnings) console.warn(`warning: ${w}`);
if (problems.length) {
  for (const p of problems) console.error(p);
  console.error(`check-imports: ${problems.length} problem(s) in ${graph.size} files`);
  process.exit(1);
}
console.log(`check-imports: ${graph.size} files, no cycles, no imports up the layers`);
