import { analyzeModel } from '../../analysis/analyze';
import { CancelledError, UsageError } from '../../errors';
import { DataType } from '../../ir/dtype';
import { AttrType, Graph, Node, type Model, type ValueInfo } from '../../ir/graph';
import { Tensor } from '../../ir/tensor';
import type { Dataset } from '../../runtime/data/dataset';
import { ModelSession, type HostTensor } from '../../runtime/session';
import { datasetSampleSet, fit, floatWeights, labelsTensor, withTeacher, type FitResult, type LossTerm } from '../../train';
import { fitSettings, secondsPerEpoch, type TrainSettings } from '../distill/common';
import { cloneModel } from '../graph-edit';
import { buildDependencyGraph, removedPositions, type Group } from '../prune/onnx/dependency';
import { groupImportance, type Criterion } from '../prune/importance';

/**
 * Widths chosen at run time (slimmable networks, Yu et al. 2019; the sandwich rule and in-place
 * distillation of universally slimmable networks, Yu & Huang 2019): one ONNX file that runs
 * at several widths sharing its weights.
 *
 * 1. The channels of every prunable dependency group (`prune/dependency.ts`) are reordered by
 *    importance (`prune/importance.ts`, default L1), most important first; the reordering is
 *    exact (the full width computes the same function).
 * 2. The sub-network of width w keeps the first ⌈w·C⌉ channels of each group: its weights are
 *    `Slice`s of the full weights (prefixes on the output and input channel axes).
 * 3. All widths are fine-tuned together in one training graph (every width every step) by
 *    distillation from the original model's output (plus cross-entropy on labels for the full
 *    width), with the training engine.
 * 4. Export: one float input [1], `width` (default) or `budget` (`selector`). Nested `If`s
 *    pick the narrowest listed width ≥ `width` (the full width above the others); `budget` is a
 *    fraction of the full width's MACs, mapped to the widest width within it (the narrowest
 *    when none fits).
 *
 * Channel groups follow the pruning dependency graph, so residual `Add`s share one channel
 * slice across all their inputs, and a depthwise Conv keeps the slice of its input with its
 * `group` attribute set to the number of kept channels.
 *
 * Shapes: the model has one output [N, K]. Units: MACs per sample; latency ms at batch 1.
 * Supported: CNNs and MLPs (Conv, depthwise Conv, Gemm/MatMul, BatchNormalization,
 * elementwise ops including residual Adds, pooling, Flatten). A group whose channels are
 * reshaped or split, or read followed by other layers' channels (after a Concat, as in
 * SqueezeNet's fire modules), stays at full width at every width (the report says how many);
 * a model where no group can narrow is refused (UsageError saying why and what works instead).
 */
export interface WidthsOptions {
  /** Fractions in (0, 1], ascending; 1 is added when missing. */
  widths: number[];
  train: Dataset;
  trainLabels?: Int32Array;
  eval: Dataset;
  labels?: Int32Array;
  criterion?: Criterion;
  /** The input that picks the sub-network: 'width' (default, a fraction of the channels) or 'budget' (a fraction of the MACs). */
  selector?: 'width' | 'budget';
  temperature?: number;
  training?: TrainSettings;
  /** Evaluation samples timed at batch 1 per width (default 200; 0 skips). */
  latencySamples?: number;
  signal?: AbortSignal;
  onProgress?: (stage: string, fraction?: number) => void;
}

export interface WidthReport {
  width: number;
  /** Accuracy (or agreement) of the width before fine-tuning: the reordered weights, sliced. */
  before: number;
  macs: number;
  /** MACs as a fraction of the full width's: the least `budget` that selects this width. */
  budget: number;
  score: number;
  latencyMs?: { mean: number; p50: number };
}

export interface WidthsOutcome {
  model: Model;
  /** The input that picks the sub-network. */
  selector: 'width' | 'budget';
  metric: 'accuracy' | 'agreement';
  original: { macs: number; params: number; score: number; latencyMs?: { mean: number; p50: number } };
  widths: WidthReport[];
  groups: number;
  training: { epochs: number; secondsPerEpoch: number; trainable: number; rule: string };
  notes: string[];
}

export const WIDTH_INPUT = 'width';
export const BUDGET_INPUT = 'budget';
/** The width the sub-network is picked by. */
const SELECTED = 'width_selected';

