/**
 * @module backend/cpu
 * The CPU backend: buffers are native storages of the C++ addon (native/binding.cc), kernels are
 * its op table. CPU-only policies live here, invisible to the layers above:
 *  - fp32 products run one GEMM whatever their row count (the packed GEMM, or packed_gemm for
 *    generation), both batch-invariant: a row's result does not depend on the other rows;
 *  - mixed precision casts fp32 GEMM operands to bf16 here, and keeps the bf16 copy of a weight
 *    until that buffer is next written (every write through this backend bumps its version);
 *    a weight being trained (`bTrained`) is cast per product instead and its kept copy dropped,
 *    so the copies (half the fp32 weights' bytes) do not add to the training step's peak;
 *  - an fp32 product with a bf16 operand (a frozen bf16 LoRA base) widens that operand for the
 *    one product;
 *  - generation products (GemmArgs.packed) read a copy of the weight packed for `packed_gemm`
 *    (panels of 16 outputs, fp32 or bf16), kept the same way until releasePackedWeights(); a bf16
 *    weight (frozen LoRA base) is packed from its exact fp32 widening, not widened per product.
 */
import { DTYPE_CODE, benchOp, native, nativeBuild, op, type NativeStorage } from './addon.ts';
import type {
  AllocatorStats,
  Backend,
  BackendBenchmarks,
  BackendInfo,
  DType,
  DeviceBuffer,
  GemmArgs,
} from '../types.ts';
import { checkGemm } from '../checks.ts';

class CpuBuffer implements DeviceBuffer {
  /** Bumped by every write through the backend (invalidates converted copies). */
  version = 0;
  /** bf16 copy of this (weight) buffer and the version it was made from. */
  bf16: { version: number; copy: CpuBuffer } | null = null;
  /** Generation copy packed for packed_gemm (GemmArgs.packed) and the version it was made from. */
  packed: { version: number; dtype: DType; copy: CpuBuffer } | null = null;
  constructor(
    readonly backend: CpuBackend,
    readonly storage: NativeStorage,
    readonly dtype: DType,
  ) {}
  get numel(): number {
    return this.storage.numel;
  }
  get freed(): boolean {
    return this.storage.freed;
  }
}

const s = (b: DeviceBuffer | null | undefined): NativeStorage | null => (b ? (b as CpuBuffer).storage : null);
/** Marks a buffer written (its converted copies are stale). */
const touch = (b: DeviceBuffer | null | undefined): void => {
  if (b) (b as CpuBuffer).version++;
};

export class CpuBackend implements Backend {
  readonly name = 'cpu';
  /** native/bench/peak.cc: outside the production op table. */
  readonly benchmarks: BackendBenchmarks = {
    fmaPeakGflops: (iterations) => (benchOp('fma_peak')(iterations) as { gflops: number }).gflops,
    matrixBf16PeakGflops: (iterations) => (benchOp('amx_peak')(iterations) as number) || null,
    memoryBandwidthGBs: (bytes, reps) => benchOp('mem_bandwidth')(bytes, reps) as number,
    build: () => ({ name: nativeBuild.name, reason: nativeBuild.reason, kernels: benchOp('kernel_isa')() as string }),
  };

  /** The addon build loaded (instruction-set level and why), the kernels' instruction set, the threads. */
  describe(): BackendInfo {
    let kernels = 'unknown';
    try {
      kernels = benchOp('kernel_isa')() as string;
    } catch {
      // an addon without the benchmark table still names its build level
    }
    const threads = this.getNumThreads();
    return {
      name: this.name,
      summary: `native build ${nativeBuild.name} (${nativeBuild.reason}), kernels ${kernels}, ${threads} thread${threads === 1 ? '' : 's'}`,
      native: { isa: nativeBuild.name, reason: nativeBuild.reason, kernels, threads },
    };
  }

