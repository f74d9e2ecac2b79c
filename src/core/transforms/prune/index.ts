import { analyzeModel } from '../../analysis/analyze';
import { UsageError } from '../../errors';
import { DataType } from '../../ir/dtype';
import type { Model, ModelFormat } from '../../ir/graph';
import { cloneModel } from '../graph-edit';
import { constantResolver } from '../quantize/registry';
import { onFoldedWeights } from '../quantize/fold';
import { applyPruning, type GroupPlan } from './onnx/apply';
import { removeCount, stepRemoveCount } from './shrink';
import { buildDependencyGraph, type Group } from './onnx/dependency';
import { groupImportance } from './importance';
import { pruneKeras } from './tfjs-layers';
import { reconstruct, type ReconstructReport } from './onnx/reconstruct';
import { pushAll } from '../../util/arrays';
import { cumulativeRatio, cumulativeTarget } from './schedule';

/**
 * Pruning policy: which channels go (structured) or which weights become zero
 * (unstructured). Structure lives in dependency.ts, scoring in importance.ts; this file
 * plans, checks and applies, step by step.
 */

export type { PruneOptions, PrunedGroup, PruneOutcome } from './types';
import type { PruneOptions, PrunedGroup, PruneOutcome } from './types';

export function groupName(g: Group): string {
  const p = g.members.find((m) => m.kind === 'producer');
  return p ? p.node.label : `group ${g.id}`;
}

/** The one place pruning picks its code by format. */
const PRUNERS: Partial<Record<ModelFormat, (model: Model, opts: PruneOptions) => Promise<PruneOutcome>>> = {
  onnx: pruneOnnx,
  'tfjs-layers': pruneKeras,
};

/** Structured or unstructured pruning of a copy of `model` (see PruneOptions). Throws UsageError for formats without a pruner. */
export async function pruneModel(model: Model, opts: PruneOptions): Promise<PruneOutcome> {
  const impl = PRUNERS[model.format];
  if (!impl) throw new UsageError(`pruning works on ONNX and TF.js layers models, not ${model.format}`);
  return impl(model, opts);
}

async function pruneOnnx(model: Model, opts: PruneOptions): Promise<PruneOutcome> {
  const folded = await onFoldedWeights(model, (m) => pruneModel(m, opts), (r) => r.notes);
  if (folded) return folded;
  if (opts.structured && opts.criterion === 'bn' && !model.graph.nodes.some((n) => n.opType === 'BatchNormalization')) {
    throw new UsageError("--criterion bn scores channels by BatchNormalization scales, and this model has no BatchNormalization (exporters often fold it into the convolutions); use l1 or l2");
  }
  return opts.structured ? pruneStructured(model, opts) : pruneUnstructured(model, opts);
}

/**
 * A group whose producer or consumer weight is also read by another layer (tied or reused
 * weights) is left alone: pruning it would untie the copies or change the other layer.
 */
function sharedWeightOf(model: Model, g: Group): string | undefined {
  for (const m of g.members) {
    if (m.kind !== 'producer' && m.kind !== 'consumer') continue;
    const w = m.node.inputs[1];
    const readers = model.graph.nodes.filter((n) => n.inputs.includes(w));
    if (readers.length > 1) return `its weight '${w}' is shared by ${readers.length} layers (${readers.map((r) => r.label).slice(0, 3).join(', ')}); pruning would untie them`;
  }
  return undefined;
}

// ---- structured -----------------------------------------------------------------------