/**
 * Nodes mapping the `budget` input (a fraction of the full width's MACs) to the widest listed
 * width whose MACs fit it (the narrowest when none does). With ascending widths w_j of MAC
 * fractions r_j, that width is w_0 + Σ_{j≥1} (w_j − w_{j−1})·[budget ≥ r_j] (GreaterOrEqual,
 * Cast, Mul, Sum).
 */
function budgetNodes(m: Model, ws: number[], fractions: number[]): Node[] {
  const g = m.graph;
  const f = (name: string, v: number) => {
    g.initializers.set(name, Tensor.fromArray(name, DataType.FLOAT, [1], Float32Array.of(v)));
    return name;
  };
  const nodes: Node[] = [];
  const terms = [f('budget.width_0', ws[0])];
  for (let j = 1; j < ws.length; j++) {
    // A hair below r_j, so that a budget equal to a width's printed MAC fraction selects it.
    const ge = new Node('GreaterOrEqual', [BUDGET_INPUT, f(`budget.macs_${j}`, fractions[j] - 1e-6)], [`budget/fits_${j}`], `budget/GreaterOrEqual_${j}`);
    const cast = new Node('Cast', [`budget/fits_${j}`], [`budget/fits_${j}_float`], `budget/Cast_${j}`);
    cast.setInt('to', DataType.FLOAT);
    const mul = new Node('Mul', [`budget/fits_${j}_float`, f(`budget.step_${j}`, ws[j] - ws[j - 1])], [`budget/step_${j}`], `budget/Mul_${j}`);
    nodes.push(ge, cast, mul);
    terms.push(`budget/step_${j}`);
  }
  nodes.push(new Node('Sum', terms, [SELECTED], 'budget/Sum'));
  return nodes;
}

/** A slice of one node input: keep [start, end) on each listed axis. */
type Cut = Map<number, [number, number]>;

function permuteAxis(t: Tensor, axis: number, blockMap: (pos: number) => number): Tensor {
  const src = t.toFloat32();
  const dims = t.dims;
  const outer = dims.slice(0, axis).reduce((a, b) => a * b, 1);
  const n = dims[axis];
  const inner = dims.slice(axis + 1).reduce((a, b) => a * b, 1);
  const dst = new Float32Array(src.length);
  for (let o = 0; o < outer; o++) for (let j = 0; j < n; j++) dst.set(src.subarray((o * n + blockMap(j)) * inner, (o * n + blockMap(j) + 1) * inner), (o * n + j) * inner);
  return Tensor.fromArray(t.name, DataType.FLOAT, [...dims], dst);
}

/** Consumer positions (on its weight's input axis) that vanish when the group keeps its first `k` channels, if they are one trailing block. */
function trailingCut(mem: Extract<Group['members'][number], { kind: 'consumer' }>, g: Group, k: number): number | undefined {
  const gone = removedPositions(mem.layout, g.id, Array.from({ length: g.size - k }, (_, i) => k + i));
  const total = mem.weight.dims[mem.axis];
  const first = gone[0];
  return gone.some((p, i) => p !== first + i) || first + gone.length !== total ? undefined : first;
}

/**
 * Why a group cannot narrow to a prefix of its channels, in user terms, or undefined. Such a
 * group stays at full width in every sub-network (its channels are never sliced).
 * - Its channels are reshaped or split (a channel Reshape/Split/Slice).
 * - A layer reads them together with other channels after them (a channel Concat: SqueezeNet's
 *   fire modules, Inception, DenseNet): a narrower width would keep a block in the middle of
 *   that layer's inputs, which is not one Slice of its weight.
 */
function fullWidthReason(g: Group): string | undefined {
  for (const m of g.members) {
    if (m.kind === 'reshape' || m.kind === 'split' || m.kind === 'slice') return `its channels are reshaped or split by '${m.node.name}' (${m.node.opType})`;
    // The most and the fewest channels a width can drop.
    if (m.kind === 'consumer' && g.size > 1 && (trailingCut(m, g, 1) === undefined || trailingCut(m, g, g.size - 1) === undefined)) {
      return `'${m.node.name}' reads its channels followed by other layers' channels (a Concat)`;
    }
  }
  return undefined;
}

