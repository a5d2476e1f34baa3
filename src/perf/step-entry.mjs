// @module perf/step-entry
// The fresh process behind `step_peak_rss_gb` (perf/step.ts, measureStepInChild): registers tsx
// (a spawned Node does not inherit bin/gpg-rl.mjs's loader), runs one GPG step, prints its report.
import { register } from 'tsx/esm/api';

register();
const { stepMain } = await import('./step.ts');
await stepMain(process.argv.slice(2));
