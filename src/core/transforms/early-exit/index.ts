import { CancelledError, UsageError } from '../../errors';
import type { Model } from '../../ir/graph';
import { inferShapes } from '../../ir/shape-inference';
import type { Dataset } from '../../runtime/data/dataset';
import { ModelSession, type HostTensor } from '../../runtime/session';
import { datasetSampleSet, fit, labelsTensor, withTeacher, type LossTerm } from '../../train';
import { fitSettings, secondsPerEpoch, type TrainSettings } from '../distill/common';
import { calibrateThresholds, confidences, crossValidate, thresholdCurve, type ExitCosts, type ExitObservations, type ExitScore, type ExitTarget, type PolicyOutcome } from './calibrate';
import { EXIT_INDEX_OUTPUT, exportIfModel } from './export';
import { addHeads, type Head } from './heads';
import { analyzeCuts, chooseExits } from './points';
import { rememberExitState } from './reexport';

export { analyzeCuts, chooseExits } from './points';
export { calibrateThresholds, crossValidate, evaluatePolicy, confidences, type CrossValidated, type ExitTarget, type ExitScore } from './calibrate';
export { EXIT_INDEX_OUTPUT } from './export';
export { exitStateOf, exitTable, exitCurve, exitThresholds, reexport, type ExitState, type ExitTable, type Reexported } from './reexport';

/**
 * Early exits (BranchyNet, Teerapittayanon et al. 2016): small classifier heads at stage
 * boundaries, trained by distillation from the model's own output (so unlabeled data is
 * enough), with confidence thresholds calibrated on held-out data to meet a quality target at
 * the least expected MACs, written as one ONNX model with nested `If`s (or as extra outputs).
 *
 * Shapes: the model has one output [N, K] (class scores); exits read [N, C, H, W] or [N, F].
 * Units: MACs are per sample; latency in ms per sample at batch 1.
 * Errors: UsageError for models or options that cannot take exits (no single class output,
 * no stage boundary, a named tensor that is not one, opset < 11).
 */
export interface EarlyExitOptions {
  /** Training data for the heads (model inputs), and optional labels. */
  train: Dataset;
  trainLabels?: Int32Array;
  /** Held-out data: thresholds are calibrated and the result is measured on it. */
  eval: Dataset;
  labels?: Int32Array;
  target: ExitTarget;
  /**
   * Safety margin z of the calibration (default 2): the target must hold for the one-sided
   * bound (lost − gained + z·√(lost + gained))/n on the accuracy drop (or the agreement), not
   * only for the observed score; 0 fits the evaluation data exactly (see `calibrate.ts`).
   */
  margin?: number;
  /** Folds of the out-of-sample cross-fit (default 5). */
  folds?: number;
  /** 'auto' (default): about three stage boundaries spread by cumulative MACs; or tensor names. */
  exits?: 'auto' | string[];
  /** 'if' (default): one model with nested If; 'multi-output': every head as an extra output. */
  form?: 'if' | 'multi-output';
  score?: ExitScore;
  /** Width of a 1×1 Conv before pooling in each map head (default: none). */
  headWidth?: number;
  /** Distillation temperature (default 4) and weight α of the soft term when labels are given (default 0.7). */
  temperature?: number;
  alpha?: number;
  /** Fine-tune the backbone with the heads (default: the backbone is frozen). */
  joint?: boolean;
  training?: TrainSettings;
  /** Evaluation samples timed at batch 1, interleaved with the original (default 200; 0 skips). */
  latencySamples?: number;
  signal?: AbortSignal;
  onProgress?: (stage: string, fraction?: number) => void;
}

export interface ExitReport {
  tensor: string;
  /** Fraction of the original's MACs computed before this exit. */
  position: number;
  head: string;
  headMacs: number;
  /** null: this exit is off (no threshold met the target with it on). */
  threshold: number | null;
  /** Fraction of evaluation samples leaving here, their accuracy (or agreement), and the MACs each paid. */
  samples: number;
  score: number | null;
  macs: number;
}

