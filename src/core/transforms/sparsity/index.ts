import { UsageError } from '../../errors';
import { DataType } from '../../ir/dtype';
import type { Model } from '../../ir/graph';
import type { Dataset } from '../../runtime/data/dataset';
import { datasetSampleSet, fit, labelsTensor, withWeights, type LossTerm, type SampleSet } from '../../train';
import { fitSettings, scoreModels, secondsPerEpoch, type Score, type TrainSettings } from '../distill/common';
import { GraphEditor, cloneModel } from '../graph-edit';
import { pruneModel } from '../prune';
import { buildDependencyGraph } from '../prune/onnx/dependency';
import { constantResolver } from '../quantize/registry';

/**
 * Sparsity training: train with λ₁‖W‖₁ + (λ₂/2)‖W‖₂² on the weight matrices and filters
 * (Han et al. 2015, "Learning both Weights and Connections"; the L1 subgradient drives weights
 * to zero), then prune by magnitude, then optionally fine-tune with the zeros kept. The pruning
 * is unstructured (one global magnitude threshold over the trained weights) at a given ratio,
 * or the largest ratio whose accuracy drop on the evaluation data stays within `maxDrop`.
 */

export interface SparsityOptions extends TrainSettings {
  train: Dataset;
  /** Labels: cross-entropy. Without them the loss is distillation from the original model (α = 1, T = 4). */
  trainLabels?: Int32Array;
  /** λ₁ ≥ 0, applied to the sum (not the mean) of |w|. */
  l1: number;
  /** λ₂ ≥ 0. */
  l2?: number;
  /** Weights to regularise and prune (default: every float Conv/ConvTranspose/Gemm/MatMul weight of rank ≥ 2). */
  weights?: string[];
  /** Prune to this fraction of zeros (global magnitude)… */
  ratio?: number;
  /** …or to the largest fraction whose accuracy (agreement without labels) drop on `eval` is ≤ maxDrop (e.g. 0.01). */
  maxDrop?: number;
  /** Epochs of fine-tuning after pruning, zeros kept (default 0). */
  finetuneEpochs?: number;
  eval: { data: Dataset; labels?: Int32Array };
}

export interface SparsityReport {
  l1: number;
  l2: number;
  weights: string[];
  /** Fraction of regularised weights with |w| < 1e-3 after training (before pruning). */
  nearZero: number;
  /** Fraction of exact zeros in the regularised weights of the final model. */
  sparsity: number;
  original: Score;
  afterTraining: Score;
  afterPrune: Score;
  afterFinetune?: Score;
  /** The pruning ratio used. */
  ratio: number;
  secondsPerEpoch: number;
}

const WEIGHT_OPS = new Set(['Conv', 'ConvTranspose', 'Gemm', 'MatMul']);

/** The float weight matrices and filters of `model` (input 1 of Conv/ConvTranspose/Gemm/MatMul, rank ≥ 2, initializers). */
export function weightMatrices(model: Model): string[] {
  const g = model.graph;
  const constOf = constantResolver(g);
  const out = new Set<string>();
  for (const n of g.nodes) {
    if (!WEIGHT_OPS.has(n.opType) || n.domain) continue;
    const t = g.initializers.get(n.inputs[1]);
    if (t && constOf(n.inputs[1]) === t && t.dtype === DataType.FLOAT && t.dims.length >= 2) out.add(n.inputs[1]);
  }
  return [...out];
}

function taskLoss(model: Model, hasLabels: boolean): LossTerm {
  const logits = model.graph.outputs[0]?.name;
  if (!logits) throw new UsageError('the model has no output to train');
  return hasLabels ? { kind: 'cross-entropy', logits, labels: 'labels' } : { kind: 'distillation', logits, teacherLogits: 'teacher_logits', temperature: 4 };
}

function zeros(m: Model, names: string[], below = 0): number {
  let z = 0;
  let n = 0;
  for (const k of names) {
    const w = m.graph.initializers.get(k)!.toFloat32();
    for (const v of w) if (Math.abs(v) <= below) z++;
    n += w.length;
  }
  return z / Math.max(1, n);
}

