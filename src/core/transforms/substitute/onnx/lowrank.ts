import { DataType } from '../../../ir/dtype';
import type { Model, Node } from '../../../ir/graph';
import { inferShapes } from '../../../ir/shape-inference';
import { captureActivations } from '../../../runtime/capture';
import { hostValues } from '../../../runtime/compare';
import type { Dataset } from '../../../runtime/data/dataset';
import { GraphEditor, cloneModel } from '../../graph-edit';
import { denseWeight } from '../../dense';
import { onFoldedWeights } from '../../quantize/fold';
import { constantResolver, weightKey } from '../../quantize/registry';
import { GramAccumulator, Matrix, cholesky, fromRows, solveUpperFromLowerT, svd, toFloat32 } from '../linalg';
import type { LayerSubstitution, SubstituteSkip } from '../types';

/**
 * Low-rank factorisation of dense layers: W (I×O) ≈ A (I×r) · B (r×O), written as two
 * MatMuls (plus the bias).
 *
 * plain:       truncated SVD of W.
 * data-aware:  whitened by the input covariance Σ = XᵀX from calibration data
 *              (Σ = L·Lᵀ): truncate the SVD of LᵀW, then A = L⁻ᵀ·U_r·√S. This minimises
 *              the output error ‖XW − XAB‖ rather than the weight error, so it keeps more
 *              fidelity at the same rank.
 * The rank comes from `rank`, an energy fraction of the (whitened) singular values, or a
 * params target per layer.
 */

export interface LowRankOptions {
  rank?: number;
  energy?: number;
  /** Fraction of each layer's weight params to keep, e.g. 0.5. */
  targetParams?: number;
  /** Use plain SVD even when calibration data is given. */
  plain?: boolean;
  layers?: string[];
  maxError?: number;
  calib?: Dataset;
  batchSize?: number;
  signal?: AbortSignal;
}

interface Candidate {
  node: Node;
  /** Every layer that reads this weight (a shared weight is factorised once, for all of them). */
  nodes: Node[];
  w: Float32Array; // I × O
  i: number;
  o: number;
  bias?: Float32Array;
  report: LayerSubstitution;
  a?: Float32Array;
  b?: Float32Array;
}

