import type { Model } from '../../ir/graph';
import { captureGrouped } from '../../runtime/capture';
import { hostValues } from '../../runtime/compare';
import type { Dataset } from '../../runtime/data/dataset';

/**
 * Activation ranges from calibration data, streamed batch by batch: only one batch of one
 * group of activations is in memory at a time (`captureGrouped` bounds it, default
 * 128 MiB), and each tensor keeps only its running min/max and a 2048-bin histogram.
 *
 * - minmax: the observed minimum and maximum.
 * - percentile: the p-th and (100−p)-th percentiles, from a 2048-bin histogram over the
 *   observed range (a second pass over the data).
 * - entropy: the clipping threshold that minimises the KL divergence between the |x|
 *   histogram and its 128-level quantized version (TensorRT's method; second pass).
 */

export type CalibrationMethod = 'minmax' | 'percentile' | 'entropy';

export interface CalibrationOptions {
  method: CalibrationMethod;
  percentile?: number;
  batchSize: number;
  limit?: number;
  signal?: AbortSignal;
  /** Bytes one batch of captured activations may take (see `captureGrouped`). */
  maxBatchBytes?: number;
  /** pass 1 (ranges) or 2 (histograms); samples done in this group; group index and count. */
  onProgress?: (pass: number, done: number, group: number, groups: number) => void;
}

export type Ranges = Map<string, { min: number; max: number }>;

const BINS = 2048;

export async function calibrate(model: Model, tensors: string[], data: Dataset, opts: CalibrationOptions): Promise<Ranges> {
  const ranges: Ranges = new Map(tensors.map((t) => [t, { min: Infinity, max: -Infinity }]));
  if (tensors.length === 0) return ranges;
  const capture = { batchSize: opts.batchSize, limit: opts.limit, signal: opts.signal, maxBatchBytes: opts.maxBatchBytes };
  await captureGrouped(model, tensors, data, capture, ({ group, groups, start, size, values }) => {
    for (const t of Object.keys(values)) {
      const v = hostValues(values[t]);
      const r = ranges.get(t)!;
      let lo = r.min;
      let hi = r.max;
      for (let i = 0; i < v.length; i++) {
        const x = v[i];
        if (x < lo) lo = x;
        if (x > hi) hi = x;
      }
      r.min = lo;
      r.max = hi;
    }
    opts.onProgress?.(1, start + size, group, groups);
  });
  if (opts.method === 'minmax') return ranges;

  const hists = new Map(tensors.map((t) => [t, new Float64Array(BINS)]));
  const entropy = opts.method === 'entropy';
  await captureGrouped(model, tensors, data, capture, ({ group, groups, start, size, values }) => {
    for (const t of Object.keys(values)) {
      const { min, max } = ranges.get(t)!;
      const h = hists.get(t)!;
      const v = hostValues(values[t]);
      const lo = entropy ? 0 : min;
      const hi = entropy ? Math.max(Math.abs(min), Math.abs(max)) : max;
      if (!(hi > lo)) continue;
      const scale = BINS / (hi - lo);
      for (let i = 0; i < v.length; i++) {
        const x = entropy ? Math.abs(v[i]) : v[i];
        const k = Math.floor((x - lo) * scale);
        h[k >= BINS ? BINS - 1 : k < 0 ? 0 : k]++;
      }
    }
    opts.onProgress?.(2, start + size, group, groups);
  });

  const out: Ranges = new Map();
  for (const t of tensors) {
    const { min, max } = ranges.get(t)!;
    const h = hists.get(t)!;
    if (entropy) {
      const absmax = Math.max(Math.abs(min), Math.abs(max));
      const thr = absmax > 0 ? entropyThreshold(h) * (absmax / BINS) : 0;
      out.set(t, { min: Math.max(min, -thr), max: Math.min(max, thr) });
    } else {
      const p = opts.percentile ?? 99.999;
      const width = (max - min) / BINS;
      out.set(t, max > min ? { min: min + percentileBin(h, 100 - p) * width, max: min + (percentileBin(h, p) + 1) * width } : { min, max });
    }
  }
  return out;
}

/** Index of the bin holding the p-th percentile of the histogram. */
function percentileBin(h: Float64Array, p: number): number {
  let total = 0;
  for (const c of h) total += c;
  const target = (p / 100) * total;
  let acc = 0;
  for (let i = 0; i < h.length; i++) {
    acc += h[i];
    if (acc >= target) return i;
  }
  return h.length - 1;
}

/** The bin count (as a threshold, in bins) minimising KL(P‖Q) for 128 quantization levels. */
export function entropyThreshold(h: Float64Array, levels = 128): number {
  const n = h.length;
  let best = n;
  let bestKl = Infinity;
  for (let i = levels; i <= n; i += 8) {
    // P: the first i bins, with everything beyond folded into the last one.
    const p = Array.from(h.subarray(0, i));
    let outliers = 0;
    for (let k = i; k < n; k++) outliers += h[k];
    p[i - 1] += outliers;
    // Q: the first i bins merged into `levels` groups, spread back over their non-empty bins.
    const q = new Float64Array(i);
    const per = i / levels;
    for (let g = 0; g < levels; g++) {
      const a = Math.floor(g * per);
      const b = g === levels - 1 ? i : Math.floor((g + 1) * per);
      let sum = 0;
      let nonzero = 0;
      for (let k = a; k < b; k++) {
        sum += h[k];
        if (h[k] > 0) nonzero++;
      }
      if (nonzero) for (let k = a; k < b; k++) if (h[k] > 0) q[k] = sum / nonzero;
    }
    let ps = 0;
    let qs = 0;
    for (let k = 0; k < i; k++) {
      ps += p[k];
      qs += q[k];
    }
    if (ps === 0 || qs === 0) continue;
    let kl = 0;
    for (let k = 0; k < i; k++) {
      if (p[k] > 0) {
        const pk = p[k] / ps;
        const qk = q[k] > 0 ? q[k] / qs : 1e-12;
        kl += pk * Math.log(pk / qk);
      }
    }
    if (kl < bestKl) {
      bestKl = kl;
      best = i;
    }
  }
  return best + 0.5;
}
