/**
 * Exit thresholds. Each exit k has a confidence per sample (the max softmax probability,
 * or 1 − H(p)/log K for `entropy`, both in [0, 1]) and a threshold t_k: a sample leaves at the
 * first exit whose confidence is strictly above its threshold, else at the final output.
 * An exit with t_k = +∞ is off (and the export leaves it out). Calibration finds thresholds
 * that meet a quality target at the least expected MACs (coordinate descent over the observed
 * confidences; deterministic).
 *
 * Safety margin: thresholds fitted to n held-out samples meet the target on those samples
 * but not necessarily on new ones. With `z` > 0 the target must hold for a one-sided
 * confidence bound instead of the observed score. A policy changes the prediction's
 * correctness on `lost` samples (the original right, the policy wrong) and `gained` ones (the
 * reverse); the accuracy drop is (lost − gained)/n and its bound, from the normal
 * approximation of the paired difference (McNemar 1947), is (lost − gained + z·√(lost +
 * gained))/n. Agreement is the same with the original's top-1 as the reference (gained = 0).
 * The out-of-sample figure (`crossValidate`) is a k-fold cross-fit of the whole calibration:
 * each fold is measured with thresholds calibrated on the other folds only.
 */

export type ExitScore = 'max-prob' | 'entropy';

/** Per-sample outcomes of every exit and of the final output, on one data set. */
export interface ExitObservations {
  /** conf[k][i]: exit k's confidence on sample i. */
  conf: Float64Array[];
  /** pred[k][i]: exit k's top-1 class on sample i. */
  pred: Int32Array[];
  /** The final output's top-1 class per sample. */
  finalPred: Int32Array;
  /** The original model's top-1 per sample (default `finalPred`: the backbone stayed frozen). */
  originalPred?: Int32Array;
  /** What a prediction is judged against: labels, or the original model's top-1 (agreement). */
  reference: Int32Array;
  /** The original model's score against `reference` (accuracy with labels; 1 for agreement). */
  originalScore: number;
}

/** MACs per sample: backbone up to exit k (cumulative), each head's, and the whole backbone. */
export interface ExitCosts {
  backbone: number[];
  head: number[];
  total: number;
}

export type ExitTarget = { kind: 'max-accuracy-drop'; drop: number } | { kind: 'min-agreement'; agreement: number } | { kind: 'threshold'; threshold: number };

export interface PolicyOutcome {
  thresholds: number[];
  /** Fraction of samples leaving at each exit; the last entry is the final output. */
  fractions: number[];
  /** Score (accuracy or agreement) of the samples leaving at each exit (null when none do). */
  exitScore: Array<number | null>;
  /** MACs per sample paid by a sample leaving at each exit (last: the final output). */
  exitMacs: number[];
  score: number;
  expectedMacs: number;
  /** Samples the original gets right and the policy wrong, and the reverse (against `reference`). */
  lost: number;
  gained: number;
}

/** Softmax confidence of logits rows [N, K] (max probability or 1 − normalised entropy) and top-1. */
export function confidences(logits: Float32Array, n: number, classes: number, score: ExitScore): { conf: Float64Array; pred: Int32Array } {
  const conf = new Float64Array(n);
  const pred = new Int32Array(n);
  const logK = Math.log(classes);
  for (let i = 0; i < n; i++) {
    const row = logits.subarray(i * classes, (i + 1) * classes);
    let m = -Infinity;
    let arg = 0;
    for (let c = 0; c < classes; c++) {
      if (row[c] > m) {
        m = row[c];
        arg = c;
      }
    }
    let z = 0;
    for (let c = 0; c < classes; c++) z += Math.exp(row[c] - m);
    pred[i] = arg;
    if (score === 'max-prob') conf[i] = 1 / z;
    else {
      let h = 0;
      for (let c = 0; c < classes; c++) {
        const lp = row[c] - m - Math.log(z);
        h -= Math.exp(lp) * lp;
      }
      conf[i] = classes > 1 ? 1 - h / logK : 1;
    }
  }
  return { conf, pred };
}

