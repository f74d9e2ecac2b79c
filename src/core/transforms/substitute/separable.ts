import type { Dataset } from '../../runtime/data/dataset';
import { fromRows, svd } from './linalg';

/**
 * Depthwise-separable substitution, shared by every format: the options, the default error
 * budget, and the per-input-channel SVD that initialises a depthwise k×k conv (multiplier m)
 * plus a pointwise 1×1 conv from a k×k conv's weight [O, I, kH, kW] (ONNX layout; the TF.js
 * path converts Keras' HWIO to it). The rank-m truncated SVD of each O × k² slice is its best
 * rank-m approximation in the Frobenius norm (Eckart–Young).
 */

/**
 * The default error budget per layer: a relative error of 0.25 — ‖W − Ŵ‖/‖W‖ of the SVD
 * initialisation without data; ‖Y − Ŷ‖/‖Y‖ on calibration data after the refit. Without an
 * explicit --multiplier, each layer takes the smallest multiplier within the budget that still
 * saves parameters, or stays as it is.
 */
export const DEFAULT_DEPTHWISE_MAX_ERROR = 0.25;

export interface DepthwiseOptions {
  /** Depthwise multiplier for every layer; default: chosen per layer within `maxError`. */
  multiplier?: number;
  /** Only these Conv nodes (names); default: every eligible one (1-input-channel convs excluded). */
  layers?: string[];
  /**
   * Per-layer bound on the relative error (see DEFAULT_DEPTHWISE_MAX_ERROR, the default when
   * no multiplier is given; with an explicit multiplier, no bound unless given).
   */
  maxError?: number;
  refit?: boolean;
  calib?: Dataset;
  batchSize?: number;
  signal?: AbortSignal;
}

/** Singular values of each input channel's O × k² slice (for the error of every multiplier). */
export function channelSpectra(w: Float32Array, o: number, i: number, kk: number): number[][] {
  const out: number[][] = [];
  for (let ch = 0; ch < i; ch++) {
    const slice = new Float32Array(o * kk);
    for (let oo = 0; oo < o; oo++) for (let k = 0; k < kk; k++) slice[oo * kk + k] = w[(oo * i + ch) * kk + k];
    out.push(svd(fromRows(slice, o, kk)).s);
  }
  return out;
}

/** ‖W − Ŵ_m‖_F / ‖W‖_F of the rank-m initialisation (Eckart–Young: the dropped singular values). */
export function weightError(spectra: number[][], m: number): number {
  let total = 0;
  let dropped = 0;
  for (const s of spectra) {
    s.forEach((v, j) => {
      total += v * v;
      if (j >= m) dropped += v * v;
    });
  }
  return total > 0 ? Math.sqrt(dropped / total) : 0;
}

/** Rank-m SVD of each input channel's O × k² slice. */
export function initFromSvd(w: Float32Array, o: number, i: number, kk: number, m: number) {
  const depthwise = new Float32Array(i * m * kk);
  const pointwise = new Float32Array(o * i * m);
  for (let ch = 0; ch < i; ch++) {
    const slice = new Float32Array(o * kk);
    for (let oo = 0; oo < o; oo++) for (let k = 0; k < kk; k++) slice[oo * kk + k] = w[(oo * i + ch) * kk + k];
    const { u, s, v } = svd(fromRows(slice, o, kk));
    for (let j = 0; j < m; j++) {
      const sigma = s[j] ?? 0;
      for (let k = 0; k < kk; k++) depthwise[(ch * m + j) * kk + k] = j < v.columns ? v.get(k, j) : 0;
      for (let oo = 0; oo < o; oo++) pointwise[oo * i * m + ch * m + j] = j < u.columns ? sigma * u.get(oo, j) : 0;
    }
  }
  return { depthwise, pointwise };
}
