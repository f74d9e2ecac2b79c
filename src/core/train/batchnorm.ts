import { UsageError } from '../errors';
import { DataType } from '../ir/dtype';
import type { Dim, Graph, TensorTypeInfo } from '../ir/graph';
import type { AttrSpec } from './grad/registry';

/** What the rewrite needs of autodiff's `Emitter` (fresh names, constants, nodes). */
interface Emit {
  op(op: string, inputs: string[], attrs?: Record<string, AttrSpec>): string;
  emitNamed(op: string, inputs: string[], output: string): void;
  ints(values: number[]): string;
  float(value: number, dims?: number[]): string;
}

/**
 * BatchNormalization in train mode (`batchNorm: 'train'`), with PyTorch's semantics
 * (`torch.nn.BatchNorm2d` in `train()`; Ioffe & Szegedy 2015):
 * - the forward normalises with the batch statistics over every axis but the channel axis 1:
 *   μ_B = mean(x), σ²_B = mean((x − μ_B)²) (biased), y = (x − μ_B)/√(σ²_B + ε)·γ + β;
 * - the running statistics are updated with momentum m = 1 − `momentum` of the ONNX node
 *   (ONNX's `momentum` weighs the old value, PyTorch's the new one; exporters write 0.9 for
 *   PyTorch's default 0.1): mean ← (1 − m)·mean + m·μ_B and
 *   var ← (1 − m)·var + m·σ²_B·n/(n − 1) (unbiased, n = values per channel, n − 1 floored at 1).
 *
 * In the training graph each BN node becomes standard ops (ReduceMean, Sub, Mul, Add, Sqrt,
 * Div, Reshape) that autodiff differentiates like any others, so the gradient flows through
 * the batch statistics. The running mean and variance become graph inputs (fed every step)
 * and their updated values extra outputs; the caller writes them back. The inference graph
 * is untouched: the trained model keeps its BN nodes with the new running statistics.
 */

export interface BatchNormState {
  /** Initializer name of a running statistic. */
  name: string;
  dims: number[];
  /** Output of the training graph holding its updated value. */
  output: string;
}

/**
 * Rewrites every BatchNormalization node of `g` (the training graph's forward copy) into
 * batch-statistics ops in place (topological order kept). `shapes` gains the shapes of the
 * new tensors (the gradient rules of broadcasting ops need them). Throws a UsageError naming
 * the node when its running statistics are not initializers of their own or its input's
 * rank is unknown.
 */
export function batchNormTrainMode(g: Graph, e: Emit, shapes: Map<string, TensorTypeInfo>, opset: number): BatchNormState[] {
  const original = g.nodes;
  const state: BatchNormState[] = [];
  const seen = new Set<string>();
  const shape = (name: string, s: Dim[]) => shapes.set(name, { kind: 'tensor', dtype: DataType.FLOAT, shape: s });
  g.nodes = [];
  for (const n of original) {
    if (n.opType !== 'BatchNormalization' || (n.domain !== '' && n.domain !== 'ai.onnx')) {
      g.nodes.push(n);
      continue;
    }
    const where = `BatchNormalization node '${n.label}'`;
    const [x, scale, bias, mean, variance] = n.inputs;
    if (n.outputs.slice(1).some(Boolean)) throw new UsageError(`${where} already outputs running statistics (training_mode 1); train mode needs an inference-mode BN node`);
    const stats = [mean, variance].map((s) => g.initializers.get(s));
    if (!stats[0] || !stats[1] || mean === variance || seen.has(mean) || seen.has(variance)) {
      throw new UsageError(`${where}: train mode needs its running mean and variance as initializers of its own; use --bn frozen`);
    }
    seen.add(mean).add(variance);
    const xs = shapes.get(x)?.shape;
    if (!xs || xs.length < 2) throw new UsageError(`${where}: the rank of its input '${x}' is unknown; use --bn frozen`);
    const channels = stats[0].dims.reduce((a, b) => a * b, 1);
    const rank = xs.length;
    const axes = [0, ...Array.from({ length: rank - 2 }, (_, i) => i + 2)];
    const keep: Dim[] = [1, channels, ...Array(rank - 2).fill(1)];
    const perChannel: Dim[] = [channels, ...Array(rank - 2).fill(1)];
    const eps = n.float('epsilon', 1e-5);
    const m = 1 - n.float('momentum', 0.9);
    const rmean = (t: string) => (opset >= 18 ? e.op('ReduceMean', [t, e.ints(axes)], { keepdims: 1 }) : e.op('ReduceMean', [t], { axes, keepdims: 1 }));
    const mu = rmean(x);
    const xc = e.op('Sub', [x, mu]);
    const sq = e.op('Mul', [xc, xc]);
    const v = rmean(sq);
    const veps = e.op('Add', [v, e.float(eps)]);
    const std = e.op('Sqrt', [veps]);
    const xhat = e.op('Div', [xc, std]);
    const gamma = e.op('Reshape', [scale, e.ints(perChannel as number[])]);
    const beta = e.op('Reshape', [bias, e.ints(perChannel as number[])]);
    const scaled = e.op('Mul', [xhat, gamma]);
    e.emitNamed('Add', [scaled, beta], n.outputs[0]);
    for (const t of [mu, v, veps, std]) shape(t, keep);
    for (const t of [xc, sq, xhat, scaled]) shape(t, xs);
    shape(gamma, perChannel);
    shape(beta, perChannel);
    // Running statistics (no gradient flows here: they are not on the loss path).
    const count = e.op('Div', [e.op('Cast', [e.op('Size', [x])], { to: DataType.FLOAT }), e.float(channels)]);
    const unbias = e.op('Div', [count, e.op('Max', [e.op('Sub', [count, e.float(1)]), e.float(1)])]);
    const update = (old: string, batch: string) => e.op('Add', [e.op('Mul', [old, e.float(1 - m)]), e.op('Mul', [e.op('Reshape', [batch, e.ints([-1])]), e.float(m)])]);
    const newMean = update(mean, mu);
    const newVar = update(variance, e.op('Mul', [v, unbias]));
    for (const [name, out] of [[mean, newMean], [variance, newVar]] as const) {
      const t = g.initializers.get(name)!;
      g.initializers.delete(name);
      g.inputs.push({ name, type: { kind: 'tensor', dtype: DataType.FLOAT, shape: [...t.dims] } });
      state.push({ name, dims: [...t.dims], output: out });
    }
  }
  return state;
}
