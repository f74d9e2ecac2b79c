import { DataType } from '../../ir/dtype';

/**
 * Quantization arithmetic. Activations: uint8 asymmetric (or int8 symmetric); weights:
 * int8 symmetric, per channel or per tensor. Ranges always include zero so that zero is
 * exactly representable (padding and ReLU rely on it).
 */

export interface QParams {
  scale: number;
  zeroPoint: number;
  dtype: DataType.UINT8 | DataType.INT8;
}

export function activationParams(min: number, max: number, symmetric: boolean): QParams {
  let lo = Math.min(min, 0);
  let hi = Math.max(max, 0);
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) {
    lo = 0;
    hi = 1;
  }
  if (symmetric) {
    const a = Math.max(Math.abs(lo), Math.abs(hi));
    return { scale: a > 0 ? a / 127 : 1, zeroPoint: 0, dtype: DataType.INT8 };
  }
  if (hi === lo) return { scale: 1, zeroPoint: 0, dtype: DataType.UINT8 };
  const scale = (hi - lo) / 255;
  const zeroPoint = Math.min(255, Math.max(0, Math.round(-lo / scale)));
  return { scale, zeroPoint, dtype: DataType.UINT8 };
}

export interface WeightQuant {
  q: Int8Array;
  /** One scale per channel (length 1 when per tensor). */
  scales: Float32Array;
  axis: number;
}

/**
 * Symmetric int8 weights. `axis` is the channel axis for per-channel quantization (null =
 * per tensor). `qmax` is 127, or 63 with reduce-range (7-bit weights, for u8s8 kernels on
 * CPUs without VNNI, which can saturate 16-bit intermediate sums).
 */
export function quantizeWeightsInt8(w: Float32Array, dims: number[], axis: number | null, qmax = 127): WeightQuant {
  const channels = axis === null ? 1 : dims[axis];
  const inner = axis === null ? w.length : dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const outer = w.length / (channels * inner);
  if (inner === 1 && channels > 1) return quantizeLastAxis(w, outer, channels, qmax, axis ?? 0);
  const absmax = blockAbsMax(w, outer, channels, inner);
  const scales = new Float32Array(channels);
  const inv = new Float32Array(channels);
  for (let c = 0; c < channels; c++) {
    scales[c] = absmax[c] > 0 ? absmax[c] / qmax : 1;
    inv[c] = 1 / scales[c];
  }
  return { q: roundBlocks(w, outer, channels, inner, inv, qmax), scales, axis: axis ?? 0 };
}

/** Channel c's elements are the contiguous runs [(o·C + c)·inner, … + inner). */
function blockAbsMax(w: Float32Array, outer: number, channels: number, inner: number): Float32Array {
  const absmax = new Float32Array(channels);
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < channels; c++) {
      const base = (o * channels + c) * inner;
      let m = absmax[c];
      for (let k = 0; k < inner; k++) {
        const a = Math.abs(w[base + k]);
        if (a > m) m = a;
      }
      absmax[c] = m;
    }
  }
  return absmax;
}

function roundBlocks(w: Float32Array, outer: number, channels: number, inner: number, inv: Float32Array, qmax: number): Int8Array {
  const q = new Int8Array(w.length);
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < channels; c++) {
      const base = (o * channels + c) * inner;
      const s = inv[c];
      for (let k = 0; k < inner; k++) {
        const v = ((w[base + k] * s + 128.5) | 0) - 128; // branchless round (see roundColumns)
        q[base + k] = v > qmax ? qmax : v < -qmax ? -qmax : v;
      }
    }
  }
  return q;
}

/**
 * Per-channel along the last axis (MatMul weights [K, N] per column): row-major scans.
 * Each hot loop lives in its own function: V8 optimises a function with two hot loops
 * (entered by on-stack replacement) noticeably worse.
 */
function quantizeLastAxis(w: Float32Array, rows: number, cols: number, qmax: number, axis: number): WeightQuant {
  const absmax = columnAbsMax(w, rows, cols);
  const scales = new Float32Array(cols);
  const inv = new Float32Array(cols);
  for (let c = 0; c < cols; c++) {
    scales[c] = absmax[c] > 0 ? absmax[c] / qmax : 1;
    inv[c] = 1 / scales[c];
  }
  return { q: roundColumns(w, rows, cols, inv, qmax), scales, axis };
}

function columnAbsMax(w: Float32Array, rows: number, cols: number): Float32Array {
  const absmax = new Float32Array(cols);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    for (let c = 0; c < cols; c++) {
      const a = Math.abs(w[base + c]);
      if (a > absmax[c]) absmax[c] = a;
    }
  }
  return absmax;
}

function roundColumns(w: Float32Array, rows: number, cols: number, inv: Float32Array, qmax: number): Int8Array {
  const q = new Int8Array(w.length);
  for (let r = 0; r < rows; r++) {
    const base = r * cols;
    for (let c = 0; c < cols; c++) {
      // Branchless rounding: |x| ≤ qmax ≤ 127, so x + 128.5 is positive and truncation floors it.
      // (Math.round, or a sign test on random-sign weights, is 2-3x slower here.)
      const v = ((w[base + c] * inv[c] + 128.5) | 0) - 128;
      q[base + c] = v > qmax ? qmax : v < -qmax ? -qmax : v;
    }
  }
  return q;
}

/** int32 bias with scale = input scale × weight scale (per channel), zero point 0. */
export function quantizeBias(b: Float32Array, inputScale: number, weightScales: Float32Array): { q: Int32Array; scales: Float32Array } {
  const scales = new Float32Array(b.length);
  const q = new Int32Array(b.length);
  for (let i = 0; i < b.length; i++) {
    const s = inputScale * weightScales[weightScales.length === 1 ? 0 : i];
    scales[i] = s > 0 ? s : 1;
    q[i] = Math.max(-(2 ** 31), Math.min(2 ** 31 - 1, Math.round(b[i] / scales[i])));
  }
  return { q, scales };
}

/** Quantizes a float tensor with activation-style params (for constant inputs of Add/Mul…). */
export function quantizeWithParams(x: Float32Array, p: QParams): Uint8Array | Int8Array {
  const [lo, hi] = p.dtype === DataType.UINT8 ? [0, 255] : [-128, 127];
  const out = p.dtype === DataType.UINT8 ? new Uint8Array(x.length) : new Int8Array(x.length);
  for (let i = 0; i < x.length; i++) out[i] = Math.min(hi, Math.max(lo, Math.round(x[i] / p.scale) + p.zeroPoint));
  return out;
}

export function minMax(x: Float32Array): [number, number] {
  let lo = Infinity;
  let hi = -Infinity;
  for (let i = 0; i < x.length; i++) {
    const v = x[i];
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  return [lo, hi];
}