/** Trains with the penalties, prunes by magnitude, fine-tunes (see the module docs). Never modifies `model`. */
export async function sparsityTrain(model: Model, o: SparsityOptions): Promise<{ model: Model; report: SparsityReport }> {
  if (!(o.l1 >= 0) || !Number.isFinite(o.l1)) throw new UsageError(`--l1 must be a number ≥ 0 (got ${o.l1})`);
  const l2 = o.l2 ?? 0;
  if (!(l2 >= 0) || !Number.isFinite(l2)) throw new UsageError(`--l2 must be a number ≥ 0 (got ${l2})`);
  if ((o.ratio === undefined) === (o.maxDrop === undefined)) throw new UsageError('sparsity training prunes to exactly one of a ratio or a maximum accuracy drop');
  if (o.ratio !== undefined && !(o.ratio > 0 && o.ratio < 1)) throw new UsageError(`the pruning ratio is a fraction in (0, 1) (got ${o.ratio})`);
  if (o.maxDrop !== undefined && !(o.maxDrop >= 0 && o.maxDrop < 1)) throw new UsageError(`the maximum drop is a fraction in [0, 1) (got ${o.maxDrop})`);
  if (o.trainLabels && o.trainLabels.length !== o.train.count) throw new UsageError(`there are ${o.trainLabels.length} training labels for ${o.train.count} training samples`);
  const weights = o.weights ?? weightMatrices(model);
  if (!weights.length) throw new UsageError('the model has no float weight matrices to sparsify');
  for (const w of weights) if (!model.graph.initializers.has(w)) throw new UsageError(`'${w}' is not a weight of the model`);

  const hasLabels = !!o.trainLabels;
  const losses: LossTerm[] = [taskLoss(model, hasLabels)];
  if (o.l1 > 0) losses.push({ kind: 'l1', weights, weight: o.l1 });
  if (l2 > 0) losses.push({ kind: 'l2', weights, weight: l2 });
  const sets = async () => {
    if (hasLabels) return datasetSampleSet(o.train, { labels: labelsTensor(o.trainLabels!) });
    const { ModelSession } = await import('../../runtime/session');
    const { withTeacher } = await import('../../train');
    const t = await ModelSession.create(model, { allowSpinning: false }, '<original>');
    return Object.assign(withTeacher(datasetSampleSet(o.train), t, 'teacher_logits'), { release: () => t.release() });
  };
  const set = await sets();
  try {
    return await trainAndPrune(model, o, set, losses, weights, hasLabels);
  } finally {
    await (set as { release?: () => Promise<void> }).release?.();
  }
}

async function trainAndPrune(model: Model, o: SparsityOptions, set: SampleSet, losses: LossTerm[], weights: string[], hasLabels: boolean): Promise<{ model: Model; report: SparsityReport }> {
  const l2 = o.l2 ?? 0;
  const trained = await fit(model, set, { ...fitSettings(o), losses });
  const score = async (m: Model) => (await scoreModels(model, m, o.eval.data, o.eval.labels)).candidate;
  const metric = (s: Score) => s.accuracy ?? s.agreement;
  const original = await score(model);
  const afterTraining = await score(trained.model);
  const pruneAt = async (ratio: number) => (await pruneModel(trained.model, { structured: false, ratio, scope: 'global', exclude: excludedLabels(trained.model, weights) })).model;
  let ratio = o.ratio ?? 0;
  let pruned: Model;
  let afterPrune: Score;
  if (o.ratio !== undefined) {
    pruned = await pruneAt(ratio);
    afterPrune = await score(pruned);
  } else {
    // Bisection on the global ratio: the accuracy of magnitude pruning falls (about) monotonically with it.
    let lo = 0;
    let hi = 0.995;
    pruned = trained.model;
    afterPrune = afterTraining;
    for (let it = 0; it < 9; it++) {
      const mid = (lo + hi) / 2;
      const m = await pruneAt(mid);
      const s = await score(m);
      if (metric(original) - metric(s) <= o.maxDrop!) {
        lo = mid;
        pruned = m;
        afterPrune = s;
        ratio = mid;
      } else hi = mid;
    }
  }
  let final = pruned;
  let afterFinetune: Score | undefined;
  if (o.finetuneEpochs) {
    const ft = await fit(pruned, set, {
      ...fitSettings({ ...o, epochs: o.finetuneEpochs }),
      losses: [taskLoss(model, hasLabels)],
      keepZeros: true,
    });
    final = ft.model;
    afterFinetune = await score(final);
  }
  return {
    model: final,
    report: {
      l1: o.l1,
      l2,
      weights,
      nearZero: zeros(trained.model, weights, 1e-3),
      sparsity: zeros(final, weights),
      original,
      afterTraining,
      afterPrune,
      afterFinetune,
      ratio,
      secondsPerEpoch: secondsPerEpoch(trained),
    },
  };
}

