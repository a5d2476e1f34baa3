// @module rewards/math-verify/worker-entry
// Worker thread entry for VerifierPool. In the compiled package (dist/) the worker body is the
// plain JavaScript file beside this one. From the TypeScript sources a worker does not inherit a
// loader registered through tsx's API (bin/gpg-rl.mjs does `register()`), so this file registers
// tsx itself and then loads the TypeScript body. Under `node --import tsx` the second registration
// is harmless.
import { existsSync } from 'node:fs';
import { fileURLToPath } from 'node:url';

const compiled = new URL('./worker.js', import.meta.url);
if (existsSync(fileURLToPath(compiled))) {
  await import(compiled.href);
} else {
  const { register } = await import('tsx/esm/api');
  register();
  await import('./worker.ts');
}