/**
 * A copy in which every `Identity` of a float initializer becomes an initializer of its own
 * (named after the Identity's output). Exporters write shared weights that way (one bias read
 * by two convs); each width must slice and reorder its own copy.
 */
function ownWeights(model: Model): Model {
  const m = cloneModel(model);
  const g = m.graph;
  g.initializers = new Map(g.initializers);
  const outputs = new Set(g.outputs.map((o) => o.name));
  g.nodes = g.nodes.filter((n) => {
    const src = n.opType === 'Identity' && !n.domain ? g.initializers.get(n.inputs[0]) : undefined;
    if (!src || !src.isFloat() || outputs.has(n.outputs[0]) || g.initializers.has(n.outputs[0])) return true;
    g.initializers.set(n.outputs[0], Tensor.fromArray(n.outputs[0], DataType.FLOAT, [...src.dims], Float32Array.from(src.toFloat32())));
    return false;
  });
  const read = new Set(g.nodes.flatMap((n) => [...n.inputs, ...n.subgraphs().flatMap((sg) => sg.nodes.flatMap((x) => x.inputs))]));
  for (const k of [...g.initializers.keys()]) if (!read.has(k) && !outputs.has(k)) g.initializers.delete(k);
  return m;
}

/** Reorders every group's channels by importance (exact); returns the reordered copy. */
async function reorder(model: Model, groups: Group[], criterion: Criterion, opts: WidthsOptions): Promise<Model> {
  const scores = await groupImportance(model, groups, criterion, { calib: opts.train, labels: opts.trainLabels, reference: model, signal: opts.signal });
  const m = cloneModel(model);
  m.graph.initializers = new Map(m.graph.initializers);
  const init = (t: Tensor) => m.graph.initializers.get(t.name)!;
  const set = (t: Tensor) => m.graph.initializers.set(t.name, t);
  for (const g of groups) {
    const s = scores.get(g);
    if (typeof s === 'string' || !s) continue;
    const perm = Array.from({ length: g.size }, (_, i) => i).sort((a, b) => s[b] - s[a] || a - b);
    for (const mem of g.members) {
      if (mem.kind === 'producer') {
        set(permuteAxis(init(mem.weight), mem.axis, (j) => perm[j]));
        if (mem.bias) set(permuteAxis(init(mem.bias), 0, (j) => perm[j]));
      } else if (mem.kind === 'params') {
        for (const p of mem.tensors) set(permuteAxis(init(p.tensor), p.axis, (j) => perm[j]));
      } else if (mem.kind === 'consumer') {
        // Position map on the consumer's axis: blocks of this group's channels move; others stay.
        const w = init(mem.weight);
        const map = Array.from({ length: w.dims[mem.axis] }, (_, i) => i);
        for (const seg of mem.layout) {
          if (seg.group !== g.id) continue;
          for (let j = 0; j < seg.size; j++) for (let t = 0; t < seg.block; t++) map[seg.offset + j * seg.block + t] = seg.offset + (perm[seg.start + j] - seg.start) * seg.block + t;
        }
        set(permuteAxis(w, mem.axis, (j) => map[j]));
      }
    }
  }
  return m;
}

/**
 * The slices each (node, input) needs at width w, and the `group` attribute of each depthwise
 * Conv whose channels are cut (it follows the channel slice: one group per kept channel).
 */
function cutsAt(groups: Group[], w: number): { cuts: Map<Node, Map<number, Cut>>; convGroups: Map<Node, number> } {
  const cuts = new Map<Node, Map<number, Cut>>();
  const convGroups = new Map<Node, number>();
  const add = (n: Node, input: number, axis: number, start: number, end: number) => {
    if (input < 0) return;
    const byInput = cuts.get(n) ?? new Map<number, Cut>();
    cuts.set(n, byInput);
    const c = byInput.get(input) ?? new Map();
    byInput.set(input, c);
    const prev = c.get(axis);
    c.set(axis, prev ? [Math.max(prev[0], start), Math.min(prev[1], end)] : [start, end]);
  };
  for (const g of groups) {
    const k = Math.max(1, Math.ceil(w * g.size - 1e-9));
    if (k >= g.size) continue;
    for (const mem of g.members) {
      if (mem.kind === 'producer') {
        add(mem.node, mem.node.inputs.indexOf(mem.weight.name), mem.axis, 0, k);
        if (mem.bias) add(mem.node, mem.node.inputs.indexOf(mem.bias.name), 0, 0, k);
      } else if (mem.kind === 'params') {
        for (const p of mem.tensors) add(mem.node, p.input, p.axis, 0, k);
        if (mem.depthwise) convGroups.set(mem.node, k);
      } else if (mem.kind === 'consumer') {
        // The kept positions are one leading block (groups where they are not stay at full width: fullWidthReason).
        const first = trailingCut(mem, g, k);
        if (first === undefined) throw new Error(`runtime widths: '${mem.node.name}' would keep a block in the middle of its inputs (group ${g.id} should have stayed at full width)`);
        add(mem.node, mem.node.inputs.indexOf(mem.weight.name), mem.axis, 0, first);
      }
    }
  }
  return { cuts, convGroups };
}

