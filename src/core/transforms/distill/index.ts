import { UsageError } from '../../errors';
import type { Dim, Model } from '../../ir/graph';
import { inferShapes } from '../../ir/shape-inference';
import { withExtraOutputs } from '../../runtime/capture';
import type { Dataset } from '../../runtime/data/dataset';
import { ModelSession } from '../../runtime/session';
import { datasetSampleSet, fit, labelsTensor, type FitResult, type LossTerm } from '../../train';
import { fitSettings, scoreModels, secondsPerEpoch, withTeacherOutputs, type Score, type TrainSettings } from './common';

/**
 * Knowledge distillation (Hinton, Vinyals & Dean 2015, "Distilling the Knowledge in a Neural
 * Network"): the student learns from the teacher's logits softened at temperature T,
 *   loss = α·T²·KL(softmax(t/T) ‖ softmax(s/T)) + (1 − α)·CE(s, labels),
 * with T = 4 and α = 0.7 by default, and α = 1 when there are no labels (inputs alone are
 * enough). Optional feature distillation (FitNets, Romero et al. 2015, without the regressor)
 * adds β·MSE(student tensor, teacher tensor) for each `match` pair of equal shapes.
 */

export interface FeatureMatch {
  teacher: string;
  student: string;
}

export interface DistillOptions extends TrainSettings {
  /** Student inputs (bound to the student's inputs; the teacher must have the same input names). */
  train: Dataset;
  /** Class labels, one per training sample. Without them α is 1. */
  trainLabels?: Int32Array;
  /** Temperature T > 0 (default 4). */
  temperature?: number;
  /** Weight α ∈ [0, 1] of the distillation term (default 0.7 with labels; must be 1 or absent without). */
  alpha?: number;
  /** Feature distillation pairs (MSE), each weighted by `matchWeight` (default 1). */
  match?: FeatureMatch[];
  matchWeight?: number;
  /** The teacher output whose logits are distilled (default: its first output); the student's first output learns from it. */
  teacherOutput?: string;
  /** Keep the student's exact zeros (unstructured sparsity) through training. */
  keepZeros?: boolean;
  /** Evaluation data and labels for the before/after report (never trained on). */
  eval?: { data: Dataset; labels?: Int32Array };
}

export interface DistillResult {
  model: Model;
  fit: FitResult;
  losses: LossTerm[];
  /** α and T actually used. */
  alpha: number;
  temperature: number;
  /** On the evaluation data, when given: accuracy of the teacher, and student before/after (agreement with the teacher). */
  teacherAccuracy?: number;
  before?: Score;
  after?: Score;
  secondsPerEpoch: number;
}

export const TEACHER_LOGITS = 'teacher_logits';
export const TRAIN_LABELS = 'labels';

/** The loss terms of distillation for a student whose logits are `logits` (see the module docs). */
export function distillationLosses(logits: string, o: { temperature?: number; alpha?: number; labels: boolean; match?: FeatureMatch[]; matchWeight?: number }): { losses: LossTerm[]; alpha: number; temperature: number } {
  const temperature = o.temperature ?? 4;
  if (!(temperature > 0) || !Number.isFinite(temperature)) throw new UsageError(`the distillation temperature must be a positive number (got ${temperature})`);
  if (o.alpha !== undefined && !(o.alpha >= 0 && o.alpha <= 1)) throw new UsageError(`alpha must be in [0, 1] (got ${o.alpha})`);
  if (!o.labels && o.alpha !== undefined && o.alpha !== 1) throw new UsageError(`alpha ${o.alpha} weighs hard labels, but no training labels were given (--train-labels)`);
  const alpha = o.labels ? (o.alpha ?? 0.7) : 1;
  const losses: LossTerm[] = [];
  if (alpha > 0) losses.push({ kind: 'distillation', logits, teacherLogits: TEACHER_LOGITS, temperature, weight: alpha });
  if (alpha < 1) losses.push({ kind: 'cross-entropy', logits, labels: TRAIN_LABELS, weight: 1 - alpha });
  const beta = o.matchWeight ?? 1;
  if (!(beta >= 0) || !Number.isFinite(beta)) throw new UsageError(`the feature-matching weight must be a number ≥ 0 (got ${beta})`);
  (o.match ?? []).forEach((m, i) => losses.push({ kind: 'mse', prediction: m.student, target: matchFeed(i), weight: beta }));
  return { losses, alpha, temperature };
}

const matchFeed = (i: number) => `teacher_feature_${i}`;

/** Parses `--match t=s` values. */
export function parseMatches(values: string[] | undefined): FeatureMatch[] {
  return (values ?? []).map((v) => {
    const eq = v.indexOf('=');
    if (eq <= 0 || eq === v.length - 1) throw new UsageError(`--match needs teacherTensor=studentTensor, got '${v}'`);
    return { teacher: v.slice(0, eq), student: v.slice(eq + 1) };
  });
}

/**
 * Why `teacher` cannot teach, in the user's terms, or undefined. A teacher gives one set of
 * logits per batch of the student's inputs, so distillation refuses:
 * - an early-exit model (metadata `early_exit`): its output switches between exit heads by
 *   confidence, batch by batch;
 * - a runtime-widths model (metadata `runtime_widths`): it needs a width input the student's
 *   data does not have. It is refused rather than run at one width, so that the teacher is
 *   always a model the user can run and score as it is: its full width is the model before
 *   `early-exit --widths` (fine-tuned towards it).
 */