async function pruneStructured(model: Model, opts: PruneOptions): Promise<PruneOutcome> {
  const modes = [opts.ratio, opts.targetMacs, opts.targetParams, opts.groupRatios].filter((x) => x !== undefined).length;
  if (modes !== 1) throw new UsageError('structured pruning needs exactly one of a ratio, a MACs target, a params target or per-group ratios');
  const steps = Math.max(1, Math.floor(opts.steps ?? 1));
  if (opts.groupRatios && steps > 1) throw new UsageError('per-group ratios run in one step');
  if (opts.recover === 'reconstruct' && !opts.calib) throw new UsageError('--recover reconstruct needs calibration data (--calib)');
  const criterion = opts.criterion ?? 'l1';
  const base = analyzeModel(model).totals;
  let current = model;
  const skipped = new Map<string, string>();
  const reconstruction: ReconstructReport[] = [];
  let lastPlans: GroupPlan[] = [];
  let lastBefore = model;
  /** For layers whose output channels were pruned: current channel index → original index. */
  const originalIndex = new Map<string, number[]>();
  /** Each group's channel count when first seen (before step 1), by group name. */
  const firstSize = new Map<string, number>();
  for (let step = 1; step <= steps; step++) {
    opts.onProgress?.(`step ${step}/${steps}: planning`, (step - 1) / steps);
    const dg = buildDependencyGraph(current);
    const candidates: Group[] = [];
    for (const g of dg.groups) {
      const name = groupName(g);
      const tied = sharedWeightOf(current, g);
      if (g.unsafe) skipped.set(name, g.unsafe);
      else if (tied) skipped.set(name, tied);
      else if (opts.exclude?.includes(name)) skipped.set(name, 'excluded');
      else if (g.size < 2) skipped.set(name, 'a single channel cannot be pruned');
      else candidates.push(g);
    }
    const scores = await groupImportance(current, candidates, criterion, { calib: opts.calib, seed: (opts.seed ?? 0) + step, signal: opts.signal, labels: opts.calibLabels, reference: model });
    const usable = candidates.filter((g) => {
      const s = scores.get(g);
      if (typeof s === 'string') skipped.set(groupName(g), s);
      return typeof s !== 'string';
    });
    const roundTo = Math.max(1, Math.floor(opts.roundTo ?? 8));
    for (const g of usable) if (!firstSize.has(groupName(g))) firstSize.set(groupName(g), g.size);
    const planWith = (countOf: (g: Group) => number): GroupPlan[] =>
      usable.map((g) => {
        const s = scores.get(g) as Float64Array;
        const n = countOf(g);
        const order = [...s.keys()].sort((a, b) => s[a] - s[b] || a - b);
        return { group: g, remove: order.slice(0, Math.max(0, n)).sort((a, b) => a - b) };
      });
    const planFor = (ratioOf: (g: Group) => number): GroupPlan[] => planWith((g) => removeCount(g.size, ratioOf(g), roundTo));
    let plans: GroupPlan[];
    if (opts.groupRatios) plans = planFor((g) => opts.groupRatios![groupName(g)] ?? 0);
    else if (opts.ratio !== undefined) {
      // The cumulative target of this step, counted (and rounded) on each group's size before
      // step 1: an increment on already-rounded counts would stop short of the final ratio.
      const cumulative = cumulativeRatio(opts.ratio, step, steps, opts.schedule);
      plans = planWith((g) => stepRemoveCount(firstSize.get(groupName(g)) ?? g.size, g.size, cumulative, roundTo));
    } else {
      const key = opts.targetMacs !== undefined ? 'macs' : 'params';
      const target = (opts.targetMacs ?? opts.targetParams)!;
      const goal = base[key] * (1 - cumulativeTarget(target, step, steps, opts.schedule));
      const measure = (r: number) => analyzeModel(applyPruning(current, planFor(() => r))).totals[key];
      let lo = 0;
      let hi = 0.95;
      if (measure(hi) > goal) {
        plans = planFor(() => hi);
      } else {
        for (let it = 0; it < 14; it++) {
          const mid = (lo + hi) / 2;
          if (measure(mid) > goal) lo = mid;
          else hi = mid;
        }
        plans = planFor(() => hi);
      }
    }
    opts.onProgress?.(`step ${step}/${steps}: pruning`, (step - 0.5) / steps);
    const pruned = applyPruning(current, plans);
    if (opts.recover === 'reconstruct') {
      opts.onProgress?.(`step ${step}/${steps}: reconstructing`, (step - 0.3) / steps);
      const { layers, kept } = refitTargets(plans);
      for (const [name, k] of kept) {
        const prev = originalIndex.get(name);
        originalIndex.set(name, k.map((c) => (prev ? prev[c] : c)));
      }
      pushAll(reconstruction, await reconstruct(model, pruned, layers, { calib: opts.calib!, signal: opts.signal }, originalIndex));
    }
    lastPlans = plans;
    lastBefore = current;
    current = opts.recoveryHook ? await opts.recoveryHook(pruned, model, step) : pruned;
  }
  const groups = groupSavings(lastBefore, lastPlans);
  const notes = [`criterion: ${criterion}${steps > 1 ? `, ${steps} steps` : ''}, recovery: ${opts.recover ?? 'none'}`];
  if (steps > 1) notes.push('per-group figures are for the last step; totals compare with the original');
  return { model: current, groups, skipped: [...skipped].map(([name, reason]) => ({ name, reason })), reconstruction, notes };
}