/**
 * The nodes of the width-w sub-network: a copy of the graph whose tensors get the prefix
 * `width_<w>/` and whose cut weights are read through Slice nodes of the shared weights.
 */
function subnetwork(m: Model, groups: Group[], w: number, consts: Map<string, Tensor>): { nodes: Node[]; output: string } {
  const g = m.graph;
  const p = `width_${w}/`;
  const outer = new Set([...g.inputs.map((i) => i.name), ...g.initializers.keys()]);
  const rename = (v: string) => (v === '' || outer.has(v) ? v : `${p}${v}`);
  const { cuts, convGroups } = cutsAt(groups, w);
  const int64 = (name: string, vals: number[]) => {
    if (!consts.has(name)) consts.set(name, Tensor.fromArray(name, DataType.INT64, [vals.length], BigInt64Array.from(vals.map(BigInt))));
    return name;
  };
  const nodes: Node[] = [];
  for (const n of g.topoOrder()) {
    const c = new Node(n.opType, n.inputs.map(rename), n.outputs.map(rename), `${p}${n.name}`);
    for (const [k, v] of n.attributes) c.attributes.set(k, v);
    c.domain = n.domain;
    const convGroup = convGroups.get(n);
    if (convGroup !== undefined) c.setInt('group', convGroup);
    for (const [input, cut] of cuts.get(n) ?? []) {
      const axes = [...cut.keys()].sort();
      const name = `${p}${n.inputs[input]}/slice`;
      const tag = `${n.inputs[input]}.w${w}`;
      const starts = int64(`${tag}.starts`, axes.map((a) => cut.get(a)![0]));
      const ends = int64(`${tag}.ends`, axes.map((a) => cut.get(a)![1]));
      const ax = int64(`${tag}.axes`, axes);
      nodes.push(new Node('Slice', [n.inputs[input], starts, ends, ax], [name], `${p}${n.inputs[input]}/Slice`));
      c.inputs[input] = name;
    }
    nodes.push(c);
  }
  return { nodes, output: rename(g.outputs[0].name) };
}

function percentile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] : NaN;
}

/**
 * Joint fine-tuning by the sandwich rule with in-place distillation (Yu & Huang 2019,
 * "Universally Slimmable Networks", §3.3–3.4): every step trains the full width on the original
 * model's output (distillation, plus cross-entropy on the labels when given), and the narrowest
 * width and one middle width drawn at random on the full width's own output (a graph tensor:
 * the loss treats it as a constant, PyTorch's detach()). `subs` are the narrower widths'
 * logits, ascending. A middle width j enters the loss through w_j·pick + full·(1 − pick), with
 * pick ∈ {0, 1} fed per step: unpicked, its logits equal the teacher's and its gradient is
 * exactly zero (the ONNX graph is fixed, so its forward pass still runs).
 */
