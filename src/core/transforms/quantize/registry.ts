import { AttrType, type Graph, type Node } from '../../ir/graph';
import type { Tensor } from '../../ir/tensor';

/**
 * Per-op quantization rules. An op without a rule is left in float and reported as
 * skipped, never a crash. Static (QDQ) rules say which inputs are activations, which input
 * is a weight (and its channel axis), which is a bias, and how the output gets its
 * quantization parameters: its own calibrated range, or shared with its input (ops that
 * cannot widen the range, so ORT can drop the QDQ pair around them).
 */

export interface StaticRule {
  /** Activation input indices to quantize. */
  activations(n: Node, isConst: (name: string) => boolean): number[];
  weight?(n: Node, isConst: (name: string) => boolean): { index: number; axis: number | null } | undefined;
  /** Input index of a bias quantized to int32 with scale = input scale × weight scale. */
  bias?: number;
  output: 'own' | 'shared' | 'none';
  /** A reason this node cannot be quantized, if any. */
  unsupported?(n: Node): string | undefined;
}

const first = () => [0];

export const STATIC_RULES: Record<string, StaticRule> = {
  Conv: {
    activations: first,
    weight: () => ({ index: 1, axis: 0 }),
    bias: 2,
    output: 'own',
  },
  ConvTranspose: {
    activations: first,
    // Output channels sit on axis 1 and repeat per group, so per-tensor keeps bias scales consistent.
    weight: () => ({ index: 1, axis: null }),
    bias: 2,
    output: 'own',
  },
  Gemm: {
    activations: first,
    weight: (n) => ({ index: 1, axis: n.int('transB', 0) ? 0 : 1 }),
    bias: 2,
    output: 'own',
    unsupported: (n) =>
      n.int('transA', 0) ? 'Gemm with transA=1' : n.float('alpha', 1) !== 1 || n.float('beta', 1) !== 1 ? 'Gemm with alpha or beta other than 1' : undefined,
  },
  MatMul: {
    activations: (n, isConst) => (isConst(n.inputs[1]) ? [0] : [0, 1]),
    weight: (n, isConst) => (isConst(n.inputs[1]) ? { index: 1, axis: -1 } : undefined),
    output: 'own',
  },
  Add: { activations: (n) => n.inputs.map((_, i) => i), output: 'own' },
  Mul: { activations: (n) => n.inputs.map((_, i) => i), output: 'own' },
  Concat: { activations: (n) => n.inputs.map((_, i) => i), output: 'own' },
  AveragePool: { activations: first, output: 'own' },
  GlobalAveragePool: { activations: first, output: 'own' },
  MaxPool: { activations: first, output: 'shared', unsupported: (n) => (n.outputs.length > 1 && n.outputs[1] ? 'MaxPool with an indices output' : undefined) },
  GlobalMaxPool: { activations: first, output: 'shared' },
  Resize: { activations: first, output: 'shared' },
  Relu: { activations: first, output: 'own' },
  Clip: { activations: first, output: 'own' },
  Reshape: { activations: first, output: 'shared' },
  Flatten: { activations: first, output: 'shared' },
  Transpose: { activations: first, output: 'shared' },
  Squeeze: { activations: first, output: 'shared' },
  Unsqueeze: { activations: first, output: 'shared' },
};

/** Ops that ORT folds into a preceding quantized op when the output's Q range starts at 0. */
export const FUSIBLE_ACTIVATIONS = new Set(['Relu', 'Clip']);

/**
 * Resolves a value to a constant tensor: an initializer, a Constant node, or an Identity
 * of either. Returns undefined for anything computed at run time.
 */
export function constantResolver(g: Graph): (name: string) => Tensor | undefined {
  const producer = new Map<string, Node>();
  for (const n of g.nodes) for (const o of n.outputs) producer.set(o, n);
  const resolve = (name: string, depth = 0): Tensor | undefined => {
    if (!name) return undefined;
    const init = g.initializers.get(name);
    if (init) return init;
    const p = producer.get(name);
    if (!p || depth > 8) return undefined;
    if (p.opType === 'Constant') {
      const a = p.attr('value');
      return a?.type === AttrType.TENSOR ? a.value : undefined;
    }
    if (p.opType === 'Identity') return resolve(p.inputs[0], depth + 1);
    return undefined;
  };
  return (name) => resolve(name);
}

/**
 * Identifies a dense layer's weight as stored (its value name and whether Gemm reads it
 * transposed), so that a weight shared by several layers is transformed once and shared again.
 */
export function weightKey(n: Node): string {
  return `${n.inputs[1]}|${n.opType === 'Gemm' && n.int('transB', 0) === 1 ? 'T' : 'N'}`;
}
