import { CancelledError, UsageError } from '../../errors';
import { DataType } from '../../ir/dtype';
import { Graph, Model, type ModelFormat, type Node } from '../../ir/graph';
import { inferShapes } from '../../ir/shape-inference';
import { collectActivations } from '../../runtime/capture';
import { argmax, hostValues } from '../../runtime/compare';
import type { Dataset } from '../../runtime/data/dataset';
import { ModelSession, type HostTensor } from '../../runtime/session';
import { cloneModel } from '../graph-edit';
import { applyPruning } from './onnx/apply';
import { buildDependencyGraph, type Group } from './onnx/dependency';
import { groupImportance, type Criterion } from './importance';
import { groupName } from './index';
import { kerasEntropyScores, pruneKeras } from './tfjs-layers';
import { variantRunner } from '../../runtime/tfjs';
import { analyzeModel } from '../../analysis/analyze';
import { minOf } from '../../util/arrays';

/**
 * Pruning sensitivity: each group is pruned alone at ratios 0.1 … 0.9 and the loss in
 * fidelity (or accuracy, with labels) is measured. The activations entering the part of
 * the graph a group affects are computed once from the original model and cached, so each
 * variant runs only the subgraph downstream of the group's first node.
 */

export interface SensitivityPoint {
  ratio: number;
  removed: number;
  /** accuracy, top-1 agreement or cosine (see `metric`). */
  value: number;
  /** Loss against the unpruned model (≥ 0 means worse). */
  drop: number;
  paramsSaved: number;
  macsSaved: number;
}

export interface SensitivityCurve {
  group: string;
  channels: number;
  points: SensitivityPoint[];
}

export interface SensitivityResult {
  metric: 'accuracy' | 'top1Agreement' | 'cosine';
  baseline: number;
  samples: number;
  totals: { params: number; macs: number };
  curves: SensitivityCurve[];
  skipped: Array<{ name: string; reason: string }>;
  /** What ran the variants: ONNX Runtime, or for TF.js models ORT on the export or TensorFlow.js. */
  runtime?: string;
}

export interface SensitivityOptions {
  data: Dataset;
  labels?: Int32Array;
  ratios?: number[];
  criterion?: Criterion;
  calib?: Dataset;
  samples?: number;
  batchSize?: number;
  /** Bound on cached activations. */
  maxCacheBytes?: number;
  /** Default: accuracy with labels, else top-1 agreement for classifiers, else cosine. */
  metric?: 'accuracy' | 'top1Agreement' | 'cosine';
  signal?: AbortSignal;
  onProgress?: (done: number, total: number) => void;
}

/** The one place sensitivity picks its code by format: ONNX variants run the affected subgraph in ORT; TF.js variants run whole. */
const SENSITIVITY: Partial<Record<ModelFormat, (model: Model, opts: SensitivityOptions) => Promise<SensitivityResult>>> = {
  onnx: onnxSensitivity,
  'tfjs-layers': kerasSensitivity,
};

export async function pruningSensitivity(input: Model, opts: SensitivityOptions): Promise<SensitivityResult> {
  const impl = SENSITIVITY[input.format];
  if (!impl) throw new UsageError(`pruning sensitivity works on ONNX and TF.js layers models, not ${input.format}`);
  return impl(input, opts);
}