/** The outcome of thresholds `t` on `obs` (see the module comment for the exit rule and costs). */
export function evaluatePolicy(obs: ExitObservations, costs: ExitCosts, t: number[], subset?: Int32Array): PolicyOutcome {
  const E = t.length;
  const idx = subset ?? Int32Array.from({ length: obs.reference.length }, (_, i) => i);
  const n = idx.length;
  const exitMacs: number[] = [];
  let heads = 0;
  for (let k = 0; k < E; k++) {
    if (Number.isFinite(t[k])) heads += costs.head[k];
    exitMacs.push(costs.backbone[k] + heads);
  }
  exitMacs.push(costs.total + heads);
  const count = new Array<number>(E + 1).fill(0);
  const right = new Array<number>(E + 1).fill(0);
  const original = obs.originalPred ?? obs.finalPred;
  let lost = 0;
  let gained = 0;
  for (const i of idx) {
    let k = 0;
    while (k < E && !(Number.isFinite(t[k]) && obs.conf[k][i] > t[k])) k++;
    const p = k < E ? obs.pred[k][i] : obs.finalPred[i];
    count[k]++;
    const ok = p === obs.reference[i];
    const was = original[i] === obs.reference[i];
    if (ok) right[k]++;
    if (was && !ok) lost++;
    else if (ok && !was) gained++;
  }
  const score = n ? right.reduce((a, b) => a + b, 0) / n : 0;
  const expectedMacs = n ? count.reduce((a, c, k) => a + c * exitMacs[k], 0) / n : costs.total;
  return {
    thresholds: t.slice(),
    fractions: count.map((c) => (n ? c / n : 0)),
    exitScore: count.map((c, k) => (c ? right[k] / c : null)),
    exitMacs,
    score,
    expectedMacs,
    lost,
    gained,
  };
}

/** Whether `r` (measured on `n` samples) meets `target` with the safety margin `z` (module comment). */
function meets(obs: ExitObservations, r: PolicyOutcome, n: number, target: ExitTarget, z: number): boolean {
  const bound = n ? (z * Math.sqrt(r.lost + r.gained)) / n : 0;
  if (target.kind === 'max-accuracy-drop') return obs.originalScore - r.score + bound <= target.drop + 1e-12;
  if (target.kind === 'min-agreement') return r.score - bound >= target.agreement - 1e-12;
  return true;
}

/**
 * Candidate thresholds of one exit: up to `limit` quantiles of its confidences, each halfway
 * between that confidence and the next lower one. The exported model compares float32
 * confidences with a float32 threshold, so a threshold just below a sample's confidence could
 * round onto it and flip that sample's exit; halfway keeps the policy and the export in step.
 */
function candidates(conf: Float64Array, limit = 96): number[] {
  const s = Float64Array.from(conf).sort();
  const out = new Set<number>();
  for (let q = 0; q < limit; q++) {
    let j = Math.min(s.length - 1, Math.floor((q / limit) * s.length));
    const v = s[j];
    while (j > 0 && s[j - 1] === v) j--;
    out.add(j > 0 ? (s[j - 1] + v) / 2 : Math.max(0, v - 1e-6));
  }
  return [...out].sort((a, b) => b - a);
}

/**
 * Thresholds meeting `target` at the least expected MACs on `obs` (or on the samples in
 * `subset`), with the safety margin `z` (default 0: the observed score; see the module
 * comment). `threshold` targets apply one threshold to every exit. With every exit off the
 * model is the original, the fallback when nothing meets the target.
 */
