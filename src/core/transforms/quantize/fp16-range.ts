import { DataType } from '../../ir/dtype';
import type { Model } from '../../ir/graph';
import { inferShapes } from '../../ir/shape-inference';
import type { Dataset } from '../../runtime/data/dataset';
import { calibrate } from './calibrate';

/** The largest finite float16 value (IEEE 754 binary16: (2 − 2⁻¹⁰)·2¹⁵). */
export const FLOAT16_MAX = 65504;
/** Headroom for data beyond the samples measured: a range past half of FLOAT16_MAX counts as overflow. */
export const FLOAT16_HEADROOM = 2;

export interface Fp16Overflow {
  /** Node label. */
  node: string;
  tensor: string;
  /** Largest |value| seen on the data. */
  absMax: number;
}

/**
 * Float32 node outputs whose range on `data` does not fit float16 (|x| > FLOAT16_MAX /
 * FLOAT16_HEADROOM, or already non-finite): those nodes must stay float32, or their outputs
 * become ±Infinity and NaN downstream. Ranges are streamed batch by batch (calibrate.ts).
 */
export async function findFp16Overflow(model: Model, data: Dataset, opts: { samples?: number; signal?: AbortSignal } = {}): Promise<Fp16Overflow[]> {
  const g = model.graph;
  const types = inferShapes(model).types;
  const owner = new Map<string, string>();
  for (const n of g.nodes) {
    if (n.subgraphs().length || n.opType === 'Constant') continue;
    for (const o of n.outputs) if (o && types.get(o)?.dtype === DataType.FLOAT) owner.set(o, n.label);
  }
  if (!owner.size) return [];
  const ranges = await calibrate(model, [...owner.keys()], data, { method: 'minmax', batchSize: 1, limit: opts.samples ?? 8, signal: opts.signal });
  const limit = FLOAT16_MAX / FLOAT16_HEADROOM;
  const out: Fp16Overflow[] = [];
  for (const [tensor, r] of ranges) {
    const absMax = Math.max(Math.abs(r.min), Math.abs(r.max));
    if (absMax > limit || Number.isNaN(r.min) || Number.isNaN(r.max)) out.push({ node: owner.get(tensor)!, tensor, absMax });
  }
  return out;
}
