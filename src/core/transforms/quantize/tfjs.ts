import { UsageError } from '../../errors';
import { tfjsDocument, type WeightQuantization } from '../../formats/tfjs/document';
import { DataType } from '../../ir/dtype';
import type { Model } from '../../ir/graph';
import { cloneModel } from '../graph-edit';

/**
 * TF.js weight quantization, the way TF.js users deploy it: the weights manifest stores
 * each float weight as float16, or as uint8/uint16 with a per-tensor min and scale, and
 * TensorFlow.js dequantizes them when it loads the model. Compute stays float32; what
 * shrinks is the download. Weights smaller than `minElements` (biases, BN vectors) are
 * quantized too unless excluded: they are tiny, and TF.js's converter does the same.
 */
export interface TfjsQuantizeResult {
  model: Model;
  quantized: string[];
  skipped: Array<{ name: string; reason: string }>;
  bytesBefore: number;
  bytesAfter: number;
}

const BYTES: Record<WeightQuantization, number> = { float16: 2, uint8: 1, uint16: 2 };

export function quantizeTfjsWeights(model: Model, dtype: WeightQuantization, opts: { exclude?: Set<string> } = {}): TfjsQuantizeResult {
  const src = tfjsDocument(model.source);
  if (!src) throw new UsageError(`TF.js weight quantization (${dtype}) works on TF.js models; this is ${model.format}`);
  const out = cloneModel(model);
  const doc = tfjsDocument(out.source)!;
  const r: TfjsQuantizeResult = { model: out, quantized: [], skipped: [], bytesBefore: 0, bytesAfter: 0 };
  for (const [name, t] of out.graph.initializers) {
    const before = doc.quantization.has(name) ? t.numel * BYTES[doc.quantization.get(name)!] : t.numel * 4;
    r.bytesBefore += before;
    const excluded = [...(opts.exclude ?? [])].some((e) => name === e || name.startsWith(`${e}/`));
    if (t.dtype !== DataType.FLOAT || excluded) {
      r.skipped.push({ name, reason: excluded ? 'excluded' : `${DataType[t.dtype].toLowerCase()} weights stay as they are` });
      r.bytesAfter += before;
      continue;
    }
    doc.quantization.set(name, dtype);
    r.quantized.push(name);
    r.bytesAfter += t.numel * BYTES[dtype];
  }
  return r;
}