export interface EarlyExitOutcome {
  model: Model;
  form: 'if' | 'multi-output';
  metric: 'accuracy' | 'agreement';
  exits: ExitReport[];
  final: { samples: number; score: number | null; macs: number };
  originalMacs: number;
  expectedMacs: number;
  original: { score: number };
  earlyExit: { score: number };
  /**
   * Out of sample: k-fold cross-fit of the calibration on the evaluation data; every sample is
   * judged by thresholds calibrated without it (the figure to expect on new data).
   */
  outOfSample: {
    folds: number;
    margin: number;
    score: number;
    expectedMacs: number;
    expectedMacsRatio: number;
    exits: Array<{ samples: number; score: number | null; macs: number | null }>;
    final: { samples: number; score: number | null; macs: number | null };
  };
  curve: Array<{ threshold: number; expectedMacs: number; score: number }>;
  latency?: { samples: number; originalMs: { mean: number; p50: number }; earlyExitMs: { mean: number; p50: number }; ratioMean: number };
  training: { epochs: number; secondsPerEpoch: number; msPerStep: number; trainable: number };
  notes: string[];
  /** Figures that miss what was asked (the out-of-sample score below the target), each with what helps. */
  warnings: string[];
}

const TEACHER = 'early_exit_teacher';
const LABELS = 'early_exit_labels';

function classCount(model: Model): number {
  const outs = model.graph.outputs;
  if (outs.length !== 1) throw new UsageError(`early exits need a model with one output of class scores [N, K]; this one has ${outs.length} outputs`);
  const t = outs[0].type;
  const declared = t?.kind === 'tensor' ? t.shape : null;
  const shape = declared?.length === 2 && typeof declared[1] === 'number' ? declared : inferShapes(model).types.get(outs[0].name)?.shape;
  const K = shape?.length === 2 ? shape[1] : null;
  if (typeof K !== 'number' || K < 2) throw new UsageError(`early exits need the output '${outs[0].name}' to be class scores [N, K] with a fixed K ≥ 2`);
  return K;
}

function fixedBatch(s: ModelSession): number | undefined {
  const b = s.inputs[0]?.shape[0];
  return typeof b === 'number' && b > 0 ? b : undefined;
}

/** Runs `session` over `data` and returns the named outputs concatenated over samples. */
async function runAll(session: ModelSession, data: Dataset, names: string[], signal?: AbortSignal): Promise<Record<string, Float32Array>> {
  const bs = fixedBatch(session) ?? 64;
  const parts: Record<string, Float32Array[]> = Object.fromEntries(names.map((n) => [n, []]));
  for (const b of data.batches(bs)) {
    if (signal?.aborted) throw new CancelledError();
    const out = await session.run(b.feeds, names);
    for (const n of names) parts[n].push(Float32Array.from(out[n].data as Float32Array));
  }
  const joined: Record<string, Float32Array> = {};
  for (const n of names) {
    const total = parts[n].reduce((a, p) => a + p.length, 0);
    const all = new Float32Array(total);
    let off = 0;
    for (const p of parts[n]) {
      all.set(p, off);
      off += p.length;
    }
    joined[n] = all;
  }
  return joined;
}

function argmaxRows(x: Float32Array, n: number, k: number): Int32Array {
  const out = new Int32Array(n);
  for (let i = 0; i < n; i++) {
    let best = 0;
    for (let c = 1; c < k; c++) if (x[i * k + c] > x[i * k + best]) best = c;
    out[i] = best;
  }
  return out;
}

function percentile(xs: number[], q: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s.length ? s[Math.min(s.length - 1, Math.floor(q * s.length))] : NaN;
}