export function teacherRefusal(teacher: Model): string | undefined {
  const file = teacher.path ?? 'the teacher';
  const meta = new Map(teacher.metadata);
  if (meta.has('early_exit')) {
    return `${file} is an early-exit model: as a teacher its output would switch between exit heads by confidence, batch by batch; give the backbone (the model before early-exit) as the teacher`;
  }
  if (meta.has('runtime_widths')) {
    return `${file} is a runtime-widths model: as a teacher it needs a width input that the training data does not have; give the full-width model (the one before early-exit --widths) as the teacher`;
  }
  return undefined;
}

/** Throws the UsageError of `teacherRefusal` (see there). */
export function assertTeacher(teacher: Model): void {
  const why = teacherRefusal(teacher);
  if (why) throw new UsageError(why);
}

/**
 * Trains `student` to follow `teacher` (see the module docs). Neither model is modified; the
 * result holds the student's inference graph with new weights.
 * Errors: UsageError for bad settings, labels that do not match the data, unknown tensors, a
 * teacher that cannot teach (`teacherRefusal`).
 */
export async function distill(student: Model, teacher: Model, opts: DistillOptions): Promise<DistillResult> {
  assertTeacher(teacher);
  const logits = student.graph.outputs[0]?.name;
  if (!logits) throw new UsageError('the student model has no output');
  const hasLabels = !!opts.trainLabels;
  if (opts.trainLabels && opts.trainLabels.length !== opts.train.count) {
    throw new UsageError(`there are ${opts.trainLabels.length} training labels for ${opts.train.count} training samples`);
  }
  const { losses, alpha, temperature } = distillationLosses(logits, { ...opts, labels: hasLabels });
  const tOut = opts.teacherOutput ?? teacher.graph.outputs[0]?.name;
  if (!tOut) throw new UsageError('the teacher model has no output');
  const match = opts.match ?? [];
  const teacherFeeds: Record<string, string> = { [tOut]: TEACHER_LOGITS };
  match.forEach((m, i) => (teacherFeeds[m.teacher] = matchFeed(i)));
  const teacherName = teacher.path ?? 'the teacher';
  checkTeacherFits(student, teacher, teacherName, opts.train, match);
  const tSession = await ModelSession.create(withExtraOutputs(teacher, match.map((m) => m.teacher)), { allowSpinning: false }, teacherName);
  let result: FitResult;
  try {
    const base = datasetSampleSet(opts.train, hasLabels ? { [TRAIN_LABELS]: labelsTensor(opts.trainLabels!) } : {});
    const set = withTeacherOutputs(base, tSession, teacherFeeds);
    result = await fit(student, set, { ...fitSettings(opts), losses, keepZeros: opts.keepZeros });
  } finally {
    await tSession.release();
  }
  const out: DistillResult = { model: result.model, fit: result, losses, alpha, temperature, secondsPerEpoch: secondsPerEpoch(result) };
  if (opts.eval) {
    const b = await scoreModels(teacher, student, opts.eval.data, opts.eval.labels);
    const a = await scoreModels(teacher, result.model, opts.eval.data, opts.eval.labels);
    out.teacherAccuracy = b.reference;
    out.before = b.candidate;
    out.after = a.candidate;
  }
  return out;
}

const showShape = (d: readonly Dim[]) => `[${d.map((x) => (typeof x === 'number' ? String(x) : x ?? '?')).join(',')}]`;

/** Two shapes that cannot be the same tensor shape: different ranks, or a fixed dim that differs. */
function clash(a: readonly Dim[], b: readonly Dim[]): boolean {
  return a.length !== b.length || a.some((d, i) => typeof d === 'number' && typeof b[i] === 'number' && d !== b[i]);
}

/**
 * Checks, before any training, that the teacher reads the student's training inputs (same
 * names, compatible shapes) and that each `match` pair has one shape on both sides (by shape
 * inference with the data's shapes). Errors: UsageError naming the teacher file, tensors and shapes.
 */
function checkTeacherFits(student: Model, teacher: Model, teacherName: string, train: Dataset, match: FeatureMatch[]): void {
  if (train.count < 1) return; // the training loop says so
  const sample = train.batch(0, 1);
  const shapes: Record<string, Dim[]> = {};
  for (const [name, t] of Object.entries(sample)) {
    const input = teacher.graph.inputs.find((i) => i.name === name);
    if (!input) throw new UsageError(`${teacherName}: the teacher has no input '${name}' (its inputs: ${teacher.graph.inputs.map((i) => i.name).join(', ')}); it must read the student's inputs`);
    const want = input.type?.kind === 'tensor' ? input.type.shape : null;
    const got: Dim[] = ['n', ...t.dims.slice(1)];
    if (want && clash(want.slice(1), got.slice(1))) throw new UsageError(`${teacherName}: the teacher's input '${name}' expects ${showShape(['n', ...want.slice(1)])}, the student's training data is ${showShape(got)}`);
    shapes[name] = [1, ...t.dims.slice(1)];
  }
  if (!match.length) return;
  const ts = inferShapes(teacher, { inputShapes: shapes }).types;
  const ss = inferShapes(student, { inputShapes: shapes }).types;
  for (const m of match) {
    const a = ts.get(m.teacher);
    const b = ss.get(m.student);
    const sa = a?.kind === 'tensor' ? a.shape : null;
    const sb = b?.kind === 'tensor' ? b.shape : null;
    if (sa && sb && clash(sa, sb)) {
      throw new UsageError(`--match ${m.teacher}=${m.student}: the teacher's '${m.teacher}' is ${showShape(sa)} but the student's '${m.student}' is ${showShape(sb)} (at batch 1); matched tensors need the same shape`);
    }
  }
}
