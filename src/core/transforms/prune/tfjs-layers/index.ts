import { analyzeModel } from '../../../analysis/analyze';
import { CancelledError, UsageError } from '../../../errors';
import type { Dataset } from '../../../runtime/data/dataset';
import { TfjsRunner } from '../../../runtime/tfjs';
import { channelEntropy, ENTROPY_BINS } from '../importance';
import { reconstructKeras, type KerasRefit } from './reconstruct';
import { layerConfig, tfjsDocument } from '../../../formats/tfjs/document';
import { inferKerasShapes, kerasAttrs } from '../../../formats/tfjs/layers';
import { DataType } from '../../../ir/dtype';
import type { Model, Node } from '../../../ir/graph';
import { Tensor } from '../../../ir/tensor';
import { cloneModel } from '../../graph-edit';
import { removeAlongAxis, removeCount, stepRemoveCount } from '../shrink';
import { cumulativeRatio, cumulativeTarget } from '../schedule';
import type { PruneOptions, PruneOutcome } from '../types';
import { pushAll } from '../../../util/arrays';

/**
 * Structured pruning of TF.js layers models, at the level of Keras layers: the same
 * dependency idea as for ONNX graphs. A producer (Conv2D, Conv1D, Dense, SeparableConv2D)
 * owns its output channels (the last axis, NHWC). Following its output, layers that keep
 * channels in place (BatchNormalization, activations, Dropout, pooling, padding, and a
 * DepthwiseConv2D with depth_multiplier 1) have their per-channel weights sliced too; the
 * consumers (the next Conv/Dense, directly or after a Flatten, whose rows interleave the
 * spatial positions) lose the matching input rows. Element-wise merges (Add, Multiply, …)
 * couple the producers behind all their inputs into one group that loses the same channels,
 * ranked by their summed importance: a residual stream is pruned as a whole. Through a
 * Concatenate (on the channels), a producer's channels continue at their offset. A group whose
 * channels reach anything else (Reshape, an RNN, a model output, the model
 * input through a merge, an unknown layer) is left alone, with the reason reported. The
 * result is a valid layers model: configs
 * (`filters`, `units`) and weights agree, and TensorFlow.js loads it.
 */

const PRODUCERS = new Set(['Conv2D', 'Conv1D', 'Dense', 'SeparableConv2D']);
const CHANNEL_WISE = new Set([
  'BatchNormalization', 'Activation', 'ReLU', 'LeakyReLU', 'ELU', 'Softmax', 'ThresholdedReLU', 'Dropout', 'SpatialDropout1D',
  'SpatialDropout2D', 'AlphaDropout', 'GaussianDropout', 'GaussianNoise', 'MaxPooling2D', 'AveragePooling2D', 'MaxPooling1D',
  'AveragePooling1D', 'GlobalAveragePooling2D', 'GlobalMaxPooling2D', 'GlobalAveragePooling1D', 'GlobalMaxPooling1D',
  'ZeroPadding2D', 'UpSampling2D', 'DepthwiseConv2D',
]);

/** Where a producer's channels end up: weights to slice and on which axis, with an index map. */
interface Cut {
  weight: string;
  axis: number;
  /** Input positions along `axis` for a set of kept channels (identity for most). */
  expand: (keep: number[]) => number[];
}

interface Plan {
  /** Producers whose channels are one space: joined by element-wise merges (a residual Add). */
  producers: Node[];
  /** Each producer's output kernel, for importance. */
  kernels: string[];
  channels: number;
  cuts: Cut[];
  /** Layers whose config states the channel count. */
  configs: Array<{ layer: string; key: 'filters' | 'units' }>;
  /** Conv/Dense layers that lose input rows (refitted by reconstruction). */
  consumers: string[];
}

/** Keras merges that combine inputs element by element: their inputs share one channel space. */
const MERGES = new Set(['Add', 'Subtract', 'Multiply', 'Average', 'Maximum', 'Minimum']);

