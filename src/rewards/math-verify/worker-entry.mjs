// @module rewards/math-verify/worker-entry
// Worker thread entry for VerifierPool. A worker does not inherit a loader registered through
// tsx's API (bin/gpg-rl.mjs does `register()`), so this plain .mjs registers tsx itself and then
// loads the TypeScript worker body. Under `node --import tsx` the second registration is harmless.
import { register } from 'tsx/esm/api';

register();
await import('./worker.ts');
