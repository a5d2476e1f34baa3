/**
 * @module backend/types
 * The seam between the tensor layer and compute (tinygrad's `device.py` shape): a backend
 * allocates, uploads, downloads and frees buffers, and implements one typed method per kernel.
 * Nothing above `src/tensor` sees a buffer; nothing above `src/backend` sees an addon.
 *
 * Conventions (llm.c's, stated once): kernel arguments go outputs first, then inputs, then sizes.
 * Buffers are contiguous and row-major; element offsets (`…Off`) address views inside them.
 * Backward kernels write fresh gradients with "=" unless the method says "+=" (the tape
 * accumulates). Dimension legend: B batch, T tokens, H heads, Hkv kv heads, D head dim,
 * C channels, V vocabulary, N rows.
 */

export type DType = 'float32' | 'bfloat16' | 'int32';

/** An opaque buffer owned by one backend. */
export interface DeviceBuffer {
  readonly backend: Backend;
  readonly dtype: DType;
  readonly numel: number;
  readonly freed: boolean;
}

/** C[b] = alpha·op(A[b])·op(B[b|0]) (+ bias[N]) + beta·C[b]; A [batch,M,K] (transA: [batch,K,M]), B [batchB,K,N] (transB: [batchB,N,K]). */
export interface GemmArgs {
  batch?: number;
  /** batch or 1 (B broadcast over the batch). */
  batchB?: number;
  M: number;
  N: number;
  K: number;
  transA?: boolean;
  transB?: boolean;
  alpha?: number;
  beta?: number;
  bias?: DeviceBuffer | null;
  aOff?: number;
  bOff?: number;
  cOff?: number;
  /**
   * Mixed precision: compute with bf16 operands (fp32 accumulation and output), as PyTorch
   * autocast does. fp32 operands are cast by the backend; bf16 operands are used as they are.
   */
  bf16?: boolean;
  /** B is a weight: the backend may keep a converted copy until the buffer is next written. */
  bIsWeight?: boolean;
  /**
   * Generation: B is a weight [N, K] (transB) read through a copy the backend packs for its
   * decode kernel in this dtype, kept until the weight is written or releasePackedWeights().
   * The product's rows are computed independently of each other (batch invariant).
   */
  packed?: 'float32' | 'bfloat16';
  /**
   * B is a weight being trained (gradients recorded for it): the next optimizer step rewrites it,
   * so the backend keeps no converted copy (and drops one it kept): a copy would only sit beside
   * the gradients and optimizer moments at the step's memory peak.
   */
  bTrained?: boolean;
}

