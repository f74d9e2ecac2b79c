import { analyzeModel } from '../../analysis/analyze';
import { UsageError } from '../../errors';
import { DataType } from '../../ir/dtype';
import type { Dim, Model, Node } from '../../ir/graph';
import { inferShapes } from '../../ir/shape-inference';

/**
 * Where a network can be cut for an early exit, and what each part costs.
 *
 * A tensor `t` produced by the i-th node of the main graph's topological order is a *cut*
 * when nothing else computed up to node i (and no graph input) is read after node i: the rest
 * of the network then depends on the prefix through `t` alone, so a sample leaving at `t`
 * has paid exactly the prefix's MACs. Stage boundaries of plain and residual CNNs (after a
 * block's Add/Relu, after a pooling) are cuts; a tensor inside a residual block is not.
 */

export interface ExitPoint {
  /** The tensor the exit head reads. */
  tensor: string;
  /** Its shape: [N, C, H, W] (a feature map) or [N, F] (features). */
  shape: Dim[];
  /** Position of its producer in `order` (the main graph's topological order). */
  position: number;
  /** MACs per sample of the backbone up to and including this tensor. */
  macs: number;
  /** `macs` over the whole model's MACs. */
  fraction: number;
}

export interface CutAnalysis {
  order: Node[];
  /** MACs per sample of each node of `order` (unknown counts as 0, and `partial` says so). */
  nodeMacs: number[];
  totalMacs: number;
  partial: boolean;
  /** Every cut tensor of rank 2 or 4 (float), in topological order. */
  candidates: ExitPoint[];
}

/** Finds the cut tensors of the main graph and the cumulative MACs at each (per sample). */
export function analyzeCuts(model: Model): CutAnalysis {
  const g = model.graph;
  const order = g.topoOrder();
  const analysis = analyzeModel(model);
  const mainLayers = analysis.layers.filter((l) => !l.scope);
  const nodeMacs = order.map((_, i) => mainLayers[i]?.macs ?? 0);
  const partial = analysis.totals.unknownMacsNodes > 0;
  const totalMacs = nodeMacs.reduce((a, b) => a + b, 0);
  const shapes = inferShapes(model).types;
  const { consumers } = g.index();
  const pos = new Map<Node, number>(order.map((n, i) => [n, i]));
  const outputs = new Set(g.outputs.map((o) => o.name));
  const lastUse = (v: string): number => {
    if (outputs.has(v)) return Infinity;
    let last = -1;
    for (const c of consumers.get(v) ?? []) last = Math.max(last, pos.get(c) ?? Infinity);
    return last;
  };
  // Graph inputs (not initializers) read late break every cut before their last reader.
  let prefixMax = -1;
  for (const i of g.inputs) if (!g.initializers.has(i.name)) prefixMax = Math.max(prefixMax, lastUse(i.name));
  const candidates: ExitPoint[] = [];
  let cum = 0;
  for (let i = 0; i < order.length; i++) {
    const n = order[i];
    cum += nodeMacs[i];
    const outs = n.outputs.filter(Boolean);
    for (const t of outs) {
      const others = outs.filter((o) => o !== t).map(lastUse);
      const before = Math.max(prefixMax, ...others);
      const type = shapes.get(t);
      const shape = type?.shape;
      if (before <= i && !outputs.has(t) && type?.dtype === DataType.FLOAT && shape && (shape.length === 4 || shape.length === 2) && lastUse(t) > i) {
        candidates.push({ tensor: t, shape, position: i, macs: cum, fraction: totalMacs > 0 ? cum / totalMacs : 0 });
      }
    }
    for (const t of outs) prefixMax = Math.max(prefixMax, lastUse(t));
  }
  return { order, nodeMacs, totalMacs, partial, candidates };
}

/**
 * Chooses exit points. `'auto'`: for each of `targets` (fractions of the total MACs, default
 * 25/50/75%), the nearest unused cut, after merging cuts that cost the same (within 1% of the
 * total, keeping the later, smaller one) and dropping cuts past 95% of the MACs. Named tensors
 * must be cuts; the error says which tensors are.
 */
export function chooseExits(cuts: CutAnalysis, exits: 'auto' | string[], targets = [0.25, 0.5, 0.75]): ExitPoint[] {
  if (exits !== 'auto') {
    const chosen = exits.map((name) => {
      const c = cuts.candidates.find((x) => x.tensor === name);
      if (!c) {
        const some = cuts.candidates.map((x) => x.tensor).slice(0, 8);
        throw new UsageError(`'${name}' cannot be an exit: an exit must be a float [N, C, H, W] or [N, F] tensor that the rest of the network reads alone (a stage boundary)${some.length ? `; candidates: ${some.join(', ')}` : ''}`);
      }
      return c;
    });
    return [...new Set(chosen)].sort((a, b) => a.position - b.position);
  }
  const merged: ExitPoint[] = [];
  for (const c of cuts.candidates) {
    if (c.fraction > 0.95 || c.fraction <= 0) continue;
    const last = merged[merged.length - 1];
    if (last && c.fraction - last.fraction < 0.01) merged[merged.length - 1] = c;
    else merged.push(c);
  }
  if (!merged.length) throw new UsageError('the model has no stage boundary for an early exit (a float [N, C, H, W] or [N, F] tensor that the rest of the network reads alone, before 95% of its MACs)');
  const used = new Set<ExitPoint>();
  for (const t of targets) {
    let best: ExitPoint | undefined;
    for (const c of merged) if (!used.has(c) && (!best || Math.abs(c.fraction - t) < Math.abs(best.fraction - t))) best = c;
    if (best) used.add(best);
  }
  return [...used].sort((a, b) => a.position - b.position);
}