async function onnxSensitivity(input: Model, opts: SensitivityOptions): Promise<SensitivityResult> {
  const model = cloneModel(input);
  model.graph.nodes = model.graph.topoOrder();
  const ratios = opts.ratios ?? [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];
  const dg = buildDependencyGraph(model);
  const skipped: SensitivityResult['skipped'] = [];
  const groups = dg.groups.filter((g) => {
    if (g.unsafe) skipped.push({ name: groupName(g), reason: g.unsafe });
    else if (g.size < 2) skipped.push({ name: groupName(g), reason: 'a single channel cannot be pruned' });
    return !g.unsafe && g.size >= 2;
  });
  const scores = await groupImportance(model, groups, opts.criterion ?? 'l1', { calib: opts.calib ?? opts.data });
  const usable = groups.filter((g) => {
    const s = scores.get(g);
    if (typeof s === 'string') skipped.push({ name: groupName(g), reason: s });
    return typeof s !== 'string';
  });
  const nodes = model.graph.nodes;
  const index = new Map(nodes.map((n, i) => [n, i]));
  const firstOf = (g: Group) => minOf(g.members.map((m) => index.get(m.node)!));
  const cuts = new Map(usable.map((g) => [g, boundary(model, firstOf(g))]));
  const samples = Math.min(opts.samples ?? 64, opts.data.count);
  const outputs = model.graph.outputs.map((o) => o.name);
  const cacheNames = [...new Set([...[...cuts.values()].flat(), ...outputs])];
  const cache = await collectActivations(model, cacheNames, opts.data, { batchSize: opts.batchSize ?? 16, limit: samples, maxBytes: opts.maxCacheBytes ?? 1024 * 2 ** 20, session: { allowSpinning: false } });
  const labels = opts.labels?.subarray(0, samples);
  const ref = cache[outputs[0]];
  const metric: SensitivityResult['metric'] = opts.metric ?? (labels ? 'accuracy' : ref[0].dims.length === 2 && ref[0].dims[1] >= 2 ? 'top1Agreement' : 'cosine');
  if (metric === 'accuracy' && !labels) throw new UsageError('the accuracy metric needs labels');
  const score = (out: HostTensor[]) => scoreOutputs(metric, ref, out, labels);
  const baseline = metric === 'accuracy' ? score(ref) : 1;
  const base = analyzeModel(model).totals;
  const types = inferShapes(model).types;

  const curves: SensitivityCurve[] = [];
  const total = usable.length * ratios.length;
  let done = 0;
  for (const g of usable) {
    const s = scores.get(g) as Float64Array;
    const order = [...s.keys()].sort((a, b) => s[a] - s[b] || a - b);
    const first = firstOf(g);
    const cut = cuts.get(g)!;
    const points: SensitivityPoint[] = [];
    for (const ratio of ratios) {
      if (opts.signal?.aborted) throw new CancelledError();
      const n = Math.min(g.size - 1, Math.floor(g.size * ratio + 1e-9));
      const pruned = applyPruning(model, [{ group: g, remove: order.slice(0, n).sort((a, b) => a - b) }]);
      const sub = downstream(pruned, first, cut, types);
      const session = await ModelSession.create(sub, { allowSpinning: false });
      const outs: HostTensor[] = [];
      try {
        for (let b = 0; b < ref.length; b++) {
          const feeds = Object.fromEntries(cut.map((c) => [c, cache[c][b]]));
          outs.push((await session.run(feeds, [outputs[0]]))[outputs[0]]);
        }
      } finally {
        await session.release();
      }
      const value = score(outs);
      const after = analyzeModel(pruned).totals;
      points.push({ ratio, removed: n, value, drop: baseline - value, paramsSaved: base.params - after.params, macsSaved: base.macs - after.macs });
      opts.onProgress?.(++done, total);
    }
    curves.push({ group: groupName(g), channels: g.size, points });
  }
  return { metric, baseline, samples, totals: { params: base.params, macs: base.macs }, curves, skipped, runtime: 'ONNX Runtime' };
}

/**
 * The same curves for a TF.js layers model: each group of the layer-level pruner alone, every
 * variant written to a scratch folder and run by TensorFlow.js itself on the same samples.
 */
async function kerasSensitivity(model: Model, opts: SensitivityOptions): Promise<SensitivityResult> {
  const ratios = opts.ratios ?? [0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9];
  const criterion = opts.criterion ?? 'l1';
  // Entropy is measured once; every variant ranks channels by the same scores.
  const layerScores = criterion === 'entropy' ? await kerasEntropyScores(model, opts.calib ?? opts.data, opts.signal) : undefined;
  const probe = await pruneKeras(model, { structured: true, ratio: 0.5, criterion, layerScores, roundTo: 1 });
  const producers = probe.groups.flatMap((g) => g.producers);
  const samples = Math.min(opts.samples ?? 64, opts.data.count);
  const batchSize = opts.batchSize ?? 16;
  // Variants are compared with each other, not with TensorFlow.js: ORT on the export when it exports.
  let runtime = '';
  // Read (or generate) the samples once for all variants: at most `samples` of them.
  const batches = [...opts.data.batches(batchSize, samples)].map((b) => b.feeds);
  const run = async (m: Model): Promise<HostTensor[]> => {
    const runner = await variantRunner(m);
    runtime = runner.runtime;
    try {
      const outs: HostTensor[] = [];
      for (const feeds of batches) {
        if (opts.signal?.aborted) throw new CancelledError();
        outs.push(Object.values(await runner.run(feeds))[0]);
      }
      return outs;
    } finally {
      await runner.release();
    }
  };
  const ref = await run(model);
  const labels = opts.labels?.subarray(0, samples);
  const metric: SensitivityResult['metric'] = opts.metric ?? (labels ? 'accuracy' : ref[0].dims.length === 2 && ref[0].dims[1] >= 2 ? 'top1Agreement' : 'cosine');
  if (metric === 'accuracy' && !labels) throw new UsageError('the accuracy metric needs labels');
  const baseline = metric === 'accuracy' ? scoreOutputs(metric, ref, ref, labels) : 1;
  const base = analyzeModel(model).totals;
  const curves: SensitivityCurve[] = [];
  const total = probe.groups.length * ratios.length;
  let done = 0;
  for (const g of probe.groups) {
    const others = producers.filter((p) => !g.producers.includes(p));
    const points: SensitivityPoint[] = [];
    for (const ratio of ratios) {
      if (opts.signal?.aborted) throw new CancelledError();
      const r = await pruneKeras(model, { structured: true, ratio, criterion, exclude: others, layerScores, roundTo: 1 });
      const value = scoreOutputs(metric, ref, await run(r.model), labels);
      const after = analyzeModel(r.model).totals;
      points.push({ ratio, removed: r.groups[0]?.removed ?? 0, value, drop: baseline - value, paramsSaved: base.params - after.params, macsSaved: base.macs - after.macs });
      opts.onProgress?.(++done, total);
    }
    curves.push({ group: g.name, channels: g.channels, points });
  }
  return { metric, baseline, samples, totals: { params: base.params, macs: base.macs }, curves, skipped: probe.skipped, runtime };
}