export async function substituteLowRankOnnx(model: Model, opts: LowRankOptions = {}): Promise<{ model: Model; layers: LayerSubstitution[]; skipped: SubstituteSkip[] }> {
  const folded = await onFoldedWeights(model, (m) => substituteLowRankOnnx(m, opts));
  if (folded) return folded;
  const g = model.graph;
  const constOf = constantResolver(g);
  const shapes = inferShapes(model).types;
  const want = opts.layers ? new Set(opts.layers) : undefined;
  const skipped: SubstituteSkip[] = [];
  const cands: Candidate[] = [];
  const byWeight = new Map<string, Candidate>();
  for (const n of g.nodes) {
    if ((n.opType !== 'Gemm' && n.opType !== 'MatMul') || n.domain) continue;
    const skip = (reason: string) => skipped.push({ name: n.label, op: n.opType, reason });
    if (want && !want.has(n.name) && !want.has(n.label)) {
      skip('not in --layers');
      continue;
    }
    const dense = denseWeight(n, constOf);
    if (typeof dense === 'string') {
      skip(dense);
      continue;
    }
    const { w, i, o, bias } = dense;
    const rows = shapes.get(n.outputs[0])?.shape;
    const perSample = rows ? rows.slice(0, -1).reduce<number>((a, d) => a * (typeof d === 'number' ? d : 1), 1) : 1;
    const key = `${weightKey(n)}|${n.opType === 'Gemm' ? n.inputs[2] ?? '' : ''}`;
    const same = byWeight.get(key);
    if (same) {
      same.nodes.push(n);
      same.report.macsBefore = (same.report.macsBefore ?? 0) + perSample * i * o;
      same.report.name = `${same.node.label} (weight shared by ${same.nodes.length} layers)`;
      continue;
    }
    const c: Candidate = {
      node: n, nodes: [n], w, i, o, bias,
      report: { name: n.label, kind: 'lowrank', detail: '', paramsBefore: i * o + (bias ? o : 0), paramsAfter: 0, macsBefore: perSample * i * o, macsAfter: null, errorInit: null, errorRefit: null },
    };
    byWeight.set(key, c);
    cands.push(c);
  }

  // Input covariance per layer, streamed over the calibration data.
  const cov = new Map<Candidate, GramAccumulator>();
  if (opts.calib && cands.length) {
    for (const c of cands) cov.set(c, new GramAccumulator(c.i, 0, false));
    const names = [...new Set(cands.flatMap((c) => c.nodes.map((n) => n.inputs[0])))];
    await captureActivations(model, names, opts.calib, { batchSize: opts.batchSize ?? 64, signal: opts.signal, session: { allowSpinning: false } }, ({ values }) => {
      for (const c of cands) {
        const acc = cov.get(c)!;
        // A shared weight's error is summed over every layer that reads it: Σ = Σ_k X_kᵀX_k.
        for (const n of c.nodes) {
          const x = hostValues(values[n.inputs[0]]);
          for (let r = 0; r * c.i < x.length; r++) acc.add(x, r * c.i, 1, undefined, 0, 0);
        }
      }
    });
  }

  // Spectra first (plain, and whitened when calibration data is given), then ranks.
  const spectra = cands.map((c) => {
    const wm = fromRows(c.w, c.i, c.o);
    const sigma = cov.get(c)?.gram();
    const plain = svd(wm);
    if (!sigma || opts.plain) return { wm, sigma, plain };
    const l = cholesky(sigma);
    return { wm, sigma, plain, l, white: svd(l.transpose().mmul(wm)) };
  });
  const ranks =
    opts.targetParams !== undefined && opts.rank === undefined
      ? allocateRanks(cands.map((c, k) => ({ i: c.i, o: c.o, s: (spectra[k].white ?? spectra[k].plain).s })), opts.targetParams)
      : cands.map((c, k) => chooseRank((spectra[k].white ?? spectra[k].plain).s, c.i, c.o, opts));

  const chosen: Candidate[] = [];
  cands.forEach((c, k) => {
    const { wm, sigma, plain, l, white } = spectra[k];
    const r = ranks[k];
    const params = c.i * r + r * c.o + (c.bias ? c.o : 0);
    if (r === 0 || c.i * r + r * c.o >= c.i * c.o) {
      skipped.push({
        name: c.report.name,
        op: c.node.opType,
        reason: r === 0 ? 'kept dense by the params allocation' : `rank ${r} would not save parameters: I·r + r·O = ${c.i * r + r * c.o} ≥ I·O = ${c.i * c.o}`,
      });
      return;
    }
    const [aPlain, bPlain] = factors(plain, r);
    let a = aPlain;
    let b = bPlain;
    if (white && l) {
      const [aw, bw] = factors(white, r);
      a = solveUpperFromLowerT(l, aw); // A = L⁻ᵀ · U_r · √S
      b = bw;
    }
    if (sigma) {
      c.report.errorInit = outputError(sigma, wm, aPlain.mmul(bPlain));
      c.report.errorRefit = white ? outputError(sigma, wm, a.mmul(b)) : c.report.errorInit;
    }
    const err = c.report.errorRefit;
    if (opts.maxError !== undefined && err !== null && err > opts.maxError) {
      skipped.push({ name: c.report.name, op: c.node.opType, reason: `relative output error ${err.toFixed(4)} exceeds --max-error ${opts.maxError}` });
      return;
    }
    c.a = toFloat32(a);
    c.b = toFloat32(b);
    c.report.detail = `rank ${r}${white ? ' (whitened)' : ' (plain SVD)'}`;
    c.report.paramsAfter = params;
    c.report.macsAfter = c.report.macsBefore === null ? null : (c.report.macsBefore / (c.i * c.o)) * (c.i * r + r * c.o);
    chosen.push(c);
  });
  return { model: build(model, chosen), layers: chosen.map((c) => c.report), skipped };
}

/**
 * Global rank allocation for a params budget (a fraction of all candidates' weights):
 * greedily add the rank-one component that buys the most of its layer's (normalised)
 * spectral energy per parameter; a layer whose rank passes break-even stays dense
 * (returned as rank 0, costing its full I·O).
 */
export function allocateRanks(layers: Array<{ i: number; o: number; s: number[] }>, fraction: number): number[] {
  const budget = fraction * layers.reduce((a, l) => a + l.i * l.o, 0);
  const ranks = layers.map(() => 0);
  const dense = layers.map(() => false);
  const totals = layers.map((l) => l.s.reduce((a, v) => a + v * v, 0) || 1);
  const cost = () => layers.reduce((a, l, k) => a + (dense[k] ? l.i * l.o : ranks[k] * (l.i + l.o)), 0);
  for (;;) {
    let best = -1;
    let bestValue = 0;
    layers.forEach((l, k) => {
      if (dense[k] || ranks[k] >= l.s.length) return;
      const value = (l.s[ranks[k]] ** 2 / totals[k]) / (l.i + l.o);
      if (value > bestValue) {
        bestValue = value;
        best = k;
      }
    });
    if (best < 0) break;
    const l = layers[best];
    ranks[best]++;
    if (ranks[best] * (l.i + l.o) >= l.i * l.o) dense[best] = true;
    if (cost() > budget) {
      if (dense[best]) dense[best] = false;
      ranks[best]--;
      break;
    }
  }
  return ranks.map((r, k) => (dense[k] ? 0 : r));
}