  allocate(dtype: DType, numel: number, zero = false): DeviceBuffer {
    return new CpuBuffer(this, new native.Storage(DTYPE_CODE[dtype], numel, zero), dtype);
  }
  /** Weights that hold a packed generation copy. */
  private packedOwners = new Set<CpuBuffer>();

  releasePackedWeights(): void {
    for (const w of [...this.packedOwners]) this.dropPacked(w);
  }

  /** Frees the packed generation copy of a weight, if any. */
  private dropPacked(w: CpuBuffer): void {
    if (!w.packed) return;
    if (!w.packed.copy.freed) w.packed.copy.storage.free();
    w.packed = null;
    this.packedOwners.delete(w);
  }

  free(buf: DeviceBuffer): void {
    const b = buf as CpuBuffer;
    b.storage.free();
    this.dropPacked(b);
    if (b.bf16) {
      b.bf16.copy.storage.free();
      b.bf16 = null;
    }
  }
  upload(buf: DeviceBuffer, data: Float32Array | Int32Array, offset?: number): void {
    s(buf)!.write(data, offset);
    touch(buf);
  }
  download(buf: DeviceBuffer, offset?: number, count?: number): Float32Array | Int32Array {
    return s(buf)!.read(offset, count);
  }
  uploadBytes(buf: DeviceBuffer, bytes: Uint8Array): void {
    s(buf)!.writeBytes(bytes);
    touch(buf);
  }
  downloadBytes(buf: DeviceBuffer): Uint8Array {
    return s(buf)!.readBytes();
  }
  liveBytes(): number {
    return native.liveBytes();
  }
  allocatorStats(): AllocatorStats {
    return native.allocStats();
  }
  releaseCache(): void {
    native.releaseCache();
  }
  setNumThreads(n: number): number {
    return native.setNumThreads(n);
  }
  getNumThreads(): number {
    return native.getNumThreads();
  }

  // ---- memory
  fill(x: DeviceBuffer, value: number, n: number): void {
    op('fill')(s(x), value, n);
    touch(x);
  }
  copy(dst: DeviceBuffer, dstOff: number, src: DeviceBuffer, srcOff: number, n: number): void {
    op('copy')(s(dst), dstOff, s(src), srcOff, n);
    touch(dst);
  }
  copyRows(
    dst: DeviceBuffer,
    src: DeviceBuffer,
    rows: number,
    cols: number,
    dstStride: number,
    srcStride: number,
    dstOff: number,
    srcOff: number,
  ): void {
    op('copy_rows')(s(dst), s(src), rows, cols, dstStride, srcStride, dstOff, srcOff);
    touch(dst);
  }
  castF32Bf16(out: DeviceBuffer, x: DeviceBuffer, n: number): void {
    op('cast_f32_bf16')(s(out), s(x), n);
    touch(out);
  }
  castBf16F32(out: DeviceBuffer, x: DeviceBuffer, n: number): void {
    op('cast_bf16_f32')(s(out), s(x), n);
    touch(out);
  }

  // ---- elementwise and reductions
  addForward(out: DeviceBuffer, a: DeviceBuffer, b: DeviceBuffer, n: number): void {
    op('add_forward')(s(out), s(a), s(b), n);
  }
  axpy(y: DeviceBuffer, x: DeviceBuffer, alpha: number, n: number): void {
    op('axpy')(s(y), s(x), alpha, n);
    touch(y);
  }
  scale(x: DeviceBuffer, factor: number, n: number): void {
    op('scale')(s(x), factor, n);
    touch(x);
  }
  sumRows(out: DeviceBuffer, x: DeviceBuffer, M: number, N: number, beta: number): void {
    op('sum_rows')(s(out), s(x), M, N, beta);
    touch(out);
  }
  gradnormSumsq(x: DeviceBuffer, n: number): number {
    return op('gradnorm_sumsq')(s(x), n) as number;
  }