/** Consumers of pruned channels get refitted; producers whose outputs shrank keep only their channels. */
function refitTargets(plans: GroupPlan[]): { layers: string[]; kept: Map<string, number[]> } {
  const layers = new Set<string>();
  const kept = new Map<string, number[]>();
  for (const { group, remove } of plans) {
    if (!remove.length) continue;
    const removed = new Set(remove);
    for (const m of group.members) {
      if (m.kind === 'consumer') layers.add(m.node.outputs[0]);
      if (m.kind === 'producer') kept.set(m.node.outputs[0], [...Array(group.size).keys()].filter((c) => !removed.has(c)));
    }
  }
  return { layers: [...layers], kept };
}

function groupSavings(model: Model, plans: GroupPlan[]): PrunedGroup[] {
  const before = analyzeModel(model).totals;
  return plans
    .filter((p) => p.remove.length)
    .map((p) => {
      const after = analyzeModel(applyPruning(model, [p])).totals;
      return {
        name: groupName(p.group),
        producers: p.group.members.filter((m) => m.kind === 'producer').map((m) => m.node.label),
        channels: p.group.size,
        removed: p.remove.length,
        paramsSaved: before.params - after.params,
        macsSaved: before.macs - after.macs,
      };
    });
}

// ---- unstructured ---------------------------------------------------------------------

const WEIGHT_OPS = new Set(['Conv', 'ConvTranspose', 'Gemm', 'MatMul']);

async function pruneUnstructured(model: Model, opts: PruneOptions): Promise<PruneOutcome> {
  if ((opts.ratio === undefined) === (opts.threshold === undefined)) throw new UsageError('unstructured pruning needs exactly one of --ratio or --threshold');
  if (opts.targetMacs !== undefined || opts.targetParams !== undefined) throw new UsageError('unstructured pruning removes no MACs or params from dense tensors; use --ratio or --threshold');
  const out = cloneModel(model);
  const g = out.graph;
  const constOf = constantResolver(g);
  const weights = new Map<string, Float32Array>();
  for (const n of g.nodes) {
    if (!WEIGHT_OPS.has(n.opType) || n.domain) continue;
    const name = n.inputs[1];
    const t = g.initializers.get(name) ?? undefined;
    if (!t || constOf(name) !== t || t.dtype !== DataType.FLOAT || t.dims.length < 2 || opts.exclude?.includes(n.label)) continue;
    weights.set(name, t.toFloat32());
  }
  const thresholds = new Map<string, number>();
  if (opts.threshold !== undefined) for (const k of weights.keys()) thresholds.set(k, opts.threshold);
  else if ((opts.scope ?? 'layer') === 'global') {
    const all = new Float32Array([...weights.values()].reduce((a, w) => a + w.length, 0));
    let o = 0;
    for (const w of weights.values()) for (const v of w) all[o++] = Math.abs(v);
    all.sort();
    const t = all[Math.min(all.length - 1, Math.floor(all.length * opts.ratio!))] ?? 0;
    for (const k of weights.keys()) thresholds.set(k, t);
  } else {
    for (const [k, w] of weights) {
      const a = Float32Array.from(w, Math.abs).sort();
      thresholds.set(k, a[Math.min(a.length - 1, Math.floor(a.length * opts.ratio!))] ?? 0);
    }
  }
  const sparsity: NonNullable<PruneOutcome['sparsity']> = [];
  for (const [name, w] of weights) {
    const t = thresholds.get(name)!;
    const z = new Float32Array(w);
    let zeros = 0;
    for (let i = 0; i < z.length; i++) {
      if (Math.abs(z[i]) < t) z[i] = 0;
      if (z[i] === 0) zeros++;
    }
    const orig = g.initializers.get(name)!;
    const copy = Object.assign(Object.create(Object.getPrototypeOf(orig)), orig);
    copy.setData(DataType.FLOAT, [...orig.dims], z);
    g.initializers.set(name, copy);
    sparsity.push({ name, elements: z.length, zeros, sparsity: zeros / z.length });
  }
  return {
    model: out,
    groups: [],
    skipped: [],
    reconstruction: [],
    sparsity,
    notes: [
      `unstructured magnitude pruning (${opts.threshold !== undefined ? `|w| < ${opts.threshold}` : `${opts.scope ?? 'layer'} ratio ${opts.ratio}`})`,
      'dense runtimes (ONNX Runtime on CPU included) gain no speed from zeros: the file zips smaller, the compute is the same; use structured pruning for speed',
    ],
  };
}

