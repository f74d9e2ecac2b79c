import { UsageError } from '../../errors';
import type { Model } from '../../ir/graph';
import type { Dataset } from '../../runtime/data/dataset';
import { ModelSession, type HostTensor } from '../../runtime/session';
import { buildTrainingGraph, datasetSampleSet, labelsTensor, TrainingSession, type LossTerm } from '../../train';
import type { Group } from './onnx/dependency';

/**
 * First-order Taylor importance of channel groups (Molchanov et al. 2019, "Importance
 * Estimation for Neural Network Pruning", eq. 4 and 6 with the absolute value instead of the
 * square): the loss change when a channel's parameters are zeroed is ≈ |Σ_s w_s·∂L/∂w_s|
 * over the channel's parameters s. A channel's parameters here are its output filters and
 * biases in every coupled producer and its per-channel parameters (BatchNormalization γ and
 * β, depthwise filters); weights without a gradient (running statistics, frozen tensors)
 * contribute nothing. Per batch b the sum is signed; the score is Σ_b |Σ_s w_s·g_{b,s}|, so
 * gradients that cancel across batches do not hide a channel that matters in each of them.
 */

/** Channel-axis view of a tensor of `dims`: `outer` blocks of [size, inner]. */
function axisView(dims: number[], axis: number): { outer: number; inner: number } {
  return {
    outer: dims.slice(0, axis).reduce((a, b) => a * b, 1),
    inner: dims.slice(axis + 1).reduce((a, b) => a * b, 1),
  };
}

/** Adds Σ w·g along `axis` (size = dims[axis]) into `acc` (length dims[axis]). */
function addAlongAxis(acc: Float64Array, w: ArrayLike<number>, g: ArrayLike<number>, dims: number[], axis: number): void {
  const size = dims[axis];
  const { outer, inner } = axisView(dims, axis);
  for (let o = 0; o < outer; o++) {
    for (let c = 0; c < size; c++) {
      const base = (o * size + c) * inner;
      let s = 0;
      for (let k = 0; k < inner; k++) s += w[base + k] * g[base + k];
      acc[c] += s;
    }
  }
}

/**
 * The group's tensors along its channel axis: [initializer name, channel axis, dims]. Only
 * tensors whose channel axis has exactly the group's size (whole-group members) are used.
 */
export function groupParameters(g: Group): Array<{ name: string; axis: number; dims: number[]; values: () => Float32Array }> {
  const out: Array<{ name: string; axis: number; dims: number[]; values: () => Float32Array }> = [];
  const add = (t: { name: string; dims: number[]; toFloat32(): Float32Array }, axis: number) => {
    if (t.dims[axis] === g.size && !out.some((p) => p.name === t.name)) out.push({ name: t.name, axis, dims: t.dims, values: () => t.toFloat32() });
  };
  for (const m of g.members) {
    if (m.kind === 'producer') {
      add(m.weight, m.axis);
      if (m.bias) add(m.bias, 0);
    } else if (m.kind === 'params') {
      // BatchNormalization's running mean and variance (inputs 3, 4) are statistics, not parameters.
      for (const t of m.tensors) if (!(m.node.opType === 'BatchNormalization' && t.input >= 3)) add(t.tensor, t.axis);
    }
  }
  return out;
}

/** Σ_s w_s·g_s per channel of one group for one batch (signed). Missing gradients count as 0. */
export function taylorChannelSums(g: Group, grads: ReadonlyMap<string, ArrayLike<number>>, weights?: ReadonlyMap<string, ArrayLike<number>>): Float64Array {
  const acc = new Float64Array(g.size);
  for (const p of groupParameters(g)) {
    const grad = grads.get(p.name);
    if (!grad) continue;
    addAlongAxis(acc, weights?.get(p.name) ?? p.values(), grad, p.dims, p.axis);
  }
  return acc;
}

/**
 * Accumulates Taylor scores over batches: call `add` with each batch's gradients (weight
 * name → ∂L/∂w of that batch, same layout as the weight), then `scores`.
 */
export class TaylorAccumulator {
  private readonly totals = new Map<Group, Float64Array>();
  private readonly weights = new Map<string, Float32Array>();
  private batches = 0;

  constructor(private readonly groups: Group[]) {
    for (const g of groups) {
      this.totals.set(g, new Float64Array(g.size));
      for (const p of groupParameters(g)) if (!this.weights.has(p.name)) this.weights.set(p.name, p.values());
    }
  }

  /** Names of every weight a score depends on: the weights whose gradients are needed. */
  get weightNames(): string[] {
    return [...this.weights.keys()];
  }

  add(grads: ReadonlyMap<string, ArrayLike<number>>): void {
    for (const g of this.groups) {
      const s = taylorChannelSums(g, grads, this.weights);
      const t = this.totals.get(g)!;
      for (let c = 0; c < g.size; c++) t[c] += Math.abs(s[c]);
    }
    this.batches++;
  }

