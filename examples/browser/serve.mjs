#!/usr/bin/env node
// Serves dist/ on loopback, cross-origin isolated (COOP same-origin, COEP require-corp), which the
// page needs: the training worker blocks on the GPU worker through SharedArrayBuffer + Atomics.wait.
//   node serve.mjs [--port 8080] [--build] [--warmstart DIR]   then open http://127.0.0.1:8080/
// --warmstart DIR serves a warm-start model folder at /warmstart/: open /?warmstart=/warmstart/ to start from it.
import { createServer } from 'node:http';
import { readFile } from 'node:fs/promises';
import { dirname, extname, join, normalize } from 'node:path';
import { fileURLToPath } from 'node:url';

const here = dirname(fileURLToPath(import.meta.url));
const TYPES = {
  '.html': 'text/html; charset=utf-8',
  '.js': 'text/javascript; charset=utf-8',
  '.map': 'application/json',
  '.css': 'text/css',
};

/**
 * Starts the server on 127.0.0.1 (port 0: any free one); returns { url, close }. `mounts` maps URL
 * prefixes to folders (e.g. { '/warmstart/': a warm-start model folder }).
 */
export async function serve(root = join(here, 'dist'), port = 0, mounts = {}) {
  const server = createServer(async (req, res) => {
    let path = normalize(decodeURIComponent(new URL(req.url ?? '/', 'http://x').pathname));
    let base = root;
    for (const [prefix, dir] of Object.entries(mounts))
      if (path.startsWith(prefix)) [base, path] = [dir, path.slice(prefix.length - 1)];
    const file = join(base, path.endsWith('/') ? join(path, 'index.html') : path);
    const headers = {
      'cross-origin-opener-policy': 'same-origin',
      'cross-origin-embedder-policy': 'require-corp',
      'cache-control': 'no-store',
    };
    try {
      if (!file.startsWith(base)) throw new Error('outside');
      const body = await readFile(file);
      res.writeHead(200, { ...headers, 'content-type': TYPES[extname(file)] ?? 'application/octet-stream' });
      res.end(body);
    } catch {
      res.writeHead(404, { ...headers, 'content-type': 'text/plain' });
      res.end('not found');
    }
  });
  await new Promise((resolve) => server.listen(port, '127.0.0.1', resolve));
  const addr = server.address();
  return { url: `http://127.0.0.1:${addr.port}/`, close: () => new Promise((r) => server.close(r)) };
}

if (process.argv[1] === fileURLToPath(import.meta.url)) {
  const i = process.argv.indexOf('--port');
  if (process.argv.includes('--build')) await (await import('./build.mjs')).buildPage();
  const w = process.argv.indexOf('--warmstart');
  const mounts = w > 0 ? { '/warmstart/': process.argv[w + 1] } : {};
  const s = await serve(undefined, i > 0 ? Number(process.argv[i + 1]) : 8080, mounts);
  console.log(`serving ${join(here, 'dist')} at ${s.url} (Ctrl-C to stop)`);
}
