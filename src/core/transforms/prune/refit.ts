import { Matrix, solveSpd, toFloat32, type GramAccumulator } from '../substitute/linalg';

/** Least-squares recovery after pruning, shared by the ONNX (onnx/reconstruct.ts) and TF.js layers (tfjs-layers/reconstruct.ts) refits. */

/** One refitted layer: the relative output error ‖Y − Ŷ‖/‖Y‖ on the calibration data before and after. */
export interface ReconstructReport {
  layer: string;
  errorBefore: number;
  errorAfter: number;
}

/**
 * The least-squares step shared by the ONNX and TF.js refits: the current weights' error, the
 * solution's error, and the new kernel (in the layer's own layout, `at(o, f)` giving the flat
 * index of output o, feature f) and bias, or no weights when the fit does not improve.
 */
export function refitWeights(
  acc: GramAccumulator,
  kernel: Float32Array,
  bias: Float32Array | undefined,
  out: number,
  features: number,
  at: (o: number, f: number) => number,
): { errorBefore: number; errorAfter: number; kernel?: Float32Array; bias?: Float32Array } {
  // Current weights as an O × (features + 1) matrix.
  const cur = new Matrix(out, features + 1);
  for (let o = 0; o < out; o++) {
    for (let f = 0; f < features; f++) cur.set(o, f, kernel[at(o, f)]);
    cur.set(o, features, bias?.[o] ?? 0);
  }
  const errorBefore = acc.relativeError(cur);
  const sol = solveSpd(acc.gram(), acc.cross()).transpose();
  const errorAfter = acc.relativeError(sol);
  if (!(errorAfter < errorBefore)) return { errorBefore, errorAfter: errorBefore };
  const flat = toFloat32(sol);
  const nw = new Float32Array(kernel.length);
  for (let o = 0; o < out; o++) for (let f = 0; f < features; f++) nw[at(o, f)] = flat[o * (features + 1) + f];
  return { errorBefore, errorAfter, kernel: nw, bias: Float32Array.from({ length: out }, (_, o) => flat[o * (features + 1) + features]) };
}