async function sandwich(original: Model, trainModel: Model, ordered: Model, outName: string, subs: string[], T: number, opts: WidthsOptions): Promise<FitResult> {
  const g = trainModel.graph;
  const middle = subs.slice(1);
  const scalar = (name: string) => ({ name, type: { kind: 'tensor' as const, dtype: DataType.FLOAT, shape: [1] } });
  const picked = middle.map((logits, j) => {
    const [pick, skip] = [`sandwich_pick_${j}`, `sandwich_skip_${j}`];
    g.inputs.push(scalar(pick), scalar(skip));
    g.nodes.push(
      new Node('Mul', [logits, pick], [`${logits}/picked`], `sandwich/Mul_pick_${j}`),
      new Node('Mul', [outName, skip], [`${logits}/skipped`], `sandwich/Mul_skip_${j}`),
      new Node('Add', [`${logits}/picked`, `${logits}/skipped`], [`${logits}/sandwich`], `sandwich/Add_${j}`),
    );
    g.outputs.push({ name: `${logits}/sandwich`, type: g.outputs[0].type });
    return `${logits}/sandwich`;
  });
  const teacher = await ModelSession.create(original, { allowSpinning: false }, '<original model teacher>');
  try {
    const extra: Record<string, HostTensor> = opts.trainLabels ? { width_labels: labelsTensor(opts.trainLabels) } : {};
    const base = withTeacher(datasetSampleSet(opts.train, extra), teacher, 'width_teacher');
    const losses: LossTerm[] = [{ kind: 'distillation', logits: outName, teacherLogits: 'width_teacher', temperature: T, weight: 1 }];
    if (opts.trainLabels) losses.push({ kind: 'cross-entropy', logits: outName, labels: 'width_labels', weight: 1 });
    for (const logits of [subs[0], ...picked]) losses.push({ kind: 'distillation', logits, teacherLogits: outName, temperature: T, weight: 1 });
    let state = ((opts.training?.seed ?? 0) * 2654435761 + 97) >>> 0 || 1;
    const one = (v: number): HostTensor => ({ dtype: DataType.FLOAT, dims: [1], data: Float32Array.of(v) });
    const set = {
      count: base.count,
      gather: async (indices: readonly number[]) => {
        const f: Record<string, HostTensor> = { ...(await base.gather(indices)) };
        state = (Math.imul(state, 1664525) + 1013904223) >>> 0;
        const j = middle.length ? state % middle.length : -1;
        middle.forEach((_, k) => {
          f[`sandwich_pick_${k}`] = one(k === j ? 1 : 0);
          f[`sandwich_skip_${k}`] = one(k === j ? 0 : 1);
        });
        return f;
      },
    };
    const r = await fit(trainModel, set, {
      // Defaults apply to settings left undefined (the CLI passes every flag, given or not).
      ...fitSettings({ ...opts.training, epochs: opts.training?.epochs ?? 5, batchSize: opts.training?.batchSize ?? 32, lr: opts.training?.lr ?? 1e-3, signal: opts.signal }),
      losses,
      // The real weights only: BatchNormalization running statistics stay as they are (BN frozen).
      trainable: floatWeights(ordered),
      onProgress: (p) => {
        opts.training?.onProgress?.(p);
        opts.onProgress?.('training the widths (sandwich rule)', ((p.epoch - 1) * p.steps + p.step) / (p.epochs * p.steps));
      },
    });
    if (r.stopped === 'cancelled') throw new CancelledError();
    return r;
  } finally {
    await teacher.release();
  }
}

/** Top-1 predictions of each named [N, K] output of `m` on the evaluation data. */
async function predictions(m: Model, names: string[], opts: WidthsOptions, extra: Record<string, HostTensor> = {}): Promise<Int32Array[]> {
  const s = await ModelSession.create(m, { allowSpinning: false }, '<widths>');
  try {
    const p: number[][] = names.map(() => []);
    for (const b of opts.eval.batches(64)) {
      if (opts.signal?.aborted) throw new CancelledError();
      const r = await s.run({ ...b.feeds, ...extra }, names);
      names.forEach((name, j) => {
        const k = r[name].dims[1];
        const x = r[name].data as Float32Array;
        for (let i = 0; i < x.length / k; i++) {
          let best = 0;
          for (let c = 1; c < k; c++) if (x[i * k + c] > x[i * k + best]) best = c;
          p[j].push(best);
        }
      });
    }
    return p.map((a) => Int32Array.from(a));
  } finally {
    await s.release();
  }
}

