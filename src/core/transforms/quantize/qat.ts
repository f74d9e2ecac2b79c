import { UsageError } from '../../errors';
import { DataType } from '../../ir/dtype';
import type { Model } from '../../ir/graph';
import { Tensor } from '../../ir/tensor';
import type { Dataset } from '../../runtime/data/dataset';
import { datasetSampleSet, fit, labelsTensor, withTeacher, withWeights, type LossTerm } from '../../train';
import { fitSettings, secondsPerEpoch, type TrainSettings } from '../distill/common';
import { GraphEditor, cloneModel } from '../graph-edit';
import { calibrate, type CalibrationMethod, type Ranges } from './calibrate';
import { activationParams } from './params';
import { STATIC_RULES, constantResolver } from './registry';
import { applyStatic, planStatic, type StaticOptions, type StaticPlan } from './static';

/**
 * Quantization-aware fine-tuning (Jacob et al. 2018, "Quantization and Training of Neural
 * Networks for Efficient Integer-Arithmetic-Only Inference"; Krishnamoorthi 2018) for static
 * int8. The float model gets the QDQ pairs static mode would write: activations with their
 * calibrated (fixed) parameters, weights symmetric per channel with scales recomputed from the
 * current weights (max|w|/127, as static mode does). Gradients pass through the rounding by the
 * straight-through estimator, clipped to the representable range (zero outside it): the
 * training engine's rules for QuantizeLinear/DequantizeLinear (`train/grad/quantize.ts`). After a few
 * epochs the trained float weights go through the same `applyStatic` with the same ranges, so
 * the result is exactly the QDQ model static mode writes, from better weights. Biases train in
 * float; static mode quantizes them to int32 at scale s_x·s_w, an error far below one step.
 */

/**
 * The fake-quantized training model of `model` for `plan` (see the module docs): float
 * weights stay initializers (trainable), each behind Q→DQ with per-channel scales computed in
 * the graph; every planned activation gets Q→DQ with its calibrated parameters.
 */
export function fakeQuantModel(model: Model, plan: StaticPlan, ranges: Ranges, opts: StaticOptions = {}): Model {
  const out = cloneModel(model);
  const g = out.graph;
  const ed = new GraphEditor(g);
  const constOf = constantResolver(g);
  const opset = model.opset('') ?? 13;
  if (opset < 13) throw new UsageError(`quantization-aware training needs ONNX opset 13 or later (this model is opset ${opset})`);
  const qmax = opts.reduceRange ? 63 : 127;
  const perChannel = opts.perChannel ?? true;
  for (const t of plan.tensors) {
    let root = t;
    for (let i = 0; i < 64 && plan.sharedFrom.has(root); i++) root = plan.sharedFrom.get(root)!;
    const r = ranges.get(root) ?? { min: 0, max: 1 };
    const p = activationParams(r.min, r.max, !!opts.symmetricActivations);
    const s = ed.scalar(`${t}_scale`, p.scale);
    const zp = ed.scalar(`${t}_zero_point`, p.zeroPoint, p.dtype);
    const q = ed.node('QuantizeLinear', [t, s, zp], [`${t}_quantized`]);
    const dq = ed.node('DequantizeLinear', [q.outputs[0], s, zp], [`${t}_dequantized`]);
    ed.rewire(t, dq.outputs[0]);
    ed.append(q, dq);
  }
  const done = new Map<string, string>();
  const covered = new Set(plan.covered.map((n) => n.outputs.join('|')));
  for (const n of g.nodes.filter((x) => covered.has(x.outputs.join('|')))) {
    const w = STATIC_RULES[n.opType].weight?.(n, (x) => constOf(x) !== undefined);
    if (!w) continue;
    const name = n.inputs[w.index];
    const t = g.initializers.get(name);
    if (!t || t.dtype !== DataType.FLOAT || constOf(name) !== t) continue;
    const rank = t.dims.length;
    const axis = perChannel && w.axis !== null && rank > 0 ? (w.axis < 0 ? rank + w.axis : w.axis) : null;
    let dqOut = done.get(name);
    if (!dqOut) {
      // scale = max(max|w| over the channel's elements, tiny) / qmax, one per channel (or one).
      const axes = [...Array(rank).keys()].filter((i) => i !== axis);
      const abs = ed.node('Abs', [name], [`${name}_abs`]);
      const red = opset >= 18
        ? ed.node('ReduceMax', [abs.outputs[0], ed.initializer(`${name}_axes`, DataType.INT64, [axes.length], BigInt64Array.from(axes.map(BigInt)))], [`${name}_absmax`])
        : ed.node('ReduceMax', [abs.outputs[0]], [`${name}_absmax`]);
      if (opset < 18) red.setInts('axes', axes);
      red.setInt('keepdims', 0);
      const floor = ed.node('Max', [red.outputs[0], ed.scalar(`${name}_tiny`, 1e-12)], [`${name}_absmax_safe`]);
      const scale = ed.node('Div', [floor.outputs[0], ed.scalar(`${name}_qmax`, qmax)], [`${name}_scale`]);
      const zpDims = axis === null ? [] : [t.dims[axis]];
      const zp = ed.initializer(`${name}_zero_point`, DataType.INT8, zpDims, new Int8Array(axis === null ? 1 : t.dims[axis]));
      const q = ed.node('QuantizeLinear', [name, scale.outputs[0], zp], [`${name}_quantized`]);
      const dq = ed.node('DequantizeLinear', [q.outputs[0], scale.outputs[0], zp], [`${name}_dequantized`]);
      if (axis !== null) {
        q.setInt('axis', axis);
        dq.setInt('axis', axis);
      }
      ed.append(abs, red, floor, scale, q, dq);
      dqOut = dq.outputs[0];
      done.set(name, dqOut);
    }
    n.inputs[w.index] = dqOut;
  }
  ed.sort();
  return out;
}

