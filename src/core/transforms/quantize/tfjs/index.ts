import { UsageError } from '../../../errors';
import { tfjsDocument, type WeightQuantization } from '../../../formats/tfjs/document';
import { DataType, float16ToFloat32, float32ToFloat16 } from '../../../ir/dtype';
import { affineParams } from '../../../formats/tfjs/manifest';
import type { Model } from '../../../ir/graph';
import { cloneModel } from '../../graph-edit';

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
  /** Weights stored wider than asked, because the asked storage lost too much of them. */
  widened: Array<{ name: string; asked: WeightQuantization; stored: WeightQuantization | 'float32'; bulkSqnrDb: number }>;
}

/**
 * A stored weight must keep at least this SQNR (dB) on its bulk: the quantization noise is
 * measured against the robust spread of the weights (1.4826 · median absolute deviation of
 * the non-zero values), so one outlier that stretches the uint8 grid cannot hide the damage
 * it does to every other weight (e.g. one 20.0 among N(0, 0.05) weights: ≈ 7 dB in uint8; Gaussian weights in uint8: ≈ 40 dB).
 * 20 dB is a noise 10% of the spread of the weights.
 */
export const MIN_BULK_SQNR_DB = 20;

const BYTES: Record<WeightQuantization, number> = { float16: 2, uint8: 1, uint16: 2 };

export function quantizeTfjsWeights(model: Model, dtype: WeightQuantization, opts: { exclude?: Set<string> } = {}): TfjsQuantizeResult {
  const src = tfjsDocument(model.source);
  if (!src) throw new UsageError(`TF.js weight quantization (${dtype}) works on TF.js models; this is ${model.format}`);
  const out = cloneModel(model);
  const doc = tfjsDocument(out.source)!;
  const r: TfjsQuantizeResult = { model: out, quantized: [], skipped: [], bytesBefore: 0, bytesAfter: 0, widened: [] };
  for (const [name, t] of out.graph.initializers) {
    const before = doc.quantization.has(name) ? t.numel * BYTES[doc.quantization.get(name)!] : t.numel * 4;
    r.bytesBefore += before;
    const excluded = [...(opts.exclude ?? [])].some((e) => name === e || name.startsWith(`${e}/`));
    if (t.dtype !== DataType.FLOAT || excluded) {
      r.skipped.push({ name, reason: excluded ? 'excluded' : `${DataType[t.dtype].toLowerCase()} weights stay as they are` });
      r.bytesAfter += before;
      continue;
    }
    // Measure what the asked storage does to this weight; widen it when that is too much.
    const values = t.toFloat32();
    let stored: WeightQuantization | 'float32' = dtype;
    let db = bulkSqnrDb(values, dtype);
    const askedDb = db;
    if (dtype === 'uint8' && db < MIN_BULK_SQNR_DB) {
      stored = 'uint16';
      db = bulkSqnrDb(values, 'uint16');
    }
    if (stored !== 'float16' && db < MIN_BULK_SQNR_DB) stored = 'float32';
    if (stored === 'float16' && db < MIN_BULK_SQNR_DB) stored = 'float32';
    if (stored !== dtype) r.widened.push({ name, asked: dtype, stored, bulkSqnrDb: askedDb });
    if (stored === 'float32') {
      r.skipped.push({ name, reason: `${dtype} keeps only ${askedDb.toFixed(1)} dB of it (< ${MIN_BULK_SQNR_DB} dB): kept float32` });
      r.bytesAfter += t.numel * 4;
      continue;
    }
    doc.quantization.set(name, stored);
    r.quantized.push(name);
    r.bytesAfter += t.numel * BYTES[stored];
  }
  return r;
}

/**
 * SQNR (dB) of `storage` on a weight's bulk: robust variance (MAD-based, non-zero values)
 * over the mean squared error of the stored values. Infinity when there is nothing to measure.
 */
export function bulkSqnrDb(values: Float32Array, storage: WeightQuantization): number {
  let err = 0;
  if (storage === 'float16') {
    for (let i = 0; i < values.length; i++) {
      const d = values[i] - float16ToFloat32(float32ToFloat16(values[i]));
      err += Number.isFinite(d) ? d * d : Infinity;
    }
  } else {
    const bits = storage === 'uint8' ? 8 : 16;
    const { min, scale } = affineParams(values, bits);
    const max = 2 ** bits - 1;
    for (let i = 0; i < values.length; i++) {
      const q = Math.min(max, Math.max(0, Math.round((values[i] - min) / scale)));
      const d = values[i] - (q * scale + min);
      err += d * d;
    }
  }
  if (err === 0) return Infinity;
  const sigma = robustSigma(values);
  if (!(sigma > 0)) return Infinity;
  return 10 * Math.log10((sigma * sigma) / (err / values.length));
}

/** 1.4826 · MAD of the non-zero values (a subsample of at most 65536 for large tensors). */
function robustSigma(values: Float32Array): number {
  const step = Math.max(1, Math.floor(values.length / 65536));
  const v: number[] = [];
  for (let i = 0; i < values.length; i += step) if (values[i] !== 0 && Number.isFinite(values[i])) v.push(values[i]);
  if (v.length < 2) return 0;
  const median = (a: number[]) => {
    a.sort((x, y) => x - y);
    const m = a.length >> 1;
    return a.length % 2 ? a[m] : (a[m - 1] + a[m]) / 2;
  };
  const med = median(v);
  return 1.4826 * median(v.map((x) => Math.abs(x - med)));
}