/** Every kernel, one typed signature each (contracts: src/tensor/ops/<op>.ts and native/cpu/<op>.cc). */
export interface Kernels {
  // ---- memory
  fill(x: DeviceBuffer, value: number, n: number): void;
  copy(dst: DeviceBuffer, dstOff: number, src: DeviceBuffer, srcOff: number, n: number): void;
  /** dst[dstOff + r·dstStride + c] = src[srcOff + r·srcStride + c] for r < rows, c < cols (float32). */
  copyRows(
    dst: DeviceBuffer,
    src: DeviceBuffer,
    rows: number,
    cols: number,
    dstStride: number,
    srcStride: number,
    dstOff: number,
    srcOff: number,
  ): void;
  castF32Bf16(out: DeviceBuffer, x: DeviceBuffer, n: number): void;
  castBf16F32(out: DeviceBuffer, x: DeviceBuffer, n: number): void;
  // ---- elementwise and reductions
  addForward(out: DeviceBuffer, a: DeviceBuffer, b: DeviceBuffer, n: number): void;
  /** y += alpha·x */
  axpy(y: DeviceBuffer, x: DeviceBuffer, alpha: number, n: number): void;
  /** x *= s */
  scale(x: DeviceBuffer, s: number, n: number): void;
  /** out[N] = Σ_rows x[M, N] + beta·out */
  sumRows(out: DeviceBuffer, x: DeviceBuffer, M: number, N: number, beta: number): void;
  /** Σ x² in double (deterministic order). */
  gradnormSumsq(x: DeviceBuffer, n: number): number;
  /**
   * Inverted dropout: out = mask ⊙ x / (1 − p), p in [0, 1); the mask of element i is a function
   * of (seed, i) only (seed an integer < 2^53), so backward recomputes it. out may be x.
   */
  dropoutForward(out: DeviceBuffer, x: DeviceBuffer, n: number, p: number, seed: number): void;
  /** dx = mask ⊙ dy / (1 − p) with the forward's mask for this seed; dx may be dy. */
  dropoutBackward(dx: DeviceBuffer, dy: DeviceBuffer, n: number, p: number, seed: number): void;
  // ---- products
  gemm(C: DeviceBuffer, A: DeviceBuffer, B: DeviceBuffer, o: GemmArgs): void;
  // ---- layers
  embeddingForward(out: DeviceBuffer, weight: DeviceBuffer, ids: DeviceBuffer, N: number, V: number, C: number): void;
  /** dweight = scatter-add of dout by ids; with `accumulate`, += into dweight (rows without ids untouched). */
  embeddingBackward(
    dweight: DeviceBuffer,
    dout: DeviceBuffer,
    ids: DeviceBuffer,
    N: number,
    V: number,
    C: number,
    accumulate: boolean,
  ): void;
  rmsnormForward(
    y: DeviceBuffer,
    rstd: DeviceBuffer,
    x: DeviceBuffer,
    w: DeviceBuffer,
    N: number,
    C: number,
    eps: number,
  ): void;
  rmsnormBackward(
    dx: DeviceBuffer | null,
    dw: DeviceBuffer | null,
    dy: DeviceBuffer,
    x: DeviceBuffer,
    w: DeviceBuffer,
    rstd: DeviceBuffer,
    N: number,
    C: number,
  ): void;
  ropeForward(
    y: DeviceBuffer,
    x: DeviceBuffer,
    positions: DeviceBuffer,
    B: number,
    T: number,
    H: number,
    D: number,
    theta: number,
  ): void;
  ropeBackward(
    dx: DeviceBuffer,
    dy: DeviceBuffer,
    positions: DeviceBuffer,
    B: number,
    T: number,
    H: number,
    D: number,
    theta: number,
  ): void;
  swigluForward(out: DeviceBuffer, gate: DeviceBuffer, up: DeviceBuffer, n: number): void;
  swigluBackward(
    dgate: DeviceBuffer | null,
    dup: DeviceBuffer | null,
    dout: DeviceBuffer,
    gate: DeviceBuffer,
    up: DeviceBuffer,
    n: number,
  ): void;
  /** Causal GQA over keys [B, Tkmax, Hkv, D] (first Tk used); lse [B, H, Tq] saved for backward when given. */
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
  ): void;
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
  ): void;
  /** Paged KV cache: kPool/vPool [S, row] rows at `slots` (int32 [n]) = k/v [n, row]. */
  pagedKvWrite(
    kPool: DeviceBuffer,
    vPool: DeviceBuffer,
    k: DeviceBuffer,
    v: DeviceBuffer,
    slots: DeviceBuffer,
    n: number,
    S: number,
    row: number,
  ): void;
  /**
   * Causal GQA of q [B, Tq, H, D] over each row's own keys in the paged pools [numBlocks·blockSize, Hkv, D]:
   * row b has ctx[b] keys at slots table[b, s / blockSize]·blockSize + s % blockSize; query i sits at
   * position ctx[b] − Tq + i.
   */
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
  ): void;
  /** out[N] = KL(softmax(p/τ) ‖ softmax(q/τ)) per row of p, q [N, V] (TRPO's trust region; no gradient). */
  klForward(out: DeviceBuffer, p: DeviceBuffer, q: DeviceBuffer, N: number, V: number, temperature: number): void;
  /** out[N, V] = (diag(p) − p pᵀ) u per row, p = softmax(logits/τ): the softmax Fisher times u (TRPO). */
  klHvp(out: DeviceBuffer, logits: DeviceBuffer, u: DeviceBuffer, N: number, V: number, temperature: number): void;
  /** Log-softmax + gather (and/or entropy) of a chunk of logit rows; row r is token rowOff + r. */
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
  ): void;
  /** dlogits may be the logits buffer itself (overwritten in place). */
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
  ): void;
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
  ): void;
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
  ): void;
  /** One token per row of logits [B, V] (temperature → top-k → top-p; greedy = argmax); lp = full-vocabulary log-prob. */
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
  ): void;
}

