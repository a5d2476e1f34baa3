/**
 * @module tensor/check
 * Shape / dtype / lifetime checks run before every native call, so bad input becomes a
 * TensorOpError naming the op and the shapes (e.g. `rmsnorm: x [4,256,512] vs weight [384]`).
 */
import { TensorOpError } from '../errors.ts';
import { shapeStr, type DType, type Tensor } from './tensor.ts';
import type { Backend } from '../backend/index.ts';

export function live(opName: string, ...ts: Array<[string, Tensor | null | undefined]>): void {
  for (const [name, t] of ts) {
    if (t && t.disposed) throw new TensorOpError(opName, `${name} was disposed (shape ${shapeStr(t.shape)})`);
  }
}

export function dtype(opName: string, name: string, t: Tensor, ...allowed: DType[]): void {
  if (!allowed.includes(t.dtype))
    throw new TensorOpError(opName, `${name} must be ${allowed.join(' or ')}, got ${t.dtype} ${shapeStr(t.shape)}`);
}

export function rank(opName: string, name: string, t: Tensor, r: number | number[]): void {
  const rs = Array.isArray(r) ? r : [r];
  if (!rs.includes(t.shape.length))
    throw new TensorOpError(opName, `${name} must have rank ${rs.join(' or ')}, got ${shapeStr(t.shape)}`);
}

export function sameShape(opName: string, a: [string, Tensor], b: [string, Tensor]): void {
  const [na, ta] = a;
  const [nb, tb] = b;
  if (ta.shape.length !== tb.shape.length || ta.shape.some((d, i) => d !== tb.shape[i])) {
    throw new TensorOpError(opName, `${na} ${shapeStr(ta.shape)} vs ${nb} ${shapeStr(tb.shape)}: shapes differ`);
  }
}

export function dimEq(opName: string, what: string, got: number, want: number): void {
  if (got !== want) throw new TensorOpError(opName, `${what}: expected ${want}, got ${got}`);
}

export function fail(opName: string, msg: string): never {
  throw new TensorOpError(opName, msg);
}

/** Checks a float tensor for NaN/Inf (debug aid; O(n) read back, so only used where cheap). */
export function finite(opName: string, name: string, t: Tensor): void {
  const a = t.toArray();
  for (let i = 0; i < a.length; i++) {
    if (!Number.isFinite(a[i]!))
      throw new TensorOpError(opName, `${name} ${shapeStr(t.shape)} has a non-finite value at index ${i}`);
  }
}

/** The backend every given tensor lives on (they must share one): ops run there. */
export function backend(opName: string, ...ts: Array<[string, Tensor | null | undefined]>): Backend {
  let be: Backend | null = null;
  let first = '';
  for (const [name, t] of ts) {
    if (!t) continue;
    if (t.disposed) throw new TensorOpError(opName, `${name} was disposed (shape ${shapeStr(t.shape)})`);
    const b = t.backend;
    if (be && b !== be)
      throw new TensorOpError(
        opName,
        `${name} is on backend ${b.name} but ${first} is on ${be.name}; move one with .to()`,
      );
    if (!be) {
      be = b;
      first = name;
    }
  }
  if (!be) throw new TensorOpError(opName, 'no tensor input');
  return be;
}
