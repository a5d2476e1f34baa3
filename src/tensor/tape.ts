/**
 * @module tensor/tape
 * Reverse-mode autograd over coarse ops. Every op that has an input with `requiresGrad` (while
 * gradients are enabled) appends a TapeNode; `backward(root)` walks the tape in reverse, calling
 * each node's backward with dL/d(output) and accumulating dL/d(input). Leaf tensors
 * (parameters) accumulate into `.grad` ("+=", so micro-batches add up); intermediate gradients
 * are freed as soon as they have been used. `noGrad(fn)` runs without recording.
 * `checkpoint(fn, inputs)` (activation checkpointing) keeps only a block's inputs and output and
 * re-runs the block during backward.
 */
import { countBackward } from './passes.ts';
import { Tensor, setScopeEndHook, tidy, type TapeNode } from './tensor.ts';
import { TensorOpError } from '../errors.ts';

let gradEnabled = true;
let tape: TapeNode[] = [];

export function isGradEnabled(): boolean {
  return gradEnabled;
}

/** Runs fn with gradient recording off (inference, generation, reference models). */
export function noGrad<T>(fn: () => T): T {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return fn();
  } finally {
    gradEnabled = prev;
  }
}

export async function noGradAsync<T>(fn: () => Promise<T>): Promise<T> {
  const prev = gradEnabled;
  gradEnabled = false;
  try {
    return await fn();
  } finally {
    gradEnabled = prev;
  }
}

/** True when an op over these inputs must be recorded. */
export function needsGrad(...inputs: Array<Tensor | null | undefined>): boolean {
  if (!gradEnabled) return false;
  for (const t of inputs) if (t && t.requiresGrad) return true;
  return false;
}

/**
 * Records `output = op(inputs)` with its backward. Call only when needsGrad(inputs) is true.
 * The backward closure may use tensors saved from the forward; they must stay alive until
 * backward() (callers run forward+backward inside one tidy scope).
 */
export function record(
  opName: string,
  inputs: Array<Tensor | null>,
  output: Tensor,
  backward: TapeNode['backward'],
): Tensor {
  output.requiresGrad = true;
  const node: TapeNode = { op: opName, inputs, output, backward };
  output.node = node;
  tape.push(node);
  return output;
}

/** Drops the recorded graph without running backward (e.g. after a forward-only pass with grads on). */
export function clearTape(): void {
  for (const n of tape) n.output.node = null;
  tape = [];
}

// When the outermost tidy() scope ends, nodes whose output tensor is gone can never be
// backpropagated through: drop them so forward-only passes with gradients on do not accumulate.
setScopeEndHook(() => {
  if (tape.length && tape.some((n) => n.output.disposed)) tape = tape.filter((n) => !n.output.disposed);
});

export function tapeLength(): number {
  return tape.length;
}

function accumulate(dst: Tensor, src: Tensor): void {
  if (dst.size !== src.size)
    throw new TensorOpError('backward', `gradient shape ${src.shape} does not match ${dst.shape}`);
  dst.backend.axpy(dst.deviceBuffer, src.deviceBuffer, 1.0, dst.size);
}

/** One root of a backward pass with its seed dL/d(root) (default: ones, i.e. root is a loss term). */
export interface BackwardRoot {
  root: Tensor;
  seed?: Tensor;
}

/**
 * Backpropagates from one root, or from several at once (a policy loss beside a value loss: their
 * gradients add up in one walk of the tape). `seed` is dL/d(root) (default: ones, i.e. root is
 * the loss). Leaf tensors with requiresGrad get `.grad` (created with keep(), so it survives tidy
 * scopes; accumulated with += when it already exists). The tape is cleared afterwards.
 */