function chooseRank(s: number[], i: number, o: number, opts: LowRankOptions): number {
  const max = Math.min(i, o);
  if (opts.rank !== undefined) return Math.max(1, Math.min(max, Math.floor(opts.rank)));
  if (opts.targetParams !== undefined) return Math.max(1, Math.min(max, Math.floor((opts.targetParams * i * o) / (i + o))));
  const energy = opts.energy ?? 0.9;
  const total = s.reduce((a, v) => a + v * v, 0);
  let acc = 0;
  for (let r = 0; r < s.length; r++) {
    acc += s[r] * s[r];
    if (acc >= energy * total) return r + 1;
  }
  return max;
}

/** A = U_r·√S (I×r), B = √S·V_rᵀ (r×O). */
function factors(d: ReturnType<typeof svd>, r: number): [Matrix, Matrix] {
  const a = new Matrix(d.u.rows, r);
  const b = new Matrix(r, d.v.rows);
  for (let k = 0; k < r; k++) {
    const sq = Math.sqrt(d.s[k] ?? 0);
    for (let row = 0; row < d.u.rows; row++) a.set(row, k, d.u.get(row, k) * sq);
    for (let col = 0; col < d.v.rows; col++) b.set(k, col, d.v.get(col, k) * sq);
  }
  return [a, b];
}

/** ‖X(W − W')‖ / ‖XW‖ from Σ = XᵀX. */
function outputError(sigma: Matrix, w: Matrix, approx: Matrix): number {
  const diff = w.clone().sub(approx);
  const num = diff.transpose().mmul(sigma).mmul(diff);
  const den = w.transpose().mmul(sigma).mmul(w);
  let tn = 0;
  let td = 0;
  for (let k = 0; k < num.rows; k++) {
    tn += num.get(k, k);
    td += den.get(k, k);
  }
  return td > 0 ? Math.sqrt(Math.max(0, tn) / td) : 0;
}

function build(model: Model, chosen: Candidate[]): Model {
  const out = cloneModel(model);
  const g = out.graph;
  const ed = new GraphEditor(g);
  const byOutputs = new Map(chosen.flatMap((c) => c.nodes.map((n) => [n.outputs.join('|'), c] as const)));
  const replaced = new Map<Node, Node[]>();
  const factorsOf = new Map<Candidate, { a: string; b: string; bias?: string }>();
  for (const n of g.nodes) {
    const c = byOutputs.get(n.outputs.join('|'));
    if (!c || !c.a || !c.b) continue;
    const r = c.a.length / c.i;
    const base = (n.name || n.outputs[0]).replace(/[^\w.:/-]/g, '_');
    let f = factorsOf.get(c);
    if (!f) {
      f = {
        a: ed.initializer(`${base}_lowrank_a`, DataType.FLOAT, [c.i, r], c.a),
        b: ed.initializer(`${base}_lowrank_b`, DataType.FLOAT, [r, c.o], c.b),
        bias: c.bias ? ed.initializer(`${base}_bias`, DataType.FLOAT, [c.o], c.bias) : undefined,
      };
      factorsOf.set(c, f);
    }
    const m1 = ed.node('MatMul', [n.inputs[0], f.a], [`${base}_lowrank_hidden`]);
    m1.name = `${n.name || base}_lowrank_a`;
    const m2 = ed.node('MatMul', [m1.outputs[0], f.b], [`${base}_lowrank_out`]);
    m2.name = `${n.name || base}_lowrank_b`;
    const nodes = [m1, m2];
    if (f.bias) {
      const add = ed.node('Add', [m2.outputs[0], f.bias], [`${base}_biased`]);
      add.name = `${n.name || base}_bias`;
      nodes.push(add);
    }
    nodes[nodes.length - 1].outputs = [...n.outputs];
    replaced.set(n, nodes);
  }
  g.nodes = g.nodes.flatMap((n) => replaced.get(n) ?? [n]);
  ed.dropUnusedInitializers();
  ed.sort();
  return out;
}