/** Node labels of weight layers NOT in `weights` (so magnitude pruning touches only the regularised ones). */
function excludedLabels(model: Model, weights: string[]): string[] {
  const keep = new Set(weights);
  return model.graph.nodes.filter((n) => WEIGHT_OPS.has(n.opType) && !keep.has(n.inputs[1])).map((n) => n.label);
}

// ---- structured: group lasso on output channels --------------------------------------

/**
 * Group lasso (Yuan & Lin 2006; Wen et al. 2016, "Learning Structured Sparsity in Deep Neural
 * Networks") on output channels: λ·Σ_c ‖W[c]‖₂ over each producer's filters, which drives
 * whole channels to zero so that structured pruning by channel norm (criterion l2) removes
 * them. The engine has no group-norm loss term, so the penalty is built as graph nodes on a
 * copy of the model: p_c = (Σ W[c]² + ε)^(1/4), and MSE(p, 0)·C = Σ_c (‖W[c]‖² + ε)^(1/2),
 * ε = 1e-8 (differentiable at 0). Training uses that copy; the weights go back into the
 * original graph. (Network slimming, L1 on BatchNormalization γ, is the `l1` option on the γ
 * tensors of a model that still has BN.)
 */
export function withGroupLasso(model: Model, weights: Array<{ name: string; axis: number }>, lambda: number): { model: Model; losses: LossTerm[] } {
  const out = cloneModel(model);
  const g = out.graph;
  const ed = new GraphEditor(g);
  const losses: LossTerm[] = [];
  for (const { name, axis } of weights) {
    const t = g.initializers.get(name);
    if (!t || t.dtype !== DataType.FLOAT) throw new UsageError(`group lasso: '${name}' is not a float weight of the model`);
    const rank = t.dims.length;
    const axes = [...Array(rank).keys()].filter((i) => i !== axis);
    const sq = ed.node('Mul', [name, name], [`${name}_gl_sq`]);
    const red = ed.node('ReduceSum', [sq.outputs[0], ed.initializer(`${name}_gl_axes`, DataType.INT64, [axes.length], BigInt64Array.from(axes.map(BigInt)))], [`${name}_gl_norm2`]);
    red.setInt('keepdims', 0);
    const eps = ed.node('Add', [red.outputs[0], ed.scalar(`${name}_gl_eps`, 1e-8)], [`${name}_gl_norm2_eps`]);
    const p = ed.node('Pow', [eps.outputs[0], ed.scalar(`${name}_gl_quarter`, 0.25)], [`${name}_gl_root`]);
    ed.append(sq, red, eps, p);
    const channels = t.dims[axis];
    const zero = ed.initializer(`${name}_gl_zero`, DataType.FLOAT, [channels], new Float32Array(channels));
    losses.push({ kind: 'mse', prediction: p.outputs[0], target: zero, weight: lambda * channels });
  }
  ed.sort();
  return { model: out, losses };
}

export interface GroupSparsityOptions extends Omit<SparsityOptions, 'l1' | 'l2' | 'weights' | 'maxDrop'> {
  /** λ of the group lasso. */
  lambda: number;
  /** Fraction of each group's channels to remove after training (structured, criterion l2). */
  ratio: number;
}