/** Values read by nodes[first…] but produced before them (or graph inputs). */
function boundary(model: Model, first: number): string[] {
  const g = model.graph;
  const later = g.nodes.slice(first);
  const produced = new Set(later.flatMap((n) => n.outputs));
  const need = new Set<string>();
  for (const n of later) for (const i of n.inputs) if (i && !produced.has(i) && !g.initializers.has(i)) need.add(i);
  return [...need];
}

/** The part of `model` from node index `first` on, fed by the boundary values. */
function downstream(model: Model, first: number, cut: string[], types: Map<string, { dtype: DataType; shape: unknown }>): Model {
  const g = model.graph;
  const sub = Object.assign(new Graph(g.name), g);
  sub.nodes = g.nodes.slice(first);
  sub.inputs = cut.map((name) => ({ name, type: { kind: 'tensor' as const, dtype: types.get(name)?.dtype ?? DataType.FLOAT, shape: null } }));
  sub.valueInfo = new Map();
  const used = new Set(sub.nodes.flatMap((n: Node) => n.inputs));
  sub.initializers = new Map([...g.initializers].filter(([k]) => used.has(k)));
  const m = Object.assign(new Model(sub, model.format), model);
  m.graph = sub;
  return m;
}

function scoreOutputs(metric: SensitivityResult['metric'], ref: HostTensor[], out: HostTensor[], labels?: Int32Array): number {
  let agree = 0;
  let rows = 0;
  let dot = 0;
  let na = 0;
  let nb = 0;
  ref.forEach((r, b) => {
    const a = hostValues(r);
    const c = hostValues(out[b]);
    if (metric === 'cosine') {
      for (let i = 0; i < a.length; i++) {
        dot += a[i] * c[i];
        na += a[i] * a[i];
        nb += c[i] * c[i];
      }
      return;
    }
    const cls = r.dims[1];
    for (let k = 0; k < r.dims[0]; k++) {
      const pc = argmax(Array.prototype.slice.call(c, k * cls, (k + 1) * cls));
      const target = metric === 'accuracy' ? labels![rows] : argmax(Array.prototype.slice.call(a, k * cls, (k + 1) * cls));
      if (pc === target) agree++;
      rows++;
    }
  });
  if (metric === 'cosine') return na && nb ? dot / Math.sqrt(na * nb) : 1;
  return agree / rows;
}

/**
 * Chooses a ratio per group that removes `fraction` of the model's MACs (or params) with
 * the least predicted loss, greedily stepping along the curves (losses assumed additive).
 */
export function allocateFromCurves(result: SensitivityResult, fraction: number, by: 'macs' | 'params'): { ratios: Record<string, number>; predictedDrop: number; predictedSaved: number } {
  if (!(fraction > 0 && fraction < 1)) throw new UsageError('the target is a fraction in (0, 1)');
  const goal = fraction * result.totals[by];
  const pos = result.curves.map(() => -1); // index into points; -1 = unpruned
  const saved = (k: number, p: number) => (p < 0 ? 0 : by === 'macs' ? result.curves[k].points[p].macsSaved : result.curves[k].points[p].paramsSaved);
  const drop = (k: number, p: number) => (p < 0 ? 0 : Math.max(0, result.curves[k].points[p].drop));
  let total = 0;
  while (total < goal) {
    let best = -1;
    let bestNext = -1;
    let bestCost = Infinity;
    result.curves.forEach((c, k) => {
      // The next point that saves something: small groups remove nothing at low ratios.
      let next = pos[k] + 1;
      while (next < c.points.length && saved(k, next) <= saved(k, pos[k])) next++;
      if (next >= c.points.length) return;
      const cost = (drop(k, next) - drop(k, pos[k]) + 1e-6) / (saved(k, next) - saved(k, pos[k]));
      if (cost < bestCost) {
        bestCost = cost;
        best = k;
        bestNext = next;
      }
    });
    if (best < 0) break;
    total += saved(best, bestNext) - saved(best, pos[best]);
    pos[best] = bestNext;
  }
  const ratios: Record<string, number> = {};
  let predictedDrop = 0;
  result.curves.forEach((c, k) => {
    if (pos[k] >= 0) {
      ratios[c.group] = c.points[pos[k]].ratio;
      predictedDrop += drop(k, pos[k]);
    }
  });
  return { ratios, predictedDrop, predictedSaved: total / result.totals[by] };
}