/** Trains exit heads, calibrates thresholds, writes the model, and measures it (see the module comment). */
export async function earlyExit(model: Model, opts: EarlyExitOptions): Promise<EarlyExitOutcome> {
  const K = classCount(model);
  const notes: string[] = [];
  const score: ExitScore = opts.score ?? 'max-prob';
  const form = opts.form ?? 'if';
  const T = opts.temperature ?? 4;
  const alpha = opts.trainLabels ? opts.alpha ?? 0.7 : 1;
  if (!(T > 0)) throw new UsageError(`--temperature must be > 0, got ${T}`);
  if (!(alpha >= 0 && alpha <= 1)) throw new UsageError(`--alpha must be in [0, 1], got ${alpha}`);
  if (opts.trainLabels && opts.trainLabels.length !== opts.train.count) throw new UsageError(`the training labels hold ${opts.trainLabels.length} entries but the training data holds ${opts.train.count} samples`);
  if (opts.labels && opts.labels.length !== opts.eval.count) throw new UsageError(`the evaluation labels hold ${opts.labels.length} entries but the evaluation data holds ${opts.eval.count} samples`);
  if (opts.target.kind === 'max-accuracy-drop' && !opts.labels) throw new UsageError('--max-accuracy-drop needs evaluation labels (--labels); without labels use --min-agreement');
  if (opts.target.kind === 'threshold' && !Number.isFinite(opts.target.threshold)) throw new UsageError(`--threshold must be a finite number, got ${opts.target.threshold}`);

  opts.onProgress?.('finding stage boundaries');
  const cuts = analyzeCuts(model);
  if (cuts.partial) notes.push('some nodes have unknown MACs: exit positions and expected MACs count only the known ones');
  const exits = chooseExits(cuts, opts.exits ?? 'auto');
  const { model: withHeads, heads } = addHeads(model, exits, { classes: K, headWidth: opts.headWidth, seed: opts.training?.seed ?? 0 });

  // Train the heads by distillation from the original output (+ labels when given).
  const teacher = await ModelSession.create(model, { allowSpinning: false }, '<teacher>');
  let trained: Model;
  let training: EarlyExitOutcome['training'];
  try {
    const extra: Record<string, HostTensor> = opts.trainLabels ? { [LABELS]: labelsTensor(opts.trainLabels) } : {};
    const base = withTeacher(datasetSampleSet(opts.train, extra), teacher, TEACHER);
    const losses: LossTerm[] = [];
    const outputs = opts.joint ? [...heads.map((h) => h.logits), model.graph.outputs[0].name] : heads.map((h) => h.logits);
    // Each loss term reads its own feed (the engine adds one graph input per term).
    outputs.forEach((logits, k) => {
      losses.push({ kind: 'distillation', logits, teacherLogits: `${TEACHER}_${k}`, temperature: T, weight: alpha });
      if (opts.trainLabels && alpha < 1) losses.push({ kind: 'cross-entropy', logits, labels: `${LABELS}_${k}`, weight: 1 - alpha });
    });
    const set = {
      count: base.count,
      gather: async (indices: readonly number[]) => {
        const f = await base.gather(indices);
        const out: Record<string, HostTensor> = { ...f };
        delete out[TEACHER];
        delete out[LABELS];
        outputs.forEach((_, k) => {
          out[`${TEACHER}_${k}`] = f[TEACHER];
          if (f[LABELS]) out[`${LABELS}_${k}`] = f[LABELS];
        });
        return out;
      },
    };
    // Defaults apply to settings left undefined (the CLI passes every flag, given or not).
    const t = opts.training ?? {};
    const settings = fitSettings({ ...t, epochs: t.epochs ?? 10, batchSize: t.batchSize ?? 32, lr: t.lr ?? 3e-3, signal: opts.signal });
    const r = await fit(withHeads, set, {
      ...settings,
      losses,
      trainable: opts.joint ? undefined : heads.flatMap((h) => h.weights),
      onProgress: (p) => {
        opts.training?.onProgress?.(p);
        opts.onProgress?.('training exit heads', ((p.epoch - 1) * p.steps + p.step) / (p.epochs * p.steps));
      },
    });
    if (r.stopped === 'cancelled') throw new CancelledError();
    trained = r.model;
    training = { epochs: r.history.length, secondsPerEpoch: secondsPerEpoch(r), msPerStep: r.msPerStep, trainable: r.trainable.length };
  } finally {
    await teacher.release();
  }

  // Observe every exit and the final output on the held-out data.
  opts.onProgress?.('calibrating thresholds');
  const n = opts.eval.count;
  const s = await ModelSession.create(trained, { allowSpinning: false }, '<model with exit heads>');
  let obs: ExitObservations;
  let headLogits: Float32Array[];
  try {
    const names = [...heads.map((h) => h.logits), model.graph.outputs[0].name];
    const out = await runAll(s, opts.eval, names, opts.signal);
    headLogits = heads.map((h) => out[h.logits]);
    const finalPred = argmaxRows(out[names[names.length - 1]], n, K);
    // The original's top-1: the final output itself when the backbone stayed frozen.
    let originalPred = finalPred;
    if (opts.joint) {
      const o = await ModelSession.create(model, { allowSpinning: false }, '<original>');
      try {
        const name = model.graph.outputs[0].name;
        originalPred = argmaxRows((await runAll(o, opts.eval, [name], opts.signal))[name], n, K);
      } finally {
        await o.release();
      }
    }
    const reference = opts.labels ?? originalPred;
    const originalScore = opts.labels ? originalPred.reduce((a, p, i) => a + (p === reference[i] ? 1 : 0), 0) / n : 1;
    const conf = headLogits.map((l) => confidences(l, n, K, score));
    obs = { conf: conf.map((c) => c.conf), pred: conf.map((c) => c.pred), finalPred, originalPred, reference, originalScore };
  } finally {
    await s.release();
  }
  const costs: ExitCosts = { backbone: exits.map((e) => e.macs), head: heads.map((h) => h.macs), total: cuts.totalMacs };
  const z = opts.margin ?? 2;
  if (!(z >= 0)) throw new UsageError(`--margin must be ≥ 0, got ${z}`);
  const policy = calibrateThresholds(obs, costs, opts.target, undefined, z);
  const cv = crossValidate(obs, costs, opts.target, opts.folds ?? 5, z, opts.training?.seed ?? 1);
  const outOfSample: EarlyExitOutcome['outOfSample'] = {
    folds: cv.folds,
    margin: z,
    score: cv.score,
    expectedMacs: cv.expectedMacs,
    expectedMacsRatio: costs.total > 0 ? cv.expectedMacs / costs.total : 1,
    exits: heads.map((_, k) => ({ samples: cv.fractions[k], score: cv.exitScore[k], macs: cv.exitMacs[k] })),
    final: { samples: cv.fractions[heads.length], score: cv.exitScore[heads.length], macs: cv.exitMacs[heads.length] },
  };
  const enabled = heads.filter((_, k) => Number.isFinite(policy.thresholds[k]));
  const thresholds = policy.thresholds.filter((t) => Number.isFinite(t));
  if (!enabled.length) notes.push('no exit met the target on the evaluation data: the written model always runs the whole network (try a looser target, more training epochs, --head-width, or other --exits)');
  if (opts.target.kind === 'threshold') notes.push(`threshold ${opts.target.threshold} given for every exit (not calibrated): the out-of-sample figures use it on every fold too`);
  else notes.push(`thresholds calibrated on the evaluation data (${n} samples) with safety margin z = ${z}; the out-of-sample figures are a ${cv.folds}-fold cross-fit (each fold measured with thresholds calibrated on the others)`);
  const warnings: string[] = [];
  // A sample leaves when its confidence (in [0, 1] for both scores) is strictly above the threshold.
  if (opts.target.kind === 'threshold' && opts.target.threshold >= 1) warnings.push(`no exit can fire: a sample leaves an exit when its confidence (${score}, in [0, 1]) is above the threshold, and --threshold is ${opts.target.threshold}; the written model always runs the whole network and every exit head (${(costs.total > 0 ? cv.expectedMacs / costs.total : 1).toFixed(3)}x the original's MACs). What helps: a threshold below 1 (e.g. 0.9), or a target (--max-accuracy-drop, --min-agreement) to calibrate one`);
  const missed = targetMissed(opts.target, obs.originalScore, cv.score);
  if (missed) warnings.push(`the out-of-sample ${opts.labels ? 'accuracy' : 'agreement'} misses the target (${missed}): the thresholds fit this evaluation data more closely than new data. What helps: a larger --margin (now z = ${z}), more evaluation data, or a looser target`);
  notes.push('per-sample semantics at batch 1; at batch > 1 a batch leaves an exit only when every sample in it is confident');

  let written: Model;
  if (form === 'if') written = exportIfModel(model, trained, enabled, thresholds, score, K);
  else {
    written = trained;
    written.metadata = [...written.metadata, ['early_exit', JSON.stringify({ exits: heads.map((h, k) => ({ tensor: h.exit.tensor, output: h.logits, threshold: Number.isFinite(policy.thresholds[k]) ? policy.thresholds[k] : null })), score })]];
  }
  if (form === 'if') await checkIfExport(written, heads, headLogits, obs, policy, opts.eval, model.graph.outputs[0].name, K);
  // Kept beside the written model so it can be re-exported at other thresholds (reexport.ts).
  rememberExitState(written, { original: model, withHeads: trained, heads, obs, costs, score, classes: K, form, metric: opts.labels ? 'accuracy' : 'agreement', eval: opts.eval, calibrated: policy.thresholds });
  const latency = form === 'if' && (opts.latencySamples ?? 200) > 0 ? await measureLatency(model, written, opts.eval, opts.latencySamples ?? 200, opts.signal) : undefined;

  const E = heads.length;
  return {
    model: written,
    form,
    metric: opts.labels ? 'accuracy' : 'agreement',
    exits: heads.map((h: Head, k) => ({
      tensor: h.exit.tensor,
      position: h.exit.fraction,
      head: h.form,
      headMacs: h.macs,
      threshold: Number.isFinite(policy.thresholds[k]) ? policy.thresholds[k] : null,
      samples: policy.fractions[k],
      score: policy.exitScore[k],
      macs: policy.exitMacs[k],
    })),
    final: { samples: policy.fractions[E], score: policy.exitScore[E], macs: policy.exitMacs[E] },
    originalMacs: cuts.totalMacs,
    expectedMacs: policy.expectedMacs,
    original: { score: obs.originalScore },
    earlyExit: { score: policy.score },
    outOfSample,
    curve: thresholdCurve(obs, costs),
    latency,
    training,
    notes,
    warnings,
  };
}