function weightOf(n: Node, suffix: string): string | undefined {
  return n.inputs.find((i) => i.endsWith(`/${suffix}`));
}

/**
 * Traces a producer's channels to their consumers. Through an element-wise merge, the other
 * inputs are followed back (through channel-wise layers) to their producers, which join the
 * group: they keep the same channels, so the merge still lines up. A string says why the
 * group cannot be pruned.
 */
function trace(model: Model, first: Node): Plan | string {
  const g = model.graph;
  const { consumers, producer } = g.index();
  const outputs = new Set(g.outputs.map((o) => o.name));
  const plan: Plan = { producers: [], kernels: [], channels: -1, cuts: [], configs: [], consumers: [] };
  // `tag`: the Concatenate offsets on the way, so the same value reached at another offset is traced again.
  const stack: Array<{ value: string; expand: (k: number[]) => number[]; flat: boolean; tag: string }> = [];
  const seenValues = new Set<string>();
  const seenWise = new Set<string>();
  const seenNodes = new Set<Node>();
  const identity = (k: number[]) => k;
  const addProducer = (p: Node): string | undefined => {
    if (seenNodes.has(p)) return undefined;
    seenNodes.add(p);
    const kernelName = weightOf(p, p.opType === 'SeparableConv2D' ? 'pointwise_kernel' : 'kernel');
    if (!kernelName) return `${p.name} has no kernel weight`;
    const kernel = g.initializers.get(kernelName)!;
    const channels = kernel.dims[kernel.dims.length - 1];
    if (plan.channels >= 0 && channels !== plan.channels) return `${p.name} meets a merge with a different channel count`;
    plan.channels = channels;
    plan.producers.push(p);
    plan.kernels.push(kernelName);
    plan.cuts.push({ weight: kernelName, axis: kernel.dims.length - 1, expand: identity });
    const bias = weightOf(p, 'bias');
    if (bias) plan.cuts.push({ weight: bias, axis: 0, expand: identity });
    plan.configs.push({ layer: p.name, key: p.opType === 'Dense' ? 'units' : 'filters' });
    stack.push({ value: p.outputs[0], expand: identity, flat: false, tag: '' });
    return undefined;
  };
  /** The producers behind a merge input, through channel-wise layers and further merges. */
  const sources = (value: string, seen = new Set<string>()): Node[] | string => {
    if (seen.has(value)) return [];
    seen.add(value);
    const n = producer.get(value);
    if (!n) return 'a merge it reaches carries the model input';
    if (PRODUCERS.has(n.opType)) return [n];
    if (CHANNEL_WISE.has(n.opType) || MERGES.has(n.opType)) {
      const found: Node[] = [];
      for (const i of MERGES.has(n.opType) ? n.inputs.filter((x) => !g.initializers.has(x)) : [n.inputs[0]]) {
        const r = sources(i, seen);
        if (typeof r === 'string') return r;
        pushAll(found, r);
      }
      return found;
    }
    return `a merge it reaches is also fed by ${n.name} (${n.opType}), which this pruner does not follow`;
  };
  const failed = addProducer(first);
  if (failed) return failed;
  while (stack.length) {
    const { value, expand, flat, tag } = stack.pop()!;
    if (seenValues.has(`${value}|${tag}`)) continue;
    seenValues.add(`${value}|${tag}`);
    if (outputs.has(value)) return plan.producers.length > 1 ? 'its residual stream reaches a model output' : 'its output is a model output';
    for (const c of consumers.get(value) ?? []) {
      const at = c.inputs.indexOf(value);
      if (CHANNEL_WISE.has(c.opType)) {
        if (seenWise.has(`${c.name}|${tag}`)) continue;
        seenWise.add(`${c.name}|${tag}`);
        if (c.opType === 'DepthwiseConv2D') {
          if (Number(kerasAttrs(c).depth_multiplier ?? 1) !== 1) return `it feeds ${c.name}, a DepthwiseConv2D with depth_multiplier > 1`;
          const k = weightOf(c, 'depthwise_kernel');
          if (k) plan.cuts.push({ weight: k, axis: 2, expand });
        }
        for (const w of ['gamma', 'beta', 'moving_mean', 'moving_variance', 'bias', 'alpha']) {
          const name = weightOf(c, w);
          if (name) plan.cuts.push({ weight: name, axis: g.initializers.get(name)!.dims.length - 1, expand });
        }
        stack.push({ value: c.outputs[0], expand, flat, tag });
      } else if (MERGES.has(c.opType)) {
        if (seenNodes.has(c)) continue;
        seenNodes.add(c);
        if (flat || tag) return `a ${flat ? 'flattened' : 'concatenated'} tensor reaches ${c.name} (${c.opType})`;
        for (const other of c.inputs.filter((x) => x !== value && !g.initializers.has(x))) {
          const found = sources(other);
          if (typeof found === 'string') return found;
          for (const p of found) {
            const why = addProducer(p);
            if (why) return why;
          }
        }
        stack.push({ value: c.outputs[0], expand, flat, tag });
      } else if (c.opType === 'Concatenate') {
        // Along the channels, this producer's channels sit after those of the inputs before it.
        const rankOf = (v: string) => {
          const t = g.valueInfo.get(v)?.type;
          return t?.kind === 'tensor' && t.shape ? t.shape : null;
        };
        const here = rankOf(value);
        const axis = Number(kerasAttrs(c).axis ?? -1);
        if (!here || flat || (axis !== -1 && axis !== here.length - 1)) return `${c.name} concatenates along an axis other than the channels`;
        if (c.inputs.filter((x) => x === value).length > 1) return `it feeds ${c.name} twice`;
        let offset = 0;
        for (const prev of c.inputs.slice(0, at)) {
          const d = rankOf(prev)?.at(-1);
          if (typeof d !== 'number') return `the channels before it in ${c.name} are unknown`;
          offset += d;
        }
        stack.push({ value: c.outputs[0], expand: (k) => expand(k).map((i) => i + offset), flat, tag: `${tag}+${offset}` });
      } else if (c.opType === 'Flatten') {
        const shape = g.valueInfo.get(value)?.type;
        const dims = shape?.kind === 'tensor' ? shape.shape : null;
        if (!dims || dims.slice(1).some((d) => typeof d !== 'number')) return `the spatial size before ${c.name} is unknown`;
        const spatial = (dims.slice(1, -1) as number[]).reduce((a, b) => a * b, 1);
        const per = dims[dims.length - 1] as number;
        // Flattened NHWC: element (s, ch) sits at s·C + ch, for every spatial position s.
        stack.push({
          value: c.outputs[0],
          flat: true,
          tag,
          expand: (k) => {
            const chans = expand(k);
            const out: number[] = [];
            for (let s = 0; s < spatial; s++) for (const ch of chans) out.push(s * per + ch);
            return out;
          },
        });
      } else if (PRODUCERS.has(c.opType) && at === 0) {
        if (c.opType === 'SeparableConv2D') {
          const dk = weightOf(c, 'depthwise_kernel');
          const pk = weightOf(c, 'pointwise_kernel');
          if (!dk || !pk) return `${c.name} has no depthwise/pointwise kernels`;
          const m = g.initializers.get(dk)!.dims[3];
          plan.cuts.push({ weight: dk, axis: 2, expand });
          plan.cuts.push({ weight: pk, axis: 2, expand: (k) => expand(k).flatMap((ch) => Array.from({ length: m }, (_, j) => ch * m + j)) });
        } else {
          const k = weightOf(c, 'kernel');
          if (!k) return `${c.name} has no kernel`;
          plan.cuts.push({ weight: k, axis: g.initializers.get(k)!.dims.length - 2, expand });
          plan.consumers.push(c.name);
        }
      } else {
        return `its channels reach ${c.name} (${c.opType}), which this pruner does not follow`;
      }
    }
  }
  return plan;
}

