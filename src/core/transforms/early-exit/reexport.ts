import { CancelledError, UsageError } from '../../errors';
import type { Model } from '../../ir/graph';
import type { Dataset } from '../../runtime/data/dataset';
import { ModelSession } from '../../runtime/session';
import { cloneModel } from '../graph-edit';
import { evaluatePolicy, thresholdCurve, type ExitCosts, type ExitObservations, type ExitScore, type PolicyOutcome } from './calibrate';
import { EXIT_INDEX_OUTPUT, exportIfModel } from './export';
import type { Head } from './heads';

/**
 * Re-export of an early-exit run at other thresholds, without training again and without
 * running the data again: the run keeps the model with its trained heads, every exit's
 * confidence and top-1 on the evaluation data (`ExitObservations`) and the MAC costs, so the
 * outcome of any thresholds is exact arithmetic on those observations (BranchyNet's exit rule,
 * Teerapittayanon et al. 2016: leave at the first exit whose confidence exceeds its
 * threshold), and the If model for them is one `exportIfModel` call.
 */

/** What an early-exit run keeps so that it can be re-exported. */
export interface ExitState {
  /** The input model (the backbone of the If export) and the model with every trained head. */
  original: Model;
  withHeads: Model;
  heads: Head[];
  obs: ExitObservations;
  costs: ExitCosts;
  score: ExitScore;
  classes: number;
  form: 'if' | 'multi-output';
  metric: 'accuracy' | 'agreement';
  /** The evaluation data the observations come from (re-exports are checked in ORT on it). */
  eval: Dataset;
  /** The thresholds the run calibrated (+∞: exit off). */
  calibrated: number[];
}

const states = new WeakMap<Model, ExitState>();

/** Attaches the re-export state to the model an early-exit run wrote (see `exitStateOf`). */
export function rememberExitState(written: Model, state: ExitState): void {
  states.set(written, state);
}

/**
 * The re-export state of a model written by `earlyExit` (the same object, as a recipe returns
 * it), or undefined for any other model. Kept beside the model, not in it, so reports and
 * files never carry it; it lives as long as the model object does.
 */
export function exitStateOf(model: Model): ExitState | undefined {
  return states.get(model);
}

/** One row per exit (in order) and the final output: fraction leaving, their score, MACs each paid. */
export interface ExitTable {
  thresholds: Array<number | null>;
  exits: Array<{ tensor: string; position: number; threshold: number | null; samples: number; score: number | null; macs: number }>;
  final: { samples: number; score: number | null; macs: number };
  /** Accuracy (or agreement) of the whole policy, and its expected MACs per sample. */
  score: number;
  expectedMacs: number;
  originalMacs: number;
  originalScore: number;
}

/**
 * Per-exit thresholds from a request: one number for every exit (the editor's slider), or one
 * per exit (null or +∞: off). Thresholds lie in [0, 1] (both confidence scores do).
 * Errors: UsageError for a wrong count or a value outside [0, 1].
 */
export function exitThresholds(state: ExitState, t: number | ReadonlyArray<number | null>): number[] {
  const E = state.heads.length;
  const list = typeof t === 'number' ? new Array<number>(E).fill(t) : t.map((x) => (x === null ? Infinity : x));
  if (list.length !== E) throw new UsageError(`this early-exit model has ${E} exits; got ${list.length} thresholds`);
  for (const x of list) if (x !== Infinity && !(Number.isFinite(x) && x >= 0 && x <= 1)) throw new UsageError(`an exit threshold is a confidence in [0, 1]; got ${x}`);
  return list;
}

function table(state: ExitState, p: PolicyOutcome): ExitTable {
  const E = state.heads.length;
  const th = p.thresholds.map((x) => (Number.isFinite(x) ? x : null));
  return {
    thresholds: th,
    exits: state.heads.map((h, k) => ({ tensor: h.exit.tensor, position: h.exit.fraction, threshold: th[k], samples: p.fractions[k], score: p.exitScore[k], macs: p.exitMacs[k] })),
    final: { samples: p.fractions[E], score: p.exitScore[E], macs: p.exitMacs[E] },
    score: p.score,
    expectedMacs: p.expectedMacs,
    originalMacs: state.costs.total,
    originalScore: state.obs.originalScore,
  };
}

/** The per-exit table of thresholds `t` on the run's evaluation data (pure; no model is run). */
export function exitTable(state: ExitState, t: number | ReadonlyArray<number | null>): ExitTable {
  return table(state, evaluatePolicy(state.obs, state.costs, exitThresholds(state, t)));
}