/** How the out-of-sample score misses a calibrated target (e.g. "0.67 pp below the original, target 0.50 pp"), or undefined. */
export function targetMissed(target: ExitTarget, originalScore: number, score: number): string | undefined {
  if (target.kind === 'max-accuracy-drop' && originalScore - score > target.drop + 1e-12) return `${(100 * (originalScore - score)).toFixed(2)} pp below the original, target ${(100 * target.drop).toFixed(2)} pp`;
  if (target.kind === 'min-agreement' && score < target.agreement - 1e-12) return `agreement ${score.toFixed(4)}, target ${target.agreement}`;
  return undefined;
}

/**
 * The written If model must reproduce the policy: at batch 1, on up to 64 evaluation samples,
 * its `exit_index` is the policy's exit and its output equals that exit's logits. A mismatch
 * is this tool's bug (a plain Error).
 */
async function checkIfExport(written: Model, heads: Head[], headLogits: Float32Array[], obs: ExitObservations, policy: PolicyOutcome, data: Dataset, output: string, K: number): Promise<void> {
  const s = await ModelSession.create(written, { allowSpinning: false }, '<early-exit model>');
  try {
    const n = Math.min(64, data.count);
    const E = heads.length;
    for (let i = 0; i < n; i++) {
      const out = await s.run(data.batch(i, 1), [output, EXIT_INDEX_OUTPUT]);
      let k = 0;
      while (k < E && !(Number.isFinite(policy.thresholds[k]) && obs.conf[k][i] > policy.thresholds[k])) k++;
      const got = Number((out[EXIT_INDEX_OUTPUT].data as BigInt64Array)[0]);
      const enabledBefore = policy.thresholds.slice(0, k).filter((t) => Number.isFinite(t)).length;
      // Confidence computed in float32 by ORT may sit on the other side of a threshold than the
      // float64 one here; only a clear disagreement is a bug.
      const margin = k < E ? Math.abs(obs.conf[k][i] - policy.thresholds[k]) : Infinity;
      if (got !== enabledBefore && margin > 1e-5) throw new Error(`early-exit export: sample ${i} left at exit ${got}, the policy says ${enabledBefore}`);
      if (got === enabledBefore && k < E) {
        const want = headLogits[k].subarray(i * K, (i + 1) * K);
        const have = out[output].data as Float32Array;
        for (let c = 0; c < K; c++) if (Math.abs(have[c] - want[c]) > 1e-3 * (1 + Math.abs(want[c]))) throw new Error(`early-exit export: exit ${k} logits differ from the head's on sample ${i}`);
      }
    }
  } finally {
    await s.release();
  }
}