export function calibrateThresholds(obs: ExitObservations, costs: ExitCosts, target: ExitTarget, subset?: Int32Array, z = 0): PolicyOutcome {
  const E = obs.conf.length;
  if (target.kind === 'threshold') return evaluatePolicy(obs, costs, new Array<number>(E).fill(target.threshold), subset);
  const n = subset ? subset.length : obs.reference.length;
  let t = new Array<number>(E).fill(Infinity);
  let best = evaluatePolicy(obs, costs, t, subset);
  const cands = obs.conf.map((c) => candidates(subset ? Float64Array.from(subset, (i) => c[i]) : c));
  for (let pass = 0; pass < 6; pass++) {
    let improved = false;
    for (let k = 0; k < E; k++) {
      for (const c of [Infinity, ...cands[k]]) {
        if (c === t[k]) continue;
        const trial = t.slice();
        trial[k] = c;
        const r = evaluatePolicy(obs, costs, trial, subset);
        if (meets(obs, r, n, target, z) && r.expectedMacs < best.expectedMacs - 1e-9) {
          best = r;
          t = trial;
          improved = true;
        }
      }
    }
    if (!improved) break;
  }
  return best;
}

/** Accuracy (or agreement) against expected MACs for one shared threshold per point (the editor's curve). */
export function thresholdCurve(obs: ExitObservations, costs: ExitCosts, points = 41): Array<{ threshold: number; expectedMacs: number; score: number }> {
  const out: Array<{ threshold: number; expectedMacs: number; score: number }> = [];
  for (let p = 0; p < points; p++) {
    const threshold = p / (points - 1);
    const r = evaluatePolicy(obs, costs, new Array<number>(obs.conf.length).fill(threshold));
    out.push({ threshold, expectedMacs: r.expectedMacs, score: r.score });
  }
  return out;
}

/** The out-of-sample outcome of a calibration (see `crossValidate`). */
export interface CrossValidated {
  folds: number;
  /** Safety margin z used in every fold. */
  z: number;
  score: number;
  expectedMacs: number;
  /** Per exit (last: the final output): fraction of samples leaving there, their score, the mean MACs they paid. */
  fractions: number[];
  exitScore: Array<number | null>;
  exitMacs: Array<number | null>;
  lost: number;
  gained: number;
}

/**
 * k-fold cross-fit (Stone 1974): the samples are dealt into `folds` folds by a seeded
 * shuffle; each fold is measured with thresholds calibrated (margin `z`) on the other folds
 * only, and the per-sample outcomes are pooled. Every sample is thus judged by thresholds
 * that never saw it, which is the figure to expect on new data from the same distribution.
 */
export function crossValidate(obs: ExitObservations, costs: ExitCosts, target: ExitTarget, folds = 5, z = 0, seed = 1): CrossValidated {
  const n = obs.reference.length;
  const E = obs.conf.length;
  const k = Math.max(2, Math.min(folds, n));
  const order = Int32Array.from({ length: n }, (_, i) => i);
  let a = seed >>> 0 || 1;
  for (let i = n - 1; i > 0; i--) {
    a = (Math.imul(a, 1664525) + 1013904223) >>> 0;
    const j = a % (i + 1);
    [order[i], order[j]] = [order[j], order[i]];
  }
  const count = new Array<number>(E + 1).fill(0);
  const right = new Array<number>(E + 1).fill(0);
  const macs = new Array<number>(E + 1).fill(0);
  let lost = 0;
  let gained = 0;
  for (let f = 0; f < k; f++) {
    const held = Int32Array.from(order.filter((_, i) => i % k === f));
    const rest = Int32Array.from(order.filter((_, i) => i % k !== f));
    const t = calibrateThresholds(obs, costs, target, rest, z).thresholds;
    const r = evaluatePolicy(obs, costs, t, held);
    for (let e = 0; e <= E; e++) {
      const c = Math.round(r.fractions[e] * held.length);
      count[e] += c;
      right[e] += Math.round((r.exitScore[e] ?? 0) * c);
      macs[e] += c * r.exitMacs[e];
    }
    lost += r.lost;
    gained += r.gained;
  }
  const total = count.reduce((p, q) => p + q, 0);
  return {
    folds: k,
    z,
    score: total ? right.reduce((p, q) => p + q, 0) / total : 0,
    expectedMacs: total ? macs.reduce((p, q) => p + q, 0) / total : costs.total,
    fractions: count.map((c) => (total ? c / total : 0)),
    exitScore: count.map((c, e) => (c ? right[e] / c : null)),
    exitMacs: count.map((c, e) => (c ? macs[e] / c : null)),
    lost,
    gained,
  };
}
