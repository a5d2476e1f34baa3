// The README's code example ("Reward functions from code"), as a script: test/readme.test.ts runs it
// against the sources, scripts/check-package.mjs against the packed tarball, so it works as written.
import { readFileSync } from 'node:fs';
import { join } from 'node:path';

/** The first ```js block after the "Reward functions from code" paragraph of README.md. */
export function readmeExample(root) {
  const text = readFileSync(join(root, 'README.md'), 'utf8');
  const at = text.indexOf('Reward functions from code');
  const m = at < 0 ? null : /```js\n([\s\S]*?)```/.exec(text.slice(at));
  if (!m) throw new Error('README.md: no ```js block after "Reward functions from code"');
  return m[1];
}
