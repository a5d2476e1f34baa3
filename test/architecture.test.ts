/**
 * The layer rules of docs/architecture.md, checked on the source tree:
 *  - no import cycle among src/ modules (static value imports, re-exports and dynamic import()
 *    count; `import type` does not, since it leaves no trace at run time; `.js` specifiers resolve
 *    to their `.ts` files);
 *  - only src/tensor and src/backend import the CPU backend or the addon loader, or touch a
 *    tensor's device buffer;
 *  - no `loss_type` comparison outside src/rl/algorithms.
 */
import { test } from 'node:test';
import assert from 'node:assert/strict';
import { existsSync, readdirSync, readFileSync, statSync } from 'node:fs';
import { dirname, join, relative, resolve } from 'node:path';

const root = resolve(dirname(new URL(import.meta.url).pathname), '..');
const src = join(root, 'src');

function walk(dir: string, out: string[] = []): string[] {
  for (const name of readdirSync(dir).sort()) {
    const p = join(dir, name);
    if (statSync(p).isDirectory()) walk(p, out);
    else if (/\.(ts|mjs)$/.test(name)) out.push(p);
  }
  return out;
}

/** Value imports of a module: specifiers of import/export-from (not type-only) and import(). */
export function valueImports(text: string): string[] {
  // drop comments so commented-out imports do not count
  const code = text.replace(/\/\*[\s\S]*?\*\//g, '').replace(/(^|[^:'"`])\/\/.*$/gm, '$1');
  const out: string[] = [];
  const stat = /(?:^|\n)\s*(import|export)\s+(type\s+)?([^'";]*?)\s*from\s*['"]([^'"]+)['"]/g;
  for (let m; (m = stat.exec(code));) if (!m[2]) out.push(m[4]!);
  const bare = /(?:^|\n)\s*import\s+['"]([^'"]+)['"]/g;
  for (let m; (m = bare.exec(code));) out.push(m[1]!);
  const dyn = /\bimport\(\s*['"]([^'"]+)['"]\s*\)/g;
  for (let m; (m = dyn.exec(code));) out.push(m[1]!);
  return out;
}

function resolveSpec(from: string, spec: string): string | null {
  if (!spec.startsWith('.')) return null;
  const base = resolve(dirname(from), spec);
  for (const c of [
    base,
    base.replace(/\.js$/, '.ts'),
    base.replace(/\.mjs$/, '.mts'),
    `${base}.ts`,
    join(base, 'index.ts'),
  ]) {
    if (existsSync(c) && statSync(c).isFile()) return c;
  }
  return null;
}

const files = walk(src);
const graph = new Map(
  files.map((f) => [
    f,
    valueImports(readFileSync(f, 'utf8'))
      .map((s) => resolveSpec(f, s))
      .filter((x): x is string => x !== null),
  ]),
);
const rel = (f: string) => relative(root, f);

test('the import checker sees value, re-export, dynamic and .js imports but not type-only ones', () => {
  const t = `import { a } from './a.ts';\nimport type { B } from './b.ts';\nexport { c } from './c.js';\nexport type { D } from './d.ts';\nconst e = await import('./e.ts');\n// import { f } from './f.ts';\nimport './g.ts';`;
  assert.deepEqual(valueImports(t).sort(), ['./a.ts', './c.js', './e.ts', './g.ts']);
});

test('no import cycle in src/', () => {
  const state = new Map<string, 0 | 1 | 2>();
  const stack: string[] = [];
  const cycles: string[] = [];
  const visit = (f: string) => {
    state.set(f, 1);
    stack.push(f);
    for (const g of graph.get(f) ?? []) {
      if (state.get(g) === 1) cycles.push([...stack.slice(stack.indexOf(g)), g].map(rel).join(' → '));
      else if (!state.get(g)) visit(g);
    }
    stack.pop();
    state.set(f, 2);
  };
  for (const f of files) if (!state.get(f)) visit(f);
  assert.deepEqual(cycles, [], `import cycles:\n${cycles.join('\n')}`);
});

test('only src/tensor and src/backend import the cpu backend or the addon, or touch device buffers', () => {
  const inside = (f: string) => f.startsWith(join(src, 'tensor') + '/') || f.startsWith(join(src, 'backend') + '/');
  const bad: string[] = [];
  for (const f of files) {
    if (inside(f)) continue;
    for (const g of graph.get(f) ?? [])
      if (g.startsWith(join(src, 'backend', 'cpu') + '/')) bad.push(`${rel(f)} imports ${rel(g)}`);
    const text = readFileSync(f, 'utf8');
    if (/\.deviceBuffer\b|\bDeviceBuffer\b|\.storage\b|NativeStorage/.test(text))
      bad.push(`${rel(f)} touches a device buffer or storage`);
  }
  assert.deepEqual(bad, []);
});

test('no loss_type comparison outside src/rl/algorithms', () => {
  const algos = join(src, 'rl', 'algorithms') + '/';
  const bad: string[] = [];
  const cmp =
    /(loss_type|lossType)\s*[!=]==|[!=]==\s*\S*\.(loss_type|lossType)\b|switch\s*\(\s*[\w.]*(loss_type|lossType)/;
  for (const f of files) {
    if (f.startsWith(algos)) continue;
    readFileSync(f, 'utf8')
      .split('\n')
      .forEach((line, i) => {
        if (cmp.test(line)) bad.push(`${rel(f)}:${i + 1}: ${line.trim()}`);
      });
  }
  assert.deepEqual(bad, []);
});
