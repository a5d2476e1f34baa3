// @module rewards/user-worker-entry
// Worker thread entry for a user reward (rewards/user.ts). A worker does not inherit the tsx
// loader the CLI registered, so this plain .mjs registers it (TypeScript reward modules), then
// loads the worker body.
import { register } from 'tsx/esm/api';

register();
await import('./user-worker.ts');
