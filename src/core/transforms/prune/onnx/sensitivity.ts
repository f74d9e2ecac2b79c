import { analyzeModel } from '../../../analysis/analyze';
import { CancelledError } from '../../../errors';
import { DataType } from '../../../ir/dtype';
import { Graph, Model, type Node } from '../../../ir/graph';
import { inferShapes } from '../../../ir/shape-inference';
import { collectActivations } from '../../../runtime/capture';
import { ModelSession, type HostTensor } from '../../../runtime/session';
import { minOf } from '../../../util/arrays';
import { cloneModel } from '../../graph-edit';
import { groupImportance } from '../importance';
import { groupName } from '../index';
import { chooseMetric, scoreOutputs, type SensitivityCurve, type SensitivityOptions, type SensitivityPoint, type SensitivityResult } from '../sensitivity-score';
import { applyPruning } from './apply';
import { buildDependencyGraph, type Group } from './dependency';

/**
 * Sensitivity curves of an ONNX model (see ../sensitivity.ts): each dependency group pruned
 * alone; the activations entering the part of the graph it affects are cached once, so each
 * variant runs only the subgraph downstream of the group's first node, in ONNX Runtime.
 */
export async function onnxSensitivity(input: Model, opts: SensitivityOptions): Promise<SensitivityResult> {
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
  const metric = chooseMetric(opts, ref, labels);
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