/** Reorders, fine-tunes and exports a model that runs at several widths (see the module comment). */
export async function runtimeWidths(model: Model, opts: WidthsOptions): Promise<WidthsOutcome> {
  const notes: string[] = [];
  if (model.graph.outputs.length !== 1) throw new UsageError(`runtime widths need a model with one output of class scores; this one has ${model.graph.outputs.length}`);
  if ((model.opset('') ?? 13) < 13) throw new UsageError(`runtime widths need opset ≥ 13; this model has opset ${model.opset('')}`);
  const selName = opts.selector === 'budget' ? BUDGET_INPUT : WIDTH_INPUT;
  if (opts.selector !== undefined && opts.selector !== 'width' && opts.selector !== 'budget') throw new UsageError(`the width selector is 'width' or 'budget', got '${String(opts.selector)}'`);
  if (model.graph.inputs.some((i) => i.name === selName)) throw new UsageError(`the model already has an input named '${selName}'`);
  const ws = [...new Set(opts.widths)].sort((a, b) => a - b);
  if (!ws.length || ws.some((w) => !(w > 0 && w <= 1))) throw new UsageError(`--widths are fractions in (0, 1], got ${opts.widths.join(',')}`);
  if (ws[ws.length - 1] !== 1) ws.push(1);
  if (opts.trainLabels && opts.trainLabels.length !== opts.train.count) throw new UsageError(`the training labels hold ${opts.trainLabels.length} entries but the training data holds ${opts.train.count} samples`);
  if (opts.labels && opts.labels.length !== opts.eval.count) throw new UsageError(`the evaluation labels hold ${opts.labels.length} entries but the evaluation data holds ${opts.eval.count} samples`);
  const epochs = opts.training?.epochs ?? 5;
  if (!(Number.isSafeInteger(epochs) && epochs >= 0)) throw new UsageError(`--epochs is a whole number ≥ 0 for --widths (0: no fine-tuning), got ${epochs}`);
  const source = model;
  model = ownWeights(model);

  opts.onProgress?.('ordering channels by importance');
  const dep = buildDependencyGraph(model);
  const outName = model.graph.outputs[0].name;
  const candidates = dep.groups.filter((g) => !g.unsafe && g.tensor !== outName);
  const fixed = candidates.map((g) => ({ g, why: fullWidthReason(g) })).filter((x) => x.why !== undefined);
  const groups = candidates.filter((g) => !fixed.some((x) => x.g === g));
  if (!groups.length) {
    const why = fixed.length ? `every channel group either feeds a Concat together with other layers' channels (as in SqueezeNet's fire modules, Inception or DenseNet blocks) or is reshaped or split (e.g. ${fixed[0].why})` : 'no layer has output channels that can be narrowed safely (they reach the output, a subgraph or an unsupported op)';
    throw new UsageError(`${model.path ?? 'the model'}: runtime widths slice a leading block of each layer's channels, and here ${why}; for a smaller model use prune --structured, or early exits (early-exit without --widths) to skip work on easy inputs`);
  }
  if (fixed.length) {
    notes.push(`${fixed.length} of ${candidates.length} channel groups stay at full width at every width: a narrower width must keep a leading block of each layer's inputs (${fixed[0].why}${fixed.length > 1 ? ', …' : ''})`);
  }
  const ordered = await reorder(model, groups, opts.criterion ?? 'l1', opts);
  // Members point at the original graph's nodes; map them to the reordered copy by identity of name.
  const byName = new Map(ordered.graph.nodes.map((n) => [n.name, n]));
  const mapped: Group[] = groups.map((g) => ({ ...g, members: g.members.map((m) => ({ ...m, node: byName.get(m.node.name) ?? m.node })) as Group['members'] }));
  const narrow = ws.slice(0, -1);

  // One training graph: the full network and every narrower one, sharing weights through Slices.
  const consts = new Map<string, Tensor>();
  const subs = narrow.map((w) => subnetwork(ordered, mapped, w, consts));
  const trainModel = cloneModel(ordered);
  trainModel.graph.initializers = new Map([...ordered.graph.initializers, ...consts]);
  trainModel.graph.nodes = [...ordered.graph.topoOrder(), ...subs.flatMap((s) => s.nodes)];
  const logitsType: ValueInfo['type'] = { kind: 'tensor', dtype: DataType.FLOAT, shape: model.graph.outputs[0].type?.kind === 'tensor' ? model.graph.outputs[0].type.shape : null };
  trainModel.graph.outputs = [model.graph.outputs[0], ...subs.map((s) => ({ name: s.output, type: logitsType }))];

  const T = opts.temperature ?? 4;
  const before = await predictions(trainModel, [outName, ...subs.map((s) => s.output)], opts);
  let trained: Model = trainModel;
  let training: WidthsOutcome['training'] = { epochs: 0, secondsPerEpoch: 0, trainable: 0, rule: 'none (not fine-tuned)' };
  if (epochs > 0) {
    const r = await sandwich(model, trainModel, ordered, outName, subs.map((s) => s.output), T, opts);
    trained = r.model;
    training = { epochs: r.history.length, secondsPerEpoch: secondsPerEpoch(r), trainable: r.trainable.length, rule: subs.length > 1 ? 'sandwich: full, narrowest and one random middle width per step' : 'sandwich: full and narrowest width every step' };
  }

  // MACs per sample of each width (the budget input maps MAC fractions to widths).
  const layers = new Map(analyzeModel(model).layers.map((l) => [l.name, l]));
  const origMacs = analyzeModel(source).totals.macs;
  const shared = [...ordered.graph.initializers.values()].filter((t) => t.isFloat()).reduce((a, t) => a + t.numel, 0);
  notes.push(`one file: ${shared} shared weights serve every width`);
  const macsAt = (w: number) => {
    if (w === 1) return origMacs;
    const { cuts } = cutsAt(groups, w);
    let total = 0;
    for (const n of model.graph.nodes) {
      const l = layers.get(n.name);
      let frac = 1;
      for (const [input, cut] of cuts.get(n) ?? []) {
        if (input !== 1) continue;
        const dims = model.graph.initializers.get(n.inputs[input])!.dims;
        for (const [a, [s, e]] of cut) frac *= (e - s) / dims[a];
      }
      total += (l?.macs ?? 0) * frac;
    }
    return total;
  };
  // Export: nested If on `width`.
  const out = cloneModel(ordered);
  out.graph.initializers = new Map([...ordered.graph.initializers].map(([k]) => [k, trained.graph.initializers.get(k)!]));
  for (const [k, t] of consts) out.graph.initializers.set(k, t);
  const full = cloneModel(out);
  const fullNodes = full.graph.topoOrder().map((n) => {
    const c = new Node(n.opType, [...n.inputs], n.outputs.map((o) => (o === outName ? `width_1/${outName}` : o)), `width_1/${n.name}`);
    for (const [k, v] of n.attributes) c.attributes.set(k, v);
    c.domain = n.domain;
    c.inputs = c.inputs.map((i) => (i === outName ? `width_1/${outName}` : i));
    return c;
  });
  const level = (k: number, name: string): Node[] => {
    if (k === narrow.length) return [...fullNodes, new Node('Identity', [`width_1/${outName}`], [name], 'width_1/Identity')];
    const w = narrow[k];
    const thr = `width_${w}.upper`;
    // The midpoint to the next width (exact widths pick themselves; anything between rounds up to the wider).
    out.graph.initializers.set(thr, Tensor.fromArray(thr, DataType.FLOAT, [1], Float32Array.of(w + 1e-4)));
    const cond = `width_${w}/selected`;
    const less = new Node('Less', [SELECTED, thr], [cond], `width_${w}/Less`);
    const thenG = new Graph(`width_${w}_then`);
    thenG.nodes.push(...subs[k].nodes.map((n) => n), new Node('Identity', [subs[k].output], [`${name}/w${w}`], `width_${w}/Identity`));
    thenG.outputs.push({ name: `${name}/w${w}`, type: logitsType });
    const elseG = new Graph(`width_${w}_else`);
    elseG.nodes.push(...level(k + 1, `${name}/gt${w}`));
    elseG.outputs.push({ name: `${name}/gt${w}`, type: logitsType });
    const ifNode = new Node('If', [cond], [name], `width_${w}/If`);
    ifNode.attributes.set('then_branch', { name: 'then_branch', type: AttrType.GRAPH, value: thenG });
    ifNode.attributes.set('else_branch', { name: 'else_branch', type: AttrType.GRAPH, value: elseG });
    return [less, ifNode];
  };
  const fractions = ws.map((w) => (origMacs > 0 ? macsAt(w) / origMacs : 1));
  const selector = opts.selector ?? 'width';
  const select = selector === 'budget' ? budgetNodes(out, ws, fractions) : [new Node('Identity', [WIDTH_INPUT], [SELECTED], 'width/Identity')];
  out.graph.nodes = [...select, ...level(0, outName)];
  out.graph.inputs = [...out.graph.inputs, { name: selector === 'budget' ? BUDGET_INPUT : WIDTH_INPUT, type: { kind: 'tensor', dtype: DataType.FLOAT, shape: [1] } }];
  out.graph.valueInfo = new Map();
  out.metadata = [...out.metadata.filter(([k]) => k !== 'runtime_widths'), ['runtime_widths', JSON.stringify({ input: selector === 'budget' ? BUDGET_INPUT : WIDTH_INPUT, widths: ws })]];

  // Measure every width: accuracy (or agreement), MACs, latency at batch 1.
  opts.onProgress?.('measuring each width');
  // The selector's value that runs width w: w itself, or its MAC fraction as the budget.
  const selIn = selector === 'budget' ? BUDGET_INPUT : WIDTH_INPUT;
  const widthFeed = (w: number): HostTensor => ({ dtype: DataType.FLOAT, dims: [1], data: Float32Array.of(selector === 'budget' ? fractions[ws.indexOf(w)] : w) });
  const s = await ModelSession.create(out, { allowSpinning: false }, '<runtime-widths model>');
  const o = await ModelSession.create(source, { allowSpinning: false }, '<original>');
  try {
    const preds = async (m: Model, w?: number): Promise<Int32Array> => (await predictions(m, [outName], opts, w === undefined ? {} : { [selIn]: widthFeed(w) }))[0];
    const original = await preds(source);
    const ref = opts.labels ?? original;
    const score = (p: Int32Array) => p.reduce((a, v, i) => a + (v === ref[i] ? 1 : 0), 0) / p.length;
    const nLat = Math.min(opts.latencySamples ?? 200, opts.eval.count);
    const times: number[][] = ws.map(() => []);
    const tOrig: number[] = [];
    const time = async (sess: ModelSession, feeds: Record<string, HostTensor>, into: number[]) => {
      const t0 = process.hrtime.bigint();
      await sess.run(feeds);
      into.push(Number(process.hrtime.bigint() - t0) / 1e6);
    };
    for (let i = 0; i < nLat; i++) {
      if (opts.signal?.aborted) throw new CancelledError();
      const feeds = opts.eval.batch(i, 1);
      if (i < 5) for (const w of ws) await s.run({ ...feeds, [selIn]: widthFeed(w) });
      await time(o, feeds, tOrig);
      for (let j = 0; j < ws.length; j++) await time(s, { ...feeds, [selIn]: widthFeed(ws[(i + j) % ws.length]) }, times[(i + j) % ws.length]);
    }
    const lat = (x: number[]) => (x.length ? { mean: x.reduce((a, b) => a + b, 0) / x.length, p50: percentile(x, 0.5) } : undefined);
    const widths: WidthReport[] = [];
    for (let j = 0; j < ws.length; j++) {
      const w = ws[j];
      // `before` lists the full width first, then the narrower ones ascending.
      widths.push({ width: w, macs: macsAt(w), budget: fractions[j], before: score(before[j === ws.length - 1 ? 0 : j + 1]), score: score(await preds(out, w)), latencyMs: lat(times[j]) });
    }
    notes.push(
      training.epochs
        ? `channels ordered by the ${opts.criterion ?? 'l1'} criterion; widths fine-tuned by the sandwich rule: the full width on the original model's output${opts.trainLabels ? ' and the labels' : ''}, the narrower ones on the full width's (in-place distillation)`
        : `channels ordered by the ${opts.criterion ?? 'l1'} criterion; not fine-tuned (--epochs 0)`,
    );
    notes.push(
      selector === 'budget'
        ? `the '${BUDGET_INPUT}' input (float [1], a fraction of the full width's MACs) picks the widest width within it (the narrowest when none fits); params are shared, so every width has the file's params`
        : `the '${WIDTH_INPUT}' input (float [1]) picks the narrowest listed width ≥ its value; params are shared, so every width has the file's params`,
    );
    return { model: out, selector, metric: opts.labels ? 'accuracy' : 'agreement', original: { macs: origMacs, params: analyzeModel(source).totals.params, score: score(original), latencyMs: lat(tOrig) }, widths, groups: groups.length, training, notes };
  } finally {
    await s.release();
    await o.release();
  }
}
