/**
 * @module cli/commands/_io
 * Shared input reading for the model-checking commands: int32 `input_ids` / `attention_mask`
 * [B, T] from a safetensors file, validated (file, tensor, dtype, shape, id range, 0/1 mask).
 */
import { readSafetensorsFile, toInt32 } from '../../model/safetensors.ts';
import { UsageError } from '../../errors.ts';

export function readBatch(
  path: string,
  vocabSize: number,
): { ids: Int32Array; mask: Int32Array; B: number; T: number } {
  const { tensors } = readSafetensorsFile(path);
  const idsT = tensors.get('input_ids');
  if (!idsT)
    throw new UsageError(`${path}: tensor "input_ids" is missing (found: ${[...tensors.keys()].join(', ') || 'none'})`);
  if (idsT.shape.length !== 2) throw new UsageError(`${path}: input_ids must be [B, T], got [${idsT.shape}]`);
  const [B, T] = idsT.shape as [number, number];
  if (B < 1 || T < 2) throw new UsageError(`${path}: input_ids [${B}, ${T}] needs B ≥ 1 and T ≥ 2`);
  const ids = toInt32(idsT);
  const maskT = tensors.get('attention_mask');
  let mask: Int32Array;
  if (maskT) {
    if (maskT.shape.length !== 2 || maskT.shape[0] !== B || maskT.shape[1] !== T)
      throw new UsageError(`${path}: attention_mask [${maskT.shape}] does not match input_ids [${B}, ${T}]`);
    mask = toInt32(maskT);
    for (let i = 0; i < mask.length; i++)
      if (mask[i] !== 0 && mask[i] !== 1)
        throw new UsageError(`${path}: attention_mask must be 0/1, found ${mask[i]} at flat index ${i}`);
  } else mask = new Int32Array(B * T).fill(1);
  for (let i = 0; i < ids.length; i++) {
    if (mask[i] && (ids[i]! < 0 || ids[i]! >= vocabSize))
      throw new UsageError(
        `${path}: input_ids has token id ${ids[i]} at [${Math.floor(i / T)}, ${i % T}] outside the vocabulary (${vocabSize})`,
      );
    if (!mask[i] && (ids[i]! < 0 || ids[i]! >= vocabSize)) ids[i] = 0; // padding ids are never looked at
  }
  return { ids, mask, B, T };
}
