// Ad-hoc: packed generation GEMM (fp32 / bf16 panels) vs the training GEMM path, GFLOP/s by M, interleaved.
import { Tensor } from '../src/tensor/tensor.ts';
import { gemmInto } from '../src/tensor/ops/matmul.ts';
const shapes = [
  [896, 4864],
  [4864, 896],
  [896, 151936],
];
const Ms = (process.argv[2] ?? '1,16,64,256').split(',').map(Number);
for (const [K, N] of shapes) {
  const W = Tensor.full([N!, K!], 0.01).keep();
  for (const M of Ms) {
    const x = Tensor.full([M, K!], 0.5).keep();
    const y = Tensor.empty([M, N!]).keep();
    const variants: Record<string, () => void> = {
      train: () => gemmInto(y, x, W, { M, N: N!, K: K!, transB: true, weight: true }),
      packed32: () => gemmInto(y, x, W, { M, N: N!, K: K!, transB: true, weight: true, packed: 'float32' }),
      packed16: () => gemmInto(y, x, W, { M, N: N!, K: K!, transB: true, weight: true, packed: 'bfloat16' }),
    };
    const best: Record<string, number> = {};
    for (let r = 0; r < 5; r++)
      for (const [k, f] of Object.entries(variants)) {
        f();
        const t = performance.now();
        const reps = Math.max(1, Math.round(2e9 / (2 * M * N! * K!)));
        for (let i = 0; i < reps; i++) f();
        const g = (2 * M * N! * K! * reps) / ((performance.now() - t) / 1000) / 1e9;
        best[k] = Math.max(best[k] ?? 0, g);
      }
    console.log(
      `K ${K} N ${N} M ${M}: ` +
        Object.entries(best)
          .map(([k, g]) => `${k} ${g.toFixed(1)}`)
          .join('  ') +
        ' GFLOP/s',
    );
    x.dispose();
    y.dispose();
  }
  W.backend.releasePackedWeights();
  W.dispose();
}