export function backward(root: Tensor | BackwardRoot[], seed?: Tensor): void {
  const roots: BackwardRoot[] = Array.isArray(root) ? root : [{ root, seed }];
  countBackward();
  if (roots.length === 0) {
    clearTape();
    throw new TensorOpError('backward', 'no root given');
  }
  const grads = new Map<Tensor, Tensor>(); // dL/d(intermediate), owned by this function
  const stored = new Set<Tensor>(); // every gradient tensor stored somewhere (map or a leaf's .grad)
  for (const [i, r] of roots.entries()) {
    const label = roots.length > 1 ? `root ${i}` : 'the root tensor';
    if (!r.root.requiresGrad || !r.root.node) {
      clearTape();
      for (const g of grads.values()) g.dispose();
      throw new TensorOpError(
        'backward',
        `${label} does not require grad (was it computed under noGrad, or from inputs without requiresGrad?)`,
      );
    }
    const seedT = r.seed ? r.seed.clone() : Tensor.full(r.root.shape, 1, r.root.backend);
    if (seedT.size !== r.root.size) {
      seedT.dispose();
      for (const g of grads.values()) g.dispose();
      clearTape();
      throw new TensorOpError('backward', `seed of size ${seedT.size} for ${label} of size ${r.root.size}`);
    }
    const have = grads.get(r.root);
    if (have) {
      accumulate(have, seedT);
      seedT.dispose();
      continue;
    }
    grads.set(r.root, seedT);
    stored.add(seedT);
  }
  const nodes = tape;
  tape = [];
  try {
    for (let i = nodes.length - 1; i >= 0; i--) {
      const node = nodes[i]!;
      const gy = grads.get(node.output);
      node.output.node = null;
      if (!gy) continue;
      grads.delete(node.output);
      const gins = node.backward(gy);
      for (let j = 0; j < node.inputs.length; j++) {
        const inp = node.inputs[j];
        const g = gins[j];
        if (!g) continue;
        if (!inp || !inp.requiresGrad) {
          if (g !== gy && !stored.has(g)) g.dispose();
          continue;
        }
        // A gradient tensor returned for two inputs (or equal to gy) is copied before storing,
        // because stored gradients are accumulated into in place.
        const target = inp.node ? grads.get(inp) : inp.grad && !inp.grad.disposed ? inp.grad : null;
        if (target) {
          accumulate(target, g);
          if (g !== gy && !stored.has(g) && !gins.slice(j + 1).includes(g)) g.dispose();
          continue;
        }
        const mine = g === gy || stored.has(g) ? g.clone() : g;
        stored.add(mine);
        if (inp.node) grads.set(inp, mine);
        else inp.grad = mine.keep();
      }
      stored.delete(gy);
      gy.dispose();
    }
  } finally {
    for (const n of nodes) n.output.node = null;
    for (const g of grads.values()) g.dispose();
  }
}

/**
 * Activation checkpointing (PyTorch `torch.utils.checkpoint`, HF `gradient_checkpointing`):
 * `y = fn(...inputs)` is computed now, but of everything fn creates only y is kept; the tape gets
 * one node whose backward re-runs fn with recording on (over fresh leaf views of the inputs),
 * backpropagates dL/dy through that recomputed graph (parameters that fn reads accumulate into
 * their `.grad` there, as they would without checkpointing), frees the recomputed activations and
 * returns dL/d(inputs). Memory: a block's activations exist for one block at a time (in backward)
 * instead of for every block at once; compute: one more forward of the block.
 *
 * fn must be deterministic and read nothing that changes between the forward and the backward
 * (tensors it closes over, e.g. positions or masks, must stay alive until backward). The forward
 * records exactly as the recompute does (then drops the record), so both runs take the same kernel
 * paths and the gradients are bitwise those of the un-checkpointed graph. Outside gradient
 * recording it is just fn(...inputs).
 */
export function checkpoint(fn: (...xs: Tensor[]) => Tensor, inputs: readonly Tensor[]): Tensor {
  if (!gradEnabled) return fn(...inputs);
  // (the outer scope keeps the inner one from being outermost, whose end would filter the tape)
  const y = tidy(() => {
    const mark = tape.length;
    try {
      return tidy(() => fn(...inputs));
    } finally {
      // what fn recorded is dropped: its saved tensors were freed with the inner scope (except y)
      for (const n of tape.splice(mark)) n.output.node = null;
    }
  });
  if (inputs.includes(y))
    throw new TensorOpError('checkpoint', 'fn returned one of its inputs; it must return a tensor it computes');
  if (!y.requiresGrad) return y;
  return record('checkpoint', [...inputs], y, (gy) => {
    for (const [i, x] of inputs.entries())
      if (x.disposed) throw new TensorOpError('checkpoint', `input ${i} was disposed before backward`);
    // fresh leaves over the same storage: the recomputed graph ends at them
    const leaves = inputs.map((x) => {
      const l = x.view(x.shape);
      l.requiresGrad = x.requiresGrad;
      return l.keep();
    });
    const outerTape = tape;
    const outerGrad = gradEnabled;
    tape = [];
    gradEnabled = true;
    try {
      tidy(() => {
        const y2 = fn(...leaves);
        if (!y2.requiresGrad || !y2.node)
          throw new TensorOpError('checkpoint', 'the recomputed block does not require grad (fn is not deterministic)');
        backward(y2, gy);
      });
      return leaves.map((l) => l.grad);
    } finally {
      clearTape();
      tape = outerTape;
      gradEnabled = outerGrad;
      for (const l of leaves) {
        l.grad = null;
        l.dispose();
      }
    }
  });
}
