import { DataType, dtypeName } from '../ir/dtype';
import type { Tensor } from '../ir/tensor';

export const HISTOGRAM_BINS = 256;

export interface WeightStats {
  name: string;
  dtype: string;
  shape: number[];
  params: number;
  bytes: number;
  min: number;
  max: number;
  mean: number;
  std: number;
  /** Fraction of elements that are exactly zero. */
  sparsity: number;
  /** 256 equal-width bins over [min, max]. */
  histogram: { min: number; max: number; counts: number[] };
  /** Shannon entropy of the histogram, in bits (0..8). */
  entropyBits: number;
  /** Count of NaN/Inf values (excluded from the other figures). */
  nonFinite: number;
}

const CHUNK = 1 << 16;

/**
 * Streams a tensor twice (moments, then histogram) in fixed-size chunks, so memory
 * stays bounded even for external-data tensors of many gigabytes.
 */
export function weightStats(t: Tensor): WeightStats | undefined {
  if (t.dtype === DataType.STRING || t.dtype === DataType.COMPLEX64 || t.dtype === DataType.COMPLEX128) return undefined;
  if (t.dtype >= DataType.FLOAT8E4M3FN && t.dtype <= DataType.FLOAT8E5M2FNUZ) return undefined;
  if (t.dtype === DataType.FLOAT4E2M1) return undefined;
  const n = t.numel;
  let min = Infinity;
  let max = -Infinity;
  let sum = 0;
  let zeros = 0;
  let bad = 0;
  // Welford-free two-level sum: per-chunk sums of squared deviations would need the mean;
  // sum of squares in float64 is accurate enough for weight statistics.
  let sumSq = 0;
  forEachValues(t, (v, c) => {
    let lmin = min;
    let lmax = max;
    let s = 0;
    let s2 = 0;
    let z = 0;
    let b = 0;
    for (let i = 0; i < c; i++) {
      const x = v[i];
      if (x - x !== 0) {
        b++;
        continue;
      }
      if (x < lmin) lmin = x;
      if (x > lmax) lmax = x;
      s += x;
      s2 += x * x;
      if (x === 0) z++;
    }
    min = lmin;
    max = lmax;
    sum += s;
    sumSq += s2;
    zeros += z;
    bad += b;
  });
  const finite = n - bad;
  const counts = new Array<number>(HISTOGRAM_BINS).fill(0);
  if (finite === 0) {
    return {
      name: t.name, dtype: dtypeName(t.dtype), shape: [...t.dims], params: n, bytes: t.byteLength,
      min: 0, max: 0, mean: 0, std: 0, sparsity: 0, histogram: { min: 0, max: 0, counts }, entropyBits: 0, nonFinite: bad,
    };
  }
  const mean = sum / finite;
  const variance = Math.max(0, sumSq / finite - mean * mean);
  const range = max - min;
  const bins = new Int32Array(HISTOGRAM_BINS);
  if (range === 0) bins[0] = finite;
  else {
    const scale = HISTOGRAM_BINS / range;
    const last = HISTOGRAM_BINS - 1;
    forEachValues(t, (v, c) => {
      for (let i = 0; i < c; i++) {
        const x = v[i];
        if (x - x !== 0) continue;
        const k = ((x - min) * scale) | 0;
        bins[k > last ? last : k]++;
      }
    });
  }
  let entropy = 0;
  for (let i = 0; i < HISTOGRAM_BINS; i++) {
    counts[i] = bins[i];
    if (bins[i]) {
      const p = bins[i] / finite;
      entropy -= p * Math.log2(p);
    }
  }
  return {
    name: t.name,
    dtype: dtypeName(t.dtype),
    shape: [...t.dims],
    params: n,
    bytes: t.byteLength,
    min,
    max,
    mean,
    std: Math.sqrt(variance),
    sparsity: n ? zeros / n : 0,
    histogram: { min, max, counts },
    entropyBits: entropy,
    nonFinite: bad,
  };
}

/**
 * Calls `cb` with chunks of values. float32 data in memory is viewed directly (copied into
 * an aligned scratch buffer only when the view is unaligned); other types are converted.
 */
function forEachValues(t: Tensor, cb: (v: ArrayLike<number>, count: number) => void): void {
  if (t.dtype === DataType.FLOAT && t.sourceKind !== 'external') {
    const bytes = t.bytes();
    const n = bytes.length >> 2;
    if (bytes.byteOffset % 4 === 0) {
      const all = new Float32Array(bytes.buffer, bytes.byteOffset, n);
      for (let s = 0; s < n; s += CHUNK) {
        const c = Math.min(CHUNK, n - s);
        cb(all.subarray(s, s + c), c);
      }
      return;
    }
    const scratch = new Float32Array(CHUNK);
    const sb = new Uint8Array(scratch.buffer);
    for (let s = 0; s < n; s += CHUNK) {
      const c = Math.min(CHUNK, n - s);
      sb.set(bytes.subarray(s * 4, (s + c) * 4));
      cb(scratch, c);
    }
    return;
  }
  t.forEachChunk(CHUNK, cb);
}