export interface AllocatorStats {
  /** Bytes of freed buffers held for reuse. */
  cachedBytes: number;
  /** Bytes the cache's regions span, live and cached. */
  mappedBytes: number;
  /** Allocations served from / not found in the cache. */
  hits: number;
  misses: number;
  /** Most bytes the cache holds (GPG_RL_ALLOC_CACHE_MB). */
  capBytes: number;
}

export interface Backend extends Kernels {
  readonly name: string;
  allocate(dtype: DType, numel: number, zero?: boolean): DeviceBuffer;
  free(buf: DeviceBuffer): void;
  /** Host → buffer at an element offset (float data is rounded for bfloat16 buffers). */
  upload(buf: DeviceBuffer, data: Float32Array | Int32Array, offset?: number): void;
  /** Buffer → host (bfloat16 widened to float32). */
  download(buf: DeviceBuffer, offset?: number, count?: number): Float32Array | Int32Array;
  uploadBytes(buf: DeviceBuffer, bytes: Uint8Array): void;
  downloadBytes(buf: DeviceBuffer): Uint8Array;
  /** Bytes held by live buffers (leak tests). */
  liveBytes(): number;
  /**
   * The allocator's cache of freed buffers kept for reuse (its bytes count in the process's
   * resident memory, not in liveBytes); absent on backends without one.
   */
  allocatorStats?(): AllocatorStats;
  /** Returns every cached free buffer to the system (PyTorch's empty_cache). */
  releaseCache?(): void;
  /** Frees every packed generation copy of a weight (GemmArgs.packed); they are rebuilt on next use. */
  releasePackedWeights(): void;
  /**
   * Waits until every queued kernel has run (a backend that queues work, as WebGPU does; absent
   * where kernels run when called). Timings call it so they time the work, not its queueing.
   */
  sync?(): void;
  /** Compute threads (CPU); returns the value in effect. */
  setNumThreads(n: number): number;
  getNumThreads(): number;
  /** Machine measurements for `gpg-rl bench` (not kernels of the model; absent where not measured). */
  readonly benchmarks?: BackendBenchmarks;
  /**
   * What this backend runs on, for the run's record (trainer_config.json's `backend`) and its
   * start-of-run log line (backendLine), so a silent fallback to another backend is visible.
   */
  describe(): BackendInfo;
}

/** A backend's description: its name, one line for the log, and what it runs on. */
export interface BackendInfo {
  /** The registry name (`cpu`, `webgpu`). */
  name: string;
  /** One human line: the CPU build level, or the adapter (without the backend's name). */
  summary: string;
  /** cpu: the addon build loaded (instruction-set level), why it was chosen, the kernels' ISA, threads. */
  native?: { isa: string; reason: string; kernels: string; threads: number };
  /** webgpu: the adapter (name, vendor, architecture, enabled features, the device's limits). */
  adapter?: AdapterInfo;
}

/** What a WebGPU adapter is: recorded by runs and printed by `bench` so a silent fallback is visible. */
export interface AdapterInfo {
  vendor: string;
  architecture: string;
  device: string;
  description: string;
  /** Device features enabled (shader-f16, subgroups, timestamp-query where the adapter has them). */
  features: string[];
  limits: Record<string, number>;
}

export interface BackendBenchmarks {
  /** Register-only FMA loop over every thread: the fp32 peak in GFLOP/s. */
  fmaPeakGflops(iterations: number): number;
  /** The bf16 matrix unit's peak (AMX tiles: register-only TDPBF16PS on every thread) in GFLOP/s; null without one. */
  matrixBf16PeakGflops?(iterations: number): number | null;
  /** Stream-read bandwidth over a buffer of `bytes`, best of `reps`, in GB/s. */
  memoryBandwidthGBs(bytes: number, reps: number): number;
  /** The build loaded (e.g. the instruction-set level and why) and the kernels' instruction set. */
  build(): { name: string; reason: string; kernels: string };
}