  /** Per group: the mean over batches of |Σ w·g| per channel, or why there is no score. */
  scores(): Map<Group, Float64Array | string> {
    const out = new Map<Group, Float64Array | string>();
    for (const g of this.groups) {
      if (!groupParameters(g).length) out.set(g, 'the group has no trainable per-channel weights for a Taylor score');
      else out.set(g, this.totals.get(g)!.map((v) => v / Math.max(1, this.batches)));
    }
    return out;
  }
}

export interface TaylorOptions {
  calib: Dataset;
  /** Class labels of the calibration samples: L is cross-entropy. */
  labels?: Int32Array;
  /**
   * Without labels, L is KL(reference ‖ model) at T = 1, the reference being the original model.
   * When the model is the reference itself that gradient is exactly 0, so L is then the
   * cross-entropy against the model's own top-1 classes (pseudo-labels), whose gradient is not.
   */
  reference?: Model;
  batchSize?: number;
  /** Stop after this many samples (default all). */
  limit?: number;
  signal?: AbortSignal;
}

/**
 * Taylor scores of `groups` of `model` over the calibration batches (one forward + backward
 * per batch through the training engine; no weight changes). Groups without trainable
 * per-channel weights get a reason instead of scores.
 */
export async function taylorScores(model: Model, groups: Group[], opts: TaylorOptions): Promise<Map<Group, Float64Array | string>> {
  const logits = model.graph.outputs[0]?.name;
  if (!logits) throw new UsageError('the model has no output for a Taylor loss');
  if (opts.labels && opts.labels.length < opts.calib.count) throw new UsageError(`there are ${opts.labels.length} labels for ${opts.calib.count} calibration samples`);
  const acc = new TaylorAccumulator(groups);
  const trainable = acc.weightNames.filter((n) => model.graph.initializers.has(n));
  if (!trainable.length) return acc.scores();
  let losses: LossTerm[];
  let extra: Record<string, HostTensor> = {};
  const useKl = !opts.labels && opts.reference && opts.reference !== model;
  if (opts.labels) {
    losses = [{ kind: 'cross-entropy', logits, labels: 'labels' }];
    extra = { labels: labelsTensor(opts.labels.subarray(0, opts.calib.count)) };
  } else {
    const ref = useKl ? opts.reference! : model;
    const s = await ModelSession.create(ref, { allowSpinning: false }, '<reference>');
    const out: number[][] = [];
    try {
      const name = ref.graph.outputs[0].name;
      for (const { feeds } of opts.calib.batches(opts.batchSize ?? 32, opts.limit)) {
        const o = (await s.run(feeds, [name]))[name];
        const c = o.dims[1];
        for (let r = 0; r < o.dims[0]; r++) out.push(Array.from(o.data.slice(r * c, (r + 1) * c) as ArrayLike<number>));
      }
    } finally {
      await s.release();
    }
    const n = out.length;
    if (useKl) {
      losses = [{ kind: 'distillation', logits, teacherLogits: 'reference_logits', temperature: 1 }];
      extra = { reference_logits: { dtype: 1, dims: [n, out[0]?.length ?? 0], data: Float32Array.from(out.flat()) } };
    } else {
      losses = [{ kind: 'cross-entropy', logits, labels: 'labels' }];
      extra = { labels: labelsTensor(out.map((row) => row.indexOf(Math.max(...row)))) };
    }
  }
  const n = Math.min(opts.calib.count, opts.limit ?? opts.calib.count);
  const data = datasetSampleSet(opts.calib, Object.fromEntries(Object.entries(extra).map(([k, t]) => [k, padTo(t, opts.calib.count)])));
  const tg = buildTrainingGraph(model, { losses, trainable });
  const params = new Map(trainable.map((w) => [w, model.graph.initializers.get(w)!.toFloat32()]));
  const session = await TrainingSession.create(tg, { allowSpinning: false });
  try {
    const b = opts.batchSize ?? 32;
    for (let s = 0; s < n; s += b) {
      if (opts.signal?.aborted) throw new (await import('../../errors')).CancelledError();
      const r = await session.step(await data.gather(Array.from({ length: Math.min(b, n - s) }, (_, i) => s + i)), params);
      acc.add(r.grads);
    }
  } finally {
    await session.release();
  }
  return acc.scores();
}

/** Extends a per-sample tensor computed on the first `limit` samples to `count` rows (zeros; never gathered). */
function padTo(t: HostTensor, count: number): HostTensor {
  if (t.dims[0] === count) return t;
  const per = t.dims.slice(1).reduce((a, b) => a * b, 1);
  const data = new (t.data.constructor as new (n: number) => Float32Array)(count * per);
  data.set(t.data as Float32Array);
  return { dtype: t.dtype, dims: [count, ...t.dims.slice(1)], data };
}