/** Mean and p50 ms per sample at batch 1 on real data, original and early-exit runs interleaved. */
async function measureLatency(original: Model, written: Model, data: Dataset, samples: number, signal?: AbortSignal): Promise<EarlyExitOutcome['latency']> {
  const a = await ModelSession.create(original, { allowSpinning: false }, '<original>');
  const b = await ModelSession.create(written, { allowSpinning: false }, '<early-exit model>');
  try {
    const n = Math.min(samples, data.count);
    const ta: number[] = [];
    const tb: number[] = [];
    const time = async (s: ModelSession, feeds: Record<string, HostTensor>, into: number[]) => {
      const t0 = process.hrtime.bigint();
      await s.run(feeds);
      into.push(Number(process.hrtime.bigint() - t0) / 1e6);
    };
    for (let i = 0; i < Math.min(10, n); i++) {
      await a.run(data.batch(i, 1));
      await b.run(data.batch(i, 1));
    }
    for (let round = 0; round < 3; round++) {
      for (let i = 0; i < n; i++) {
        if (signal?.aborted) throw new CancelledError();
        const feeds = data.batch(i, 1);
        if ((i + round) % 2) {
          await time(a, feeds, ta);
          await time(b, feeds, tb);
        } else {
          await time(b, feeds, tb);
          await time(a, feeds, ta);
        }
      }
    }
    const mean = (x: number[]) => x.reduce((p, q) => p + q, 0) / Math.max(1, x.length);
    return {
      samples: n,
      originalMs: { mean: mean(ta), p50: percentile(ta, 0.5) },
      earlyExitMs: { mean: mean(tb), p50: percentile(tb, 0.5) },
      ratioMean: mean(tb) / mean(ta),
    };
  } finally {
    await a.release();
    await b.release();
  }
}