  dropoutForward(out: DeviceBuffer, x: DeviceBuffer, n: number, p: number, seed: number): void {
    op('dropout_forward')(s(out), s(x), n, p, seed);
    touch(out);
  }
  dropoutBackward(dx: DeviceBuffer, dy: DeviceBuffer, n: number, p: number, seed: number): void {
    op('dropout_backward')(s(dx), s(dy), n, p, seed);
    touch(dx);
  }

  // ---- products
  gemm(C: DeviceBuffer, A: DeviceBuffer, B: DeviceBuffer, o: GemmArgs): void {
    // before a cast or widening copy of A or B, so a bad product is named gemm (as native's checks do)
    checkGemm(A, B, o);
    touch(C);
    const batch = o.batch ?? 1;
    const batchB = o.batchB ?? 1;
    // Generation: the weight's packed copy (fp32 or bf16 weight; a bf16 one, a frozen LoRA base, is
    // packed once per weight version instead of widened at every decode step) and the
    // batch-invariant decode kernel.
    if (o.packed && !o.bf16 && this.packedProduct(o) && A.dtype === 'float32' && B.dtype !== 'int32') {
      op('packed_gemm')(
        s(C),
        s(A),
        this.weightPacked(B as CpuBuffer, o.packed, o.N, o.K).storage,
        s(o.bias),
        o.M,
        o.N,
        o.K,
      );
      return;
    }
    if (o.bf16) {
      // autocast: bf16 operands (a weight's copy kept until the weight is written), fp32 C
      const a = A.dtype === 'bfloat16' ? A : this.convertRegion(A, o.aOff ?? 0, batch * o.M * o.K, 'bfloat16');
      const b =
        B.dtype === 'bfloat16'
          ? B
          : o.bIsWeight && !o.bOff && !o.bTrained
            ? this.weightBf16(B as CpuBuffer)
            : this.convertRegion(B, o.bOff ?? 0, batchB * o.K * o.N, 'bfloat16');
      if (o.bTrained) this.dropBf16(B as CpuBuffer);
      const aOff = a === A ? o.aOff : 0;
      const bOff = b === B ? o.bOff : 0;
      try {
        this.gemmRaw(C, a, b, { ...o, aOff, bOff, bf16: false });
      } finally {
        if (a !== A) this.free(a);
        if (b !== B && b !== (B as CpuBuffer).bf16?.copy) this.free(b);
      }
      return;
    }
    if (A.dtype === 'bfloat16' || B.dtype === 'bfloat16') {
      // an fp32 product with a bf16 operand (frozen bf16 weights, e.g. a LoRA base): widened to
      // fp32 one operand at a time, so only one weight's fp32 scratch exists at once (widening
      // costs ≈ 10% at training shapes on this AVX2 machine, where no bf16 matmul exists)
      const a = A.dtype === 'bfloat16' ? this.convertRegion(A, o.aOff ?? 0, batch * o.M * o.K, 'float32') : A;
      const b = B.dtype === 'bfloat16' ? this.convertRegion(B, o.bOff ?? 0, batchB * o.K * o.N, 'float32') : B;
      try {
        this.gemmRaw(C, a, b, { ...o, aOff: a === A ? o.aOff : 0, bOff: b === B ? o.bOff : 0 });
      } finally {
        if (a !== A) this.free(a);
        if (b !== B) this.free(b);
      }
      return;
    }
    this.gemmRaw(C, A, B, o);
  }

  /** A copy of x[off, off + n) cast to `to`: bf16 from fp32 (autocast) or fp32 from bf16 (widening). */
  private convertRegion(x: DeviceBuffer, off: number, n: number, to: 'float32' | 'bfloat16'): DeviceBuffer {
    const cast = to === 'bfloat16' ? 'cast_f32_bf16' : 'cast_bf16_f32';
    const out = this.allocate(to, n);
    if (off === 0) op(cast)(s(out), s(x), n);
    else {
      const tmp = this.allocate(x.dtype, n);
      try {
        op('copy')(s(tmp), 0, s(x), off, n);
        op(cast)(s(out), s(tmp), n);
      } finally {
        this.free(tmp);
      }
    }
    return out;
  }