function scores(kernel: Float32Array, channels: number, p: 1 | 2): Float64Array {
  const s = new Float64Array(channels);
  for (let i = 0; i < kernel.length; i++) s[i % channels] += p === 1 ? Math.abs(kernel[i]) : kernel[i] * kernel[i];
  return s;
}

export async function pruneKeras(model: Model, opts: PruneOptions): Promise<PruneOutcome> {
  if (!tfjsDocument(model.source)) throw new UsageError('layer-level pruning works on TF.js layers models');
  const criterion = opts.criterion ?? 'l1';
  if (!['l1', 'l2', 'random', 'entropy'].includes(criterion)) throw new UsageError(`TF.js models are pruned by l1, l2, entropy or random importance (got ${criterion})`);
  if (!opts.structured) return zeroSmallest(model, opts);
  const recover = opts.recover === 'reconstruct';
  if (recover && !opts.calib) throw new UsageError('--recover reconstruct needs calibration data (--calib)');
  const steps = Math.max(1, Math.floor(opts.steps ?? 1));
  if (opts.groupRatios && steps > 1) throw new UsageError('per-group ratios run in one step');
  // Iterative schedule: each step prunes the current model a little, then (optionally)
  // refits against the original; kept channels are tracked in original positions.
  const base = analyzeModel(model).totals;
  const keptOriginal = new Map<string, number[]>();
  /** Each group's channel count before step 1 (by its first producer): step targets are counted on it, as for ONNX. */
  const firstSize = new Map<string, number>();
  const reconstruction: PruneOutcome['reconstruction'] = [];
  let current = model;
  let outcome: PruneOutcome | undefined;
  for (let step = 1; step <= steps; step++) {
    if (opts.signal?.aborted) throw new CancelledError();
    opts.onProgress?.(`step ${step}/${steps}: planning`, (step - 1) / steps);
    let stepOpts: PruneOptions = { ...opts };
    if (steps > 1) {
      const now = analyzeModel(current).totals;
      if (opts.ratio !== undefined) stepOpts.ratio = cumulativeRatio(opts.ratio, step, steps, opts.schedule);
      else if (opts.targetParams !== undefined) stepOpts.targetParams = Math.min(0.95, Math.max(1e-6, 1 - (base.params * (1 - cumulativeTarget(opts.targetParams, step, steps, opts.schedule))) / now.params));
      else if (opts.targetMacs !== undefined) stepOpts.targetMacs = Math.min(0.95, Math.max(1e-6, 1 - (base.macs * (1 - cumulativeTarget(opts.targetMacs, step, steps, opts.schedule))) / now.macs));
    }
    if (criterion === 'entropy' && (!opts.layerScores || step > 1)) stepOpts = { ...stepOpts, layerScores: await kerasEntropyScores(current, opts.calib, opts.signal) };
    outcome = choose(current, stepOpts, criterion, firstSize);
    const info = refits.get(outcome)!;
    for (const [name, k] of info.kept) {
      const prev = keptOriginal.get(name);
      keptOriginal.set(name, k.map((c) => (prev ? prev[c] : c)));
    }
    if (recover) {
      opts.onProgress?.(`step ${step}/${steps}: reconstructing`, (step - 0.5) / steps);
      pushAll(reconstruction, await reconstructKeras(model, outcome.model, { layers: info.layers, kept: keptOriginal }, opts.calib!, opts.signal));
    }
    current = outcome.model;
  }
  const result = outcome!;
  result.reconstruction = reconstruction;
  if (steps > 1) result.notes.push(`${steps} steps; per-group figures are for the last step, totals compare with the original`);
  if (recover) result.notes.push(`reconstruction: ${reconstruction.length} layer refits by least squares on the calibration data (inputs from TensorFlow.js)`);
  return result;
}