export interface QatOptions extends TrainSettings, StaticOptions {
  calib: Dataset;
  method?: CalibrationMethod;
  percentile?: number;
  train: Dataset;
  /** Labels: cross-entropy. Without them the float model is the teacher (distillation, α = 1, T = 4). */
  trainLabels?: Int32Array;
}

export interface QatResult {
  /** The static int8 QDQ model of the fine-tuned weights. */
  model: Model;
  /** The fine-tuned float weights in the original graph. */
  floatModel: Model;
  plan: StaticPlan;
  ranges: Ranges;
  secondsPerEpoch: number;
  trainLoss: number[];
}

/** Calibrates, fine-tunes with fake quantization, writes the static QDQ model (see the module docs). */
export async function quantizationAwareTraining(model: Model, o: QatOptions): Promise<QatResult> {
  const sopts: StaticOptions = { perChannel: o.perChannel, symmetricActivations: o.symmetricActivations, reduceRange: o.reduceRange, exclude: o.exclude };
  const plan = planStatic(model, sopts);
  const ranges = await calibrate(model, plan.calibrate, o.calib, { method: o.method ?? 'minmax', percentile: o.percentile, batchSize: 8, signal: o.signal });
  const fq = fakeQuantModel(model, plan, ranges, sopts);
  const logits = model.graph.outputs[0]?.name;
  if (!logits) throw new UsageError('the model has no output to train');
  if (o.trainLabels && o.trainLabels.length !== o.train.count) throw new UsageError(`there are ${o.trainLabels.length} training labels for ${o.train.count} training samples`);
  const weights = [...model.graph.initializers.entries()].filter(([, t]) => t.dtype === DataType.FLOAT && t.dims.length >= 1).map(([k]) => k);
  const trainable = weights.filter((k) => fq.graph.initializers.has(k));
  let losses: LossTerm[];
  let release: (() => Promise<void>) | undefined;
  let set;
  if (o.trainLabels) {
    losses = [{ kind: 'cross-entropy', logits, labels: 'labels' }];
    set = datasetSampleSet(o.train, { labels: labelsTensor(o.trainLabels) });
  } else {
    const { ModelSession } = await import('../../runtime/session');
    const t = await ModelSession.create(model, { allowSpinning: false }, '<float model>');
    release = () => t.release();
    losses = [{ kind: 'distillation', logits, teacherLogits: 'teacher_logits', temperature: 4 }];
    set = withTeacher(datasetSampleSet(o.train), t, 'teacher_logits');
  }
  let trained;
  try {
    trained = await fit(fq, set, { ...fitSettings(o), losses, trainable });
  } finally {
    await release?.();
  }
  const floatModel = withWeights(model, new Map(trainable.map((k) => [k, (trained.model.graph.initializers.get(k) as Tensor).toFloat32()])));
  return {
    model: applyStatic(floatModel, plan, ranges, sopts),
    floatModel,
    plan,
    ranges,
    secondsPerEpoch: secondsPerEpoch(trained),
    trainLoss: trained.history.map((h) => h.trainLoss),
  };
}
