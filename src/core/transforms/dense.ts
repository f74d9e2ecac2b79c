import { DataType } from '../ir/dtype';
import type { Node } from '../ir/graph';
import type { Tensor } from '../ir/tensor';

/**
 * The weight of a dense layer (MatMul, or Gemm without transA/alpha/beta) as a row-major
 * I×O float32 matrix, with its bias; or the reason it is not one. Shared by every transform
 * that rewrites dense layers (dynamic int8, int4, low-rank).
 */
export interface DenseWeight {
  /** I × O, row-major (transB already undone). */
  w: Float32Array;
  i: number;
  o: number;
  bias?: Float32Array;
}

export function denseWeight(n: Node, constOf: (name: string) => Tensor | undefined): DenseWeight | string {
  const t = constOf(n.inputs[1]);
  if (!t || t.dtype !== DataType.FLOAT || t.dims.length !== 2) return 'the second input is not a constant float32 matrix';
  if (n.opType === 'Gemm' && (n.int('transA', 0) || n.float('alpha', 1) !== 1 || n.float('beta', 1) !== 1)) return 'Gemm with transA, alpha or beta';
  const transB = n.opType === 'Gemm' && n.int('transB', 0) === 1;
  const [i, o] = transB ? [t.dims[1], t.dims[0]] : t.dims;
  const w = transB ? transpose2d(t.toFloat32(), t.dims[0], t.dims[1]) : t.toFloat32();
  let bias: Float32Array | undefined;
  if (n.opType === 'Gemm' && n.inputs[2]) {
    const c = constOf(n.inputs[2]);
    if (!c || c.dtype !== DataType.FLOAT || c.numel !== o) return 'Gemm bias is not a constant vector';
    bias = c.toFloat32();
  }
  return { w, i, o, bias };
}

export function transpose2d(a: Float32Array, rows: number, cols: number): Float32Array {
  const t = new Float32Array(a.length);
  for (let r = 0; r < rows; r++) for (let c = 0; c < cols; c++) t[c * rows + r] = a[r * cols + c];
  return t;
}

/**
 * The common preamble of transforms that rewrite dense layers: which nodes to look at and
 * why the others are skipped. Returns the dense weight, or undefined after recording a skip.
 */
export function denseCandidate(
  n: Node,
  constOf: (name: string) => Tensor | undefined,
  what: string,
  exclude: Set<string> | undefined,
  skip: (reason: string) => void,
): DenseWeight | undefined {
  if (n.domain || (n.opType !== 'MatMul' && n.opType !== 'Gemm')) {
    skip(`${what} covers MatMul and Gemm, not ${n.opType}`);
    return undefined;
  }
  if (exclude?.has(n.name) || exclude?.has(n.label)) {
    skip('excluded');
    return undefined;
  }
  const dense = denseWeight(n, constOf);
  if (typeof dense === 'string') {
    skip(dense);
    return undefined;
  }
  return dense;
}