/** Accuracy (or agreement) against expected MACs over `points` shared thresholds in [0, 1] (pure). */
export function exitCurve(state: ExitState, points = 41): Array<{ threshold: number; expectedMacs: number; score: number }> {
  return thresholdCurve(state.obs, state.costs, points);
}

export interface Reexported {
  model: Model;
  table: ExitTable;
  /**
   * Measured in ORT at batch 1 on the first `samples` evaluation samples: the fraction leaving
   * at each exit (in order, 0 for exits that are off; the last entry is the final output) and
   * the score of the model's output against the run's reference.
   */
  measured: { samples: number; fractions: number[]; score: number };
}

/**
 * The early-exit model for thresholds `t` (see `exitThresholds`), in the run's form, with its
 * per-exit table; then the If model is run in ORT at batch 1 on up to `checkSamples`
 * evaluation samples (default 256): each sample must leave where the table's policy says
 * (a confidence within 1e-5 of a threshold may fall either way in float32). A clear mismatch
 * is this tool's bug (a plain Error). Nothing is written; save the model with `saveVerified`.
 */
export async function reexport(state: ExitState, t: number | ReadonlyArray<number | null>, opts: { checkSamples?: number; signal?: AbortSignal } = {}): Promise<Reexported> {
  const thresholds = exitThresholds(state, t);
  const policy = evaluatePolicy(state.obs, state.costs, thresholds);
  const on = thresholds.map((x) => Number.isFinite(x));
  let model: Model;
  if (state.form === 'if') {
    model = exportIfModel(
      state.original,
      state.withHeads,
      state.heads.filter((_, k) => on[k]),
      thresholds.filter((_, k) => on[k]),
      state.score,
      state.classes,
    );
  } else {
    model = cloneModel(state.withHeads);
    const meta = { exits: state.heads.map((h, k) => ({ tensor: h.exit.tensor, output: h.logits, threshold: on[k] ? thresholds[k] : null })), score: state.score };
    model.metadata = [...model.metadata.filter(([k]) => k !== 'early_exit'), ['early_exit', JSON.stringify(meta)]];
  }
  const measured = state.form === 'if' ? await measure(state, model, thresholds, opts) : { samples: 0, fractions: [], score: policy.score };
  rememberExitState(model, state);
  return { model, table: table(state, policy), measured };
}

async function measure(state: ExitState, model: Model, thresholds: number[], opts: { checkSamples?: number; signal?: AbortSignal }): Promise<Reexported['measured']> {
  const output = state.original.graph.outputs[0].name;
  const n = Math.min(opts.checkSamples ?? 256, state.eval.count);
  const E = thresholds.length;
  const enabled = thresholds.filter((x) => Number.isFinite(x)).length;
  const slot = [...thresholds.flatMap((x, k) => (Number.isFinite(x) ? [k] : [])), E];
  const count = new Array<number>(E + 1).fill(0);
  let right = 0;
  const s = await ModelSession.create(model, { allowSpinning: false }, '<re-exported early-exit model>');
  try {
    for (let i = 0; i < n; i++) {
      if (opts.signal?.aborted) throw new CancelledError();
      const out = await s.run(state.eval.batch(i, 1), [output, EXIT_INDEX_OUTPUT]);
      const got = Number((out[EXIT_INDEX_OUTPUT].data as BigInt64Array)[0]);
      let k = 0;
      while (k < E && !(Number.isFinite(thresholds[k]) && state.obs.conf[k][i] > thresholds[k])) k++;
      const want = thresholds.slice(0, k).filter((x) => Number.isFinite(x)).length;
      const margin = k < E ? Math.abs(state.obs.conf[k][i] - thresholds[k]) : Infinity;
      if (got !== want && margin > 1e-5) throw new Error(`early-exit re-export: sample ${i} left at exit ${got}, the thresholds say ${want}`);
      count[slot[Math.max(0, Math.min(enabled, got))]]++;
      const y = out[output].data as Float32Array;
      let arg = 0;
      for (let c = 1; c < state.classes; c++) if (y[c] > y[arg]) arg = c;
      if (arg === state.obs.reference[i]) right++;
    }
  } finally {
    await s.release();
  }
  return { samples: n, fractions: count.map((c) => (n ? c / n : 0)), score: n ? right / n : 0 };
}