export interface GroupSparsityReport {
  lambda: number;
  /** Fraction of output channels (over the penalised producers) whose norm fell below 1e-3 of the largest. */
  smallChannels: number;
  original: Score;
  afterTraining: Score;
  afterPrune: Score;
  afterFinetune?: Score;
  /** MACs of the final model over the original's. */
  macsRatio: number;
  secondsPerEpoch: number;
}

/** Group-lasso training (SGD with Nesterov momentum unless `optimizer` says otherwise), structured pruning by the channel norms reached, optional fine-tune. */
export async function groupSparsityTrain(model: Model, o: GroupSparsityOptions): Promise<{ model: Model; report: GroupSparsityReport }> {
  if (!(o.lambda >= 0) || !Number.isFinite(o.lambda)) throw new UsageError(`the group-lasso λ must be a number ≥ 0 (got ${o.lambda})`);
  if (!(o.ratio > 0 && o.ratio < 1)) throw new UsageError(`the pruning ratio is a fraction in (0, 1) (got ${o.ratio})`);
  if (!o.trainLabels) throw new UsageError('group-lasso training needs training labels (--train-labels)');
  const producers = new Map<string, number>();
  for (const grp of buildDependencyGraph(model).groups) {
    if (grp.unsafe) continue;
    for (const m of grp.members) if (m.kind === 'producer' && model.graph.initializers.get(m.weight.name) === m.weight) producers.set(m.weight.name, m.axis);
  }
  if (!producers.size) throw new UsageError('the model has no prunable channel groups for group lasso');
  const weights = [...producers].map(([name, axis]) => ({ name, axis }));
  const aug = withGroupLasso(model, weights, o.lambda);
  const set = datasetSampleSet(o.train, { labels: labelsTensor(o.trainLabels) });
  const trainable = [...model.graph.initializers.entries()].filter(([, t]) => t.dtype === DataType.FLOAT && t.dims.length >= 1).map(([k]) => k);
  // SGD by default: Adam's per-element normalisation moves every weight by about the same step and so loses the group selection.
  const f = await fit(aug.model, set, { ...fitSettings({ optimizer: 'sgd', ...o }), losses: [taskLoss(model, true), ...aug.losses], trainable });
  const trained = withWeights(model, new Map(trainable.map((k) => [k, f.model.graph.initializers.get(k)!.toFloat32()])));
  let small = 0;
  let total = 0;
  for (const { name, axis } of weights) {
    const t = trained.graph.initializers.get(name)!;
    const w = t.toFloat32();
    const c = t.dims[axis];
    const inner = t.dims.slice(axis + 1).reduce((a, b) => a * b, 1);
    const outer = w.length / (c * inner);
    const norms = new Float64Array(c);
    for (let a = 0; a < outer; a++) for (let k = 0; k < c; k++) for (let i = 0; i < inner; i++) norms[k] += w[(a * c + k) * inner + i] ** 2;
    const max = Math.sqrt(Math.max(...norms));
    for (const n of norms) if (Math.sqrt(n) < 1e-3 * max) small++;
    total += c;
  }
  const score = async (m: Model) => (await scoreModels(model, m, o.eval.data, o.eval.labels)).candidate;
  const pruned = (await pruneModel(trained, { structured: true, ratio: o.ratio, criterion: 'l2' })).model;
  let final = pruned;
  let afterFinetune: Score | undefined;
  if (o.finetuneEpochs) {
    final = (await fit(pruned, set, { ...fitSettings({ ...o, epochs: o.finetuneEpochs }), losses: [taskLoss(model, true)] })).model;
    afterFinetune = await score(final);
  }
  const { analyzeModel } = await import('../../analysis/analyze');
  return {
    model: final,
    report: {
      lambda: o.lambda,
      smallChannels: small / Math.max(1, total),
      original: await score(model),
      afterTraining: await score(trained),
      afterPrune: await score(pruned),
      afterFinetune,
      macsRatio: analyzeModel(final).totals.macs / analyzeModel(model).totals.macs,
      secondsPerEpoch: secondsPerEpoch(f),
    },
  };
}