/** What each outcome needs for reconstruction: the layers that lost inputs, the channels kept. */
const refits = new WeakMap<PruneOutcome, KerasRefit>();

function choose(model: Model, opts: PruneOptions, criterion: string, firstSize: Map<string, number>): PruneOutcome {
  const target = opts.targetParams !== undefined ? 'params' : opts.targetMacs !== undefined ? 'macs' : undefined;
  if (opts.groupRatios) return pruneAt(model, 0, opts, criterion);
  if (opts.ratio === undefined && !target) throw new UsageError('TF.js structured pruning needs --ratio, --target-params or --target-macs');
  if (!target) return pruneAt(model, opts.ratio!, opts, criterion, firstSize);
  // Bisection on the uniform ratio until the params/MACs goal is met.
  const base = analyzeModel(model).totals[target];
  const goal = base * (1 - (opts.targetParams ?? opts.targetMacs)!);
  let lo = 0;
  let hi = 0.95;
  let best = pruneAt(model, hi, opts, criterion);
  if (analyzeModel(best.model).totals[target] > goal) {
    best.notes.push(`the ${target} target is out of reach: even 95% of every prunable layer's channels leaves more`);
    return best;
  }
  for (let i = 0; i < 12; i++) {
    const mid = (lo + hi) / 2;
    const r = pruneAt(model, mid, opts, criterion);
    if (analyzeModel(r.model).totals[target] <= goal) {
      hi = mid;
      best = r;
    } else lo = mid;
  }
  best.notes.push(`uniform ratio ${hi.toFixed(3)} found by bisection for the ${target} target`);
  return best;
}