  private gemmRaw(C: DeviceBuffer, A: DeviceBuffer, B: DeviceBuffer, o: GemmArgs): void {
    const batch = o.batch ?? 1;
    const batchB = o.batchB ?? 1;
    // Every fp32 product other than generation's (gemm) goes through the packed GEMM whatever M: it and packed_gemm add each
    // output over k in order, so a row's numbers do not depend on how many rows share the product
    // (batch invariance, issue 16; the decode-shaped weight-streaming kernel gemv sums along K in
    // lanes and would give other bits for products of ≤ 32 rows: it stays a benchmark kernel).
    op('gemm')(
      s(C),
      s(A),
      s(B),
      s(o.bias),
      batch,
      batchB,
      o.M,
      o.N,
      o.K,
      !!o.transA,
      !!o.transB,
      o.alpha ?? 1,
      o.beta ?? 0,
      o.aOff ?? 0,
      o.bOff ?? 0,
      o.cOff ?? 0,
    );
  }

  /** A generation product (GemmArgs.packed) of the form packed_gemm computes: y = x·Wᵀ (+ bias), whole buffers. */
  private packedProduct(o: GemmArgs): boolean {
    return (
      !!o.packed &&
      !!o.bIsWeight &&
      !!o.transB &&
      !o.transA &&
      (o.batch ?? 1) === 1 &&
      (o.batchB ?? 1) === 1 &&
      (o.alpha ?? 1) === 1 &&
      (o.beta ?? 0) === 0 &&
      !o.aOff &&
      !o.bOff &&
      !o.cOff
    );
  }

  /** The packed generation copy of a weight [N, K], repacked only after the weight was written. */
  private weightPacked(w: CpuBuffer, dtype: DType, N: number, K: number): CpuBuffer {
    if (w.packed && w.packed.version === w.version && w.packed.dtype === dtype && !w.packed.copy.freed)
      return w.packed.copy;
    this.dropPacked(w);
    // bf16 panels: K padded to even (k-pairs, native/cpu/packed.cc)
    const numel = Math.ceil(N / 16) * 16 * (dtype === 'bfloat16' ? 2 * Math.ceil(K / 2) : K);
    const copy = this.allocate(dtype, numel) as CpuBuffer;
    // a bf16 weight (frozen LoRA base) is packed from its exact fp32 widening, one weight at a time
    const src = w.dtype === 'bfloat16' ? (this.convertRegion(w, 0, N * K, 'float32') as CpuBuffer) : w;
    try {
      op(dtype === 'bfloat16' ? 'packed_pack_bf16' : 'packed_pack_f32')(copy.storage, src.storage, N, K);
    } finally {
      if (src !== w) this.free(src);
    }
    w.packed = { version: w.version, dtype, copy };
    this.packedOwners.add(w);
    return copy;
  }

  /** Frees the kept bf16 copy of a weight, if any. */
  private dropBf16(w: CpuBuffer): void {
    if (!w.bf16) return;
    if (!w.bf16.copy.freed) w.bf16.copy.storage.free();
    w.bf16 = null;
  }

  /** The bf16 copy of a weight, recast only after the weight was written. */
  private weightBf16(w: CpuBuffer): CpuBuffer {
    if (w.bf16 && w.bf16.version === w.version && !w.bf16.copy.freed) return w.bf16.copy;
    if (!w.bf16 || w.bf16.copy.freed)
      w.bf16 = { version: w.version, copy: this.allocate('bfloat16', w.numel) as CpuBuffer };
    op('cast_f32_bf16')(w.bf16.copy.storage, w.storage, w.numel);
    w.bf16.version = w.version;
    return w.bf16.copy;
  }

