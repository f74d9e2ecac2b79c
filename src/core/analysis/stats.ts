import * as fs from 'fs';
import * as zlib from 'zlib';
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

const CHUNK = 1 << 20;

/** Running moments; kept as a plain object so the kernels below stay monomorphic. */
interface Moments {
  min: number;
  max: number;
  sum: number;
  sumSq: number;
  zeros: number;
  bad: number;
}

function momentsF32(v: Float32Array, n: number, m: Moments): void {
  let lmin = m.min;
  let lmax = m.max;
  let s = 0;
  let s2 = 0;
  let z = 0;
  for (let i = 0; i < n; i++) {
    const x = v[i];
    if (x < lmin) lmin = x;
    if (x > lmax) lmax = x;
    s += x;
    s2 += x * x;
    if (x === 0) z++;
  }
  if (s - s !== 0 || lmin === -Infinity || lmax === Infinity) return momentsChecked(v, n, m);
  m.min = lmin;
  m.max = lmax;
  m.sum += s;
  m.sumSq += s2;
  m.zeros += z;
}

/** Slow path for chunks that contain NaN or ±Inf: those values are counted and skipped. */
function momentsChecked(v: ArrayLike<number>, n: number, m: Moments): void {
  for (let i = 0; i < n; i++) {
    const x = v[i];
    if (x - x !== 0) {
      m.bad++;
      continue;
    }
    if (x < m.min) m.min = x;
    if (x > m.max) m.max = x;
    m.sum += x;
    m.sumSq += x * x;
    if (x === 0) m.zeros++;
  }
}

function histF32(v: Float32Array, n: number, min: number, scale: number, bins: Int32Array, checked: boolean): void {
  const last = HISTOGRAM_BINS - 1;
  if (checked) {
    for (let i = 0; i < n; i++) {
      const x = v[i];
      if (x - x !== 0) continue;
      const k = ((x - min) * scale) | 0;
      bins[k > last ? last : k]++;
    }
    return;
  }
  for (let i = 0; i < n; i++) {
    const k = ((v[i] - min) * scale) | 0;
    bins[k > last ? last : k]++;
  }
}

/**
 * Streams a tensor twice (moments, then histogram) in fixed-size chunks, so memory
 * stays bounded even for external-data tensors of many gigabytes. float32 data in
 * memory is scanned in place when aligned.
 */
export function weightStats(t: Tensor): WeightStats | undefined {
  if (t.dtype === DataType.STRING || t.dtype === DataType.COMPLEX64 || t.dtype === DataType.COMPLEX128) return undefined;
  if (t.dtype >= DataType.FLOAT8E4M3FN && t.dtype <= DataType.FLOAT8E5M2FNUZ) return undefined;
  if (t.dtype === DataType.FLOAT4E2M1) return undefined;
  const n = t.numel;
  const m: Moments = { min: Infinity, max: -Infinity, sum: 0, sumSq: 0, zeros: 0, bad: 0 };
  forEachF32(t, (v, c) => momentsF32(v, c, m));
  const finite = n - m.bad;
  const counts = new Array<number>(HISTOGRAM_BINS).fill(0);
  const base = { name: t.name, dtype: dtypeName(t.dtype), shape: [...t.dims], params: n, bytes: t.byteLength, nonFinite: m.bad };
  if (finite === 0) {
    return { ...base, min: 0, max: 0, mean: 0, std: 0, sparsity: 0, histogram: { min: 0, max: 0, counts }, entropyBits: 0 };
  }
  const { min, max } = m;
  const mean = m.sum / finite;
  const variance = Math.max(0, m.sumSq / finite - mean * mean);
  const bins = new Int32Array(HISTOGRAM_BINS);
  if (max === min) bins[0] = finite;
  else {
    const scale = HISTOGRAM_BINS / (max - min);
    forEachF32(t, (v, c) => histF32(v, c, min, scale, bins, m.bad > 0));
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
    ...base,
    min,
    max,
    mean,
    std: Math.sqrt(variance),
    sparsity: n ? m.zeros / n : 0,
    histogram: { min, max, counts },
    entropyBits: entropy,
  };
}

/**
 * Calls `cb` with float32 chunks of the values: an in-place view for aligned in-memory
 * float32 data, otherwise an aligned scratch chunk (copied or converted).
 */
function forEachF32(t: Tensor, cb: (v: Float32Array, count: number) => void): void {
  const n = t.numel;
  if (t.dtype === DataType.FLOAT && t.sourceKind !== 'external') {
    const bytes = t.bytes();
    if (bytes.byteOffset % 4 === 0) {
      cb(new Float32Array(bytes.buffer, bytes.byteOffset, n), n);
      return;
    }
  }
  const scratch = new Float32Array(Math.min(CHUNK, n));
  if (t.dtype === DataType.FLOAT) {
    const sb = new Uint8Array(scratch.buffer);
    for (let s = 0; s < n; s += CHUNK) {
      const c = Math.min(CHUNK, n - s);
      t.readInto(s * 4, sb.subarray(0, c * 4));
      cb(scratch, c);
    }
    return;
  }
  t.forEachChunk(CHUNK, (v, c) => {
    for (let i = 0; i < c; i++) scratch[i] = v[i];
    cb(scratch, c);
  });
}

/** Chunk size for `deflatedSize`: far above deflate's 32 KiB window, so chunking costs ~nothing. */
const DEFLATE_CHUNK = 16 * 2 ** 20;

/**
 * Bytes the files take compressed with deflate (level 6), as a zip would store them: what
 * unstructured sparsity buys on disk. Streams each file in 16 MiB chunks, each deflated on
 * its own, so files of any size (beyond 2 GiB) work in bounded memory; the figure differs
 * from a single deflate stream by a few bytes per chunk. RFC 1951.
 */
export function deflatedSize(files: string[]): number {
  let total = 0;
  const buf = Buffer.allocUnsafe(DEFLATE_CHUNK);
  const words = new Uint32Array(buf.buffer, buf.byteOffset, DEFLATE_CHUNK / 4);
  let zeroChunk: number | undefined; // deflated size of a whole chunk of zeros (sparse files, pruned weights)
  for (const file of files) {
    const fd = fs.openSync(file, 'r');
    try {
      for (;;) {
        const n = fs.readSync(fd, buf, 0, DEFLATE_CHUNK, null);
        if (n <= 0) break;
        if (n === DEFLATE_CHUNK && words.every((w) => w === 0)) {
          zeroChunk ??= zlib.deflateRawSync(buf, { level: 6 }).length;
          total += zeroChunk;
          continue;
        }
        total += zlib.deflateRawSync(buf.subarray(0, n), { level: 6 }).length;
      }
    } finally {
      fs.closeSync(fd);
    }
  }
  return total;
}
