/**
 * @module train/schedule
 * Learning-rate schedule (nanoGPT's get_lr, TRL names): 1) linear warmup from 0 over
 * ceil(warmup_ratio · total) steps (or `warmupSteps` when > 0: whole steps, or a ratio when in (0, 1),
 * as transformers' warmup_steps), 2) then constant, cosine decay to 0, or linear decay to 0.
 */
export function learningRateAt(
  step: number,
  totalSteps: number,
  o: { learningRate: number; warmupRatio: number; warmupSteps?: number; scheduler: 'constant' | 'cosine' | 'linear' },
): number {
  // step is 0-based: the lr used by the (step+1)-th optimizer update
  const ws = o.warmupSteps ?? 0;
  const warm = ws >= 1 ? Math.floor(ws) : ws > 0 ? Math.ceil(ws * totalSteps) : Math.ceil(o.warmupRatio * totalSteps);
  if (step < warm) return (o.learningRate * (step + 1)) / (warm + 1);
  if (o.scheduler === 'constant') return o.learningRate;
  const decaySteps = Math.max(1, totalSteps - warm);
  const progress = Math.min(1, (step - warm) / decaySteps);
  if (o.scheduler === 'linear') return o.learningRate * (1 - progress);
  return o.learningRate * 0.5 * (1 + Math.cos(Math.PI * progress));
}