/**
 * Prunes every group at `ratio`. With `firstSize` (a ratio's multi-step schedule), `ratio` is the
 * cumulative share of each group's size before step 1, so steps add up to exactly one shot's counts.
 */
function pruneAt(model: Model, ratio: number, opts: PruneOptions, criterion: string, firstSize?: Map<string, number>): PruneOutcome {
  const out = cloneModel(model);
  const doc = tfjsDocument(out.source)!;
  const g = out.graph;
  const before = analyzeModel(model);
  const outcome: PruneOutcome = { model: out, groups: [], skipped: [], reconstruction: [], notes: [`importance: ${criterion === 'entropy' ? "entropy of each output channel's activations on the calibration data (TensorFlow.js)" : criterion === 'random' ? 'random' : `${criterion} norm of each output channel's kernel`}; ${opts.groupRatios ? 'a ratio per group (allocated)' : `ratio ${ratio.toFixed(3)} per layer`}`] };
  const plans: Array<{ plan: Plan; remove: Set<number> }> = [];
  let rng = (opts.seed ?? 0) * 7919 + 1;
  const grouped = new Set<Node>();
  for (const p of g.nodes.filter((n) => PRODUCERS.has(n.opType))) {
    if (grouped.has(p)) continue;
    if (opts.exclude?.includes(p.name)) {
      outcome.skipped.push({ name: p.name, reason: 'excluded' });
      continue;
    }
    const plan = trace(out, p);
    if (typeof plan === 'string') {
      outcome.skipped.push({ name: p.name, reason: plan });
      continue;
    }
    for (const q of plan.producers) grouped.add(q);
    const excluded = plan.producers.find((q) => opts.exclude?.includes(q.name));
    if (excluded) {
      outcome.skipped.push({ name: p.name, reason: `coupled with ${excluded.name}, which is excluded` });
      continue;
    }
    // Per-group ratios (from sensitivity allocation) name a group by its first producer.
    const key = plan.producers[0].name;
    const roundTo = Math.max(1, Math.floor(opts.roundTo ?? 8));
    if (firstSize && !firstSize.has(key)) firstSize.set(key, plan.channels);
    const n = opts.groupRatios
      ? removeCount(plan.channels, opts.groupRatios[key] ?? 0, roundTo)
      : firstSize
        ? stepRemoveCount(firstSize.get(key)!, plan.channels, ratio, roundTo)
        : removeCount(plan.channels, ratio, roundTo);
    if (n <= 0) continue;
    // Coupled producers share the channels: their importances add up.
    const s = new Float64Array(plan.channels);
    if (opts.layerScores) for (const q of plan.producers) opts.layerScores.get(q.name)?.forEach((v, i) => (s[i] += v));
    else if (criterion === 'random') s.forEach((_, i) => (s[i] = (rng = (rng * 48271) % 2147483647) / 2147483647));
    else for (const k of plan.kernels) scores(g.initializers.get(k)!.toFloat32(), plan.channels, criterion === 'l1' ? 1 : 2).forEach((v, i) => (s[i] += v));
    const order = [...s.keys()].sort((a, b) => s[a] - s[b] || a - b);
    plans.push({ plan, remove: new Set(order.slice(0, n)) });
  }
  // The channels each plan drops, per weight and axis, in the original positions: plans that
  // reach one weight (a Concatenate's consumer, a kernel cut on both axes) are applied together.
  const drops = new Map<string, { weight: string; axis: number; drop: Set<number> }>();
  for (const { plan, remove } of plans) {
    const keep = [...Array(plan.channels).keys()].filter((c) => !remove.has(c));
    for (const cut of plan.cuts) {
      const kept = new Set(cut.expand(keep));
      const key = `${cut.weight}#${cut.axis}`;
      const entry = drops.get(key) ?? { weight: cut.weight, axis: cut.axis, drop: new Set<number>() };
      drops.set(key, entry);
      for (const i of cut.expand([...Array(plan.channels).keys()])) if (!kept.has(i)) entry.drop.add(i);
    }
    for (const { layer, key } of plan.configs) {
      const l = doc.layerByName(layer);
      if (l) layerConfig(l)[key] = keep.length;
      g.nodes.find((n) => n.name === layer)?.setInt(key, keep.length);
    }
  }
  for (const { weight, axis, drop } of drops.values()) {
    const t = g.initializers.get(weight)!;
    const r = removeAlongAxis({ dims: [...t.dims], data: t.toFloat32() }, axis, drop);
    g.initializers.set(weight, Tensor.fromArray(weight, DataType.FLOAT, r.dims, r.data));
  }
  const kept = new Map<string, number[]>();
  for (const { plan, remove } of plans) {
    const keep = [...Array(plan.channels).keys()].filter((c) => !remove.has(c));
    for (const q of plan.producers) kept.set(q.name, keep);
  }
  refits.set(outcome, { layers: [...new Set(plans.flatMap(({ plan }) => plan.consumers))], kept });
  inferKerasShapes(g);
  const after = analyzeModel(out);
  const byName = (a: typeof before, n: string) => a.layers.find((l) => l.name === n);
  for (const { plan, remove } of plans) {
    const consumers = new Set(plan.cuts.map((c) => c.weight.slice(0, c.weight.lastIndexOf('/'))));
    let params = 0;
    let macs = 0;
    for (const l of consumers) {
      params += (byName(before, l)?.params ?? 0) - (byName(after, l)?.params ?? 0);
      macs += (byName(before, l)?.macs ?? 0) - (byName(after, l)?.macs ?? 0);
    }
    outcome.groups.push({ name: plan.producers[0].name, producers: plan.producers.map((q) => q.name), channels: plan.channels, removed: remove.size, paramsSaved: params, macsSaved: macs });
  }
  return outcome;
}

/** Unstructured: the smallest-magnitude fraction of each kernel (or under a threshold) set to zero. */
function zeroSmallest(model: Model, opts: PruneOptions): PruneOutcome {
  if (opts.ratio === undefined && opts.threshold === undefined) throw new UsageError('unstructured pruning needs --ratio or --threshold');
  const out = cloneModel(model);
  const outcome: PruneOutcome = { model: out, groups: [], skipped: [], reconstruction: [], notes: ['magnitude pruning of kernels (biases and normalisation weights kept); the file stays the same size: store it uint8 (quantize --mode uint8) or zip it to cash in the zeros'], sparsity: [] };
  for (const [name, t] of out.graph.initializers) {
    if (!/kernel$/.test(name) || t.dtype !== DataType.FLOAT) continue;
    if (opts.exclude?.some((e) => name.startsWith(`${e}/`))) continue;
    const v = t.toFloat32();
    let thr = opts.threshold ?? 0;
    if (opts.threshold === undefined) {
      const sorted = Float32Array.from(v, Math.abs).sort();
      const k = Math.floor(sorted.length * opts.ratio!);
      thr = k > 0 ? sorted[k - 1] : -1;
    }
    let zeros = 0;
    for (let i = 0; i < v.length; i++) {
      if (Math.abs(v[i]) <= thr) v[i] = 0;
      if (v[i] === 0) zeros++;
    }
    out.graph.initializers.set(name, Tensor.fromArray(name, DataType.FLOAT, [...t.dims], v));
    outcome.sparsity!.push({ name, elements: v.length, zeros, sparsity: zeros / v.length });
  }
  return outcome;
}

/** Entropy importance of every producer layer's output channels (see below). */
export async function kerasEntropyScores(model: Model, calib: Dataset | undefined, signal?: AbortSignal): Promise<Map<string, Float64Array>> {
  if (!calib) throw new UsageError("the 'entropy' criterion needs calibration data (--calib)");
  return entropyScores(model, model.graph.nodes.filter((n) => PRODUCERS.has(n.opType)).map((n) => n.name), calib, signal);
}

/**
 * Shannon entropy of each output channel of the named layers over calibration data (64 bins
 * between the channel's min and max, as for ONNX), measured by TensorFlow.js.
 */
async function entropyScores(model: Model, layers: string[], calib: Dataset, signal?: AbortSignal): Promise<Map<string, Float64Array>> {
  const runner = await TfjsRunner.fromModel(model);
  try {
    const lo = new Map<string, Float64Array>();
    const hi = new Map<string, Float64Array>();
    const hist = new Map<string, Float64Array>();
    for (const pass of [0, 1]) {
      for (const { feeds } of calib.batches(16)) {
        if (signal?.aborted) throw new CancelledError();
        const outs = await runner.capture(layers, feeds);
        for (const l of layers) {
          const t = outs[l];
          const c = t.dims[t.dims.length - 1];
          const v = t.data as Float32Array;
          if (pass === 0) {
            const a = lo.get(l) ?? new Float64Array(c).fill(Infinity);
            const b = hi.get(l) ?? new Float64Array(c).fill(-Infinity);
            for (let i = 0; i < v.length; i++) {
              const ch = i % c;
              if (v[i] < a[ch]) a[ch] = v[i];
              if (v[i] > b[ch]) b[ch] = v[i];
            }
            lo.set(l, a);
            hi.set(l, b);
          } else {
            const a = lo.get(l)!;
            const b = hi.get(l)!;
            const H = hist.get(l) ?? new Float64Array(c * ENTROPY_BINS);
            hist.set(l, H);
            for (let i = 0; i < v.length; i++) {
              const ch = i % c;
              const range = b[ch] - a[ch];
              if (!(range > 0)) continue;
              H[ch * ENTROPY_BINS + Math.min(ENTROPY_BINS - 1, Math.floor(((v[i] - a[ch]) * ENTROPY_BINS) / range))]++;
            }
          }
        }
      }
    }
    return new Map([...hist].map(([l, H]) => [l, channelEntropy(H, H.length / ENTROPY_BINS)]));
  } finally {
    await runner.release();
  }
}