/**
 * Prunes until the measured latency falls by `fraction` (e.g. 0.3 = 30% faster): bisection
 * on the MACs target, each candidate benchmarked against the original, interleaved, in ORT.
 */
export async function pruneToLatency(
  model: Model,
  modelPath: string,
  fraction: number,
  opts: Omit<PruneOptions, 'ratio' | 'targetMacs' | 'targetParams' | 'groupRatios'> & {
    runs?: number;
    workDir: string;
    /**
     * How a candidate's latency is measured, as its p50 over the original's (dimensionless). Default: an
     * interleaved ONNX Runtime benchmark of the saved candidate against `modelPath`. Tests inject a
     * deterministic model of latency here, since a timing is never asserted.
     */
    measureRatio?: (candidate: Model, file: string) => Promise<number>;
  },
): Promise<PruneOutcome & { latencyRatio: number; macsTarget: number }> {
  const { benchmarkModels } = await import('../../runtime/bench');
  const { saveModel } = await import('../../formats/registry');
  const path = await import('path');
  const fs = await import('fs');
  const goal = 1 - fraction;
  let lo = 0;
  let hi = 0.9;
  let best: (PruneOutcome & { latencyRatio: number; macsTarget: number }) | undefined;
  for (let it = 0; it < 6; it++) {
    const t = it === 0 ? Math.min(0.9, fraction) : (lo + hi) / 2;
    opts.onProgress?.(`latency search: trying ${(t * 100).toFixed(0)}% of MACs`, it / 6);
    const r = await pruneModel(model, { ...opts, structured: true, targetMacs: t });
    const file = path.join(opts.workDir, `latency-candidate-${it}.onnx`);
    saveModel(r.model, file);
    let ratio: number;
    try {
      ratio = opts.measureRatio
        ? await opts.measureRatio(r.model, file)
        : (await benchmarkModels([modelPath, file], { runs: opts.runs ?? 30, warmup: 5, signal: opts.signal })).models[1].ratioP50;
    } finally {
      fs.rmSync(file, { force: true });
    }
    if (ratio <= goal) {
      if (!best || t < best.macsTarget) best = { ...r, latencyRatio: ratio, macsTarget: t };
      hi = t;
    } else lo = t;
    if (hi - lo < 0.02) break;
  }
  if (!best) throw new UsageError(`no pruning up to 90% of MACs made the model ${(fraction * 100).toFixed(0)}% faster on this machine`);
  best.notes.push(`latency target: p50 ${(best.latencyRatio * 100).toFixed(1)}% of the original after removing ${(best.macsTarget * 100).toFixed(1)}% of MACs (measured, interleaved)`);
  return best;
}