  // ---- layers
  embeddingForward(out: DeviceBuffer, weight: DeviceBuffer, ids: DeviceBuffer, N: number, V: number, C: number): void {
    op('embedding_forward')(s(out), s(weight), s(ids), N, V, C);
  }
  embeddingBackward(
    dweight: DeviceBuffer,
    dout: DeviceBuffer,
    ids: DeviceBuffer,
    N: number,
    V: number,
    C: number,
    accumulate: boolean,
  ): void {
    op('embedding_backward')(s(dweight), s(dout), s(ids), N, V, C, accumulate);
    touch(dweight);
  }
  rmsnormForward(
    y: DeviceBuffer,
    rstd: DeviceBuffer,
    x: DeviceBuffer,
    w: DeviceBuffer,
    N: number,
    C: number,
    eps: number,
  ): void {
    op('rmsnorm_forward')(s(y), s(rstd), s(x), s(w), N, C, eps);
  }
  rmsnormBackward(
    dx: DeviceBuffer | null,
    dw: DeviceBuffer | null,
    dy: DeviceBuffer,
    x: DeviceBuffer,
    w: DeviceBuffer,
    rstd: DeviceBuffer,
    N: number,
    C: number,
  ): void {
    op('rmsnorm_backward')(s(dx), s(dw), s(dy), s(x), s(w), s(rstd), N, C);
  }
  ropeForward(
    y: DeviceBuffer,
    x: DeviceBuffer,
    positions: DeviceBuffer,
    B: number,
    T: number,
    H: number,
    D: number,
    theta: number,
  ): void {
    op('rope_forward')(s(y), s(x), s(positions), B, T, H, D, theta);
  }
  ropeBackward(
    dx: DeviceBuffer,
    dy: DeviceBuffer,
    positions: DeviceBuffer,
    B: number,
    T: number,
    H: number,
    D: number,
    theta: number,
  ): void {
    op('rope_backward')(s(dx), s(dy), s(positions), B, T, H, D, theta);
  }
  swigluForward(out: DeviceBuffer, gate: DeviceBuffer, up: DeviceBuffer, n: number): void {
    op('swiglu_forward')(s(out), s(gate), s(up), n);
  }
  swigluBackward(
    dgate: DeviceBuffer | null,
    dup: DeviceBuffer | null,
    dout: DeviceBuffer,
    gate: DeviceBuffer,
    up: DeviceBuffer,
    n: number,
  ): void {
    op('swiglu_backward')(s(dgate), s(dup), s(dout), s(gate), s(up), n);
  }
  pagedKvWrite(
    kPool: DeviceBuffer,
    vPool: DeviceBuffer,
    k: DeviceBuffer,
    v: DeviceBuffer,
    slots: DeviceBuffer,
    n: number,
    S: number,
    row: number,
  ): void {
    op('paged_kv_write')(s(kPool), s(vPool), s(k), s(v), s(slots), n, S, row);
    touch(kPool);
    touch(vPool);
  }
  pagedAttentionForward(
    out: DeviceBuffer,
    q: DeviceBuffer,
    kPool: DeviceBuffer,
    vPool: DeviceBuffer,
    table: DeviceBuffer,
    ctx: DeviceBuffer,
    B: number,
    Tq: number,
    H: number,
    Hkv: number,
    D: number,
    blockSize: number,
    maxBlocks: number,
    numBlocks: number,
    scale: number,
  ): void {
    op('paged_attention_forward')(
      s(out),
      s(q),
      s(kPool),
      s(vPool),
      s(table),
      s(ctx),
      B,
      Tq,
      H,
      Hkv,
      D,
      blockSize,
      maxBlocks,
      numBlocks,
      scale,
    );
  }
  attentionForward(
    out: DeviceBuffer,
    lse: DeviceBuffer | null,
    q: DeviceBuffer,
    k: DeviceBuffer,
    v: DeviceBuffer,
    keyMask: DeviceBuffer | null,
    B: number,
    Tq: number,
    Tk: number,
    Tkmax: number,
    H: number,
    Hkv: number,
    D: number,
    scale: number,
  ): void {
    op('attention_forward')(s(out), s(lse), s(q), s(k), s(v), s(keyMask), B, Tq, Tk, Tkmax, H, Hkv, D, scale);
  }
  attentionBackward(
    dq: DeviceBuffer,
    dk: DeviceBuffer,
    dv: DeviceBuffer,
    dout: DeviceBuffer,
    q: DeviceBuffer,
    k: DeviceBuffer,
    v: DeviceBuffer,
    out: DeviceBuffer,
    lse: DeviceBuffer,
    keyMask: DeviceBuffer | null,
    B: number,
    T: number,
    H: number,
    Hkv: number,
    D: number,
    scale: number,
  ): void {
    op('attention_backward')(
      s(dq),
      s(dk),
      s(dv),
      s(dout),
      s(q),
      s(k),
      s(v),
      s(out),
      s(lse),
      s(keyMask),
      B,
      T,
      H,
      Hkv,
      D,
      scale,
    );
  }
  logprobsForward(
    lp: DeviceBuffer | null,
    lse: DeviceBuffer,
    entropy: DeviceBuffer | null,
    logits: DeviceBuffer,
    targets: DeviceBuffer | null,
    rows: number,
    V: number,
    temperature: number,
    rowOff: number,
  ): void {
    op('logprobs_forward')(s(lp), s(lse), s(entropy), s(logits), s(targets), rows, V, temperature, rowOff);
  }
  logprobsBackward(
    dlogits: DeviceBuffer,
    logits: DeviceBuffer,
    dlp: DeviceBuffer,
    lse: DeviceBuffer,
    targets: DeviceBuffer,
    rows: number,
    V: number,
    temperature: number,
    rowOff: number,
  ): void {
    op('logprobs_backward')(s(dlogits), s(logits), s(dlp), s(lse), s(targets), rows, V, temperature, rowOff);
  }
  klForward(out: DeviceBuffer, p: DeviceBuffer, q: DeviceBuffer, N: number, V: number, temperature: number): void {
    op('kl_forward')(s(out), s(p), s(q), N, V, temperature);
    touch(out);
  }
  klHvp(out: DeviceBuffer, logits: DeviceBuffer, u: DeviceBuffer, N: number, V: number, temperature: number): void {
    op('kl_hvp')(s(out), s(logits), s(u), N, V, temperature);
    touch(out);
  }
  logprobsEntropyBackward(
    dlogits: DeviceBuffer,
    logits: DeviceBuffer,
    dH: DeviceBuffer,
    lse: DeviceBuffer,
    entropy: DeviceBuffer,
    rows: number,
    V: number,
    temperature: number,
    rowOff: number,
  ): void {
    op('logprobs_entropy_backward')(s(dlogits), s(logits), s(dH), s(lse), s(entropy), rows, V, temperature, rowOff);
  }

  // ---- optimizer and sampling
  adamwStep(
    param: DeviceBuffer,
    grad: DeviceBuffer,
    m: DeviceBuffer,
    v: DeviceBuffer,
    n: number,
    lr: number,
    beta1: number,
    beta2: number,
    eps: number,
    weightDecay: number,
    step: number,
  ): void {
    op('adamw_step')(s(param), s(grad), s(m), s(v), n, lr, beta1, beta2, eps, weightDecay, step);
    touch(param);
    touch(m);
    touch(v);
  }
  sampleTokens(
    ids: DeviceBuffer,
    lp: DeviceBuffer,
    logits: DeviceBuffer,
    uniforms: DeviceBuffer,
    B: number,
    V: number,
    temperature: number,
    topK: number,
    topP: number,
    greedy: boolean,
  ): void {
    op('sample_tokens')(s(ids), s(lp), s(logits), s(uniforms), B, V, temperature, topK, topP, greedy);
  }
}

/** The CPU backend (the addon is loaded, or its loader has thrown a clear error, on import). */
export function createCpuBackend(): CpuBackend {
  return new CpuBackend();
}
