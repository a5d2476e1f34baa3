#!/usr/bin/env node
// Bundles the page with esbuild into dist/: main.js (the page), train-worker.js (+ chunks: the
// training stack from ../../src on WebGPU) and gpu-worker.js (src/backend/webgpu/executor.mjs on
// navigator.gpu). The library's sources are imported by path; what the browser lacks is replaced:
// see browserShims below.
//   node build.mjs [--watch]
import { build, context } from 'esbuild';
import { copyFileSync, mkdirSync, readFileSync, readdirSync, rmSync, statSync } from 'node:fs';
import { dirname, join } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const out = join(here, 'dist');

const SRC = join(here, '..', '..', 'src');
const SHIMS = { path: 'node-path.ts', url: 'node-url.ts', os: 'node-os.ts' };

/** The names the library imports from a node built-in (every `import { … } from 'node:<mod>'` under src/). */
const importedNames = (() => {
  const byModule = new Map();
  const walk = (d) => {
    for (const n of readdirSync(d)) {
      const p = join(d, n);
      if (statSync(p).isDirectory()) walk(p);
      else if (/\.(ts|mjs)$/.test(n)) {
        const text = readFileSync(p, 'utf8');
        for (const m of text.matchAll(/import\s+(?!type\s)(?:[\w$]+\s*,\s*)?\{([^}]*)\}\s*from\s*'node:([\w/]+)'/g)) {
          const names = byModule.get(m[2]) ?? new Set();
          for (const part of m[1].split(',')) {
            const name = part
              .replace(/^\s*type\s+/, '')
              .split(/\s+as\s+/)[0]
              .trim();
            if (name && !/^type\s/.test(part.trim())) names.add(name);
          }
          byModule.set(m[2], names);
        }
      }
    }
  };
  walk(SRC);
  return byModule;
})();

/**
 * The browser's stand-ins for what the bundle imports from Node:
 *   node:path, node:url, node:os → small working shims (module-level code joins paths, checks endianness)
 *   other node:* built-ins      → a module whose every imported name throws when called, naming itself
 *                                  (file, process and worker-pool code the page never runs)
 *   src/backend/cpu/index.ts     → src/shims/cpu-backend.ts (the native addon)
 *   node:worker_threads in the device worker's bundle (`executorPort`) → src/shims/executor-port.ts
 */
function browserShims({ executorPort = false } = {}) {
  return {
    name: 'gpg-rl-browser-shims',
    setup(b) {
      b.onResolve({ filter: /^node:/ }, (a) => {
        const mod = a.path.slice(5);
        if (mod === 'worker_threads' && executorPort) return { path: join(here, 'src/shims/executor-port.ts') };
        if (SHIMS[mod]) return { path: join(here, 'src/shims', SHIMS[mod]) };
        return { path: mod, namespace: 'node-stub' };
      });
      b.onLoad({ filter: /.*/, namespace: 'node-stub' }, (a) => {
        const names = [...(importedNames.get(a.path) ?? [])];
        const fail = (n) =>
          `function ${n === 'default' ? '' : n}() { throw new Error('gpg-rl in the browser: node:${a.path} ${n}() is not available here'); }`;
        return {
          contents: [
            ...names.map((n) => `export const ${n} = ${fail(n)};`),
            `export default new Proxy({}, { get: (_t, p) => ${fail('default')} });`,
          ].join('\n'),
          loader: 'js',
        };
      });
      b.onResolve({ filter: /^\.\/cpu\/index\.ts$/ }, (a) =>
        a.importer.endsWith(join('src', 'backend', 'index.ts'))
          ? { path: join(here, 'src/shims/cpu-backend.ts') }
          : undefined,
      );
    },
  };
}

const common = {
  bundle: true,
  format: 'esm',
  platform: 'browser',
  target: 'es2022',
  sourcemap: true,
  logLevel: 'warning',
  // the library's conditional exports and `.ts` imports resolve to its sources
  conditions: ['gpg-rl-source'],
  // process.env reads at module level (the allocator's cache cap; GPG_RL_BACKEND: the default backend)
  define: {
    'process.env.GPG_RL_BACKEND': '"webgpu"',
    'process.env.GPG_RL_ALLOC_CACHE_MB': 'undefined',
  },
  banner: {
    js: 'var process = globalThis.process ?? { env: {}, argv: [], platform: "browser", versions: {} }; var setImmediate = globalThis.setImmediate ?? ((f, ...a) => setTimeout(f, 0, ...a));',
  },
};

const configs = [
  { ...common, entryPoints: { main: join(here, 'src/main.ts') }, outdir: out, plugins: [browserShims()] },
  {
    ...common,
    entryPoints: { 'train-worker': join(here, 'src/train-worker.ts') },
    outdir: out,
    splitting: true,
    chunkNames: 'chunks/[name]-[hash]',
    plugins: [browserShims()],
  },
  {
    ...common,
    entryPoints: { 'gpu-worker': join(here, 'src/gpu-worker.ts') },
    outdir: out,
    plugins: [browserShims({ executorPort: true })],
  },
];

export async function buildPage() {
  rmSync(out, { recursive: true, force: true });
  mkdirSync(out, { recursive: true });
  copyFileSync(join(here, 'index.html'), join(out, 'index.html'));
  for (const c of configs) await build(c);
  return out;
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  if (process.argv.includes('--watch')) {
    await buildPage();
    for (const c of configs) await (await context(c)).watch();
    console.log(`watching; output in ${out}`);
  } else {
    await buildPage();
    console.log(`built ${out}`);
  }
}
