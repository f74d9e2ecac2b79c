import { CancelledWithResult, UsageError } from '../../errors';
import type { Model } from '../../ir/graph';
import type { Dataset } from '../../runtime/data/dataset';
import { datasetSampleSet, fit, labelsTensor } from '../../train';
import { fitSettings, scoreModels, secondsPerEpoch, type Score, type TrainSettings } from '../distill/common';
import { distill } from '../distill';
import { pruneModel, type PruneOptions, type PruneOutcome } from './index';
import { scheduledTarget, type PruneSchedule } from './schedule';

/**
 * Prune → retrain → repeat (Han et al. 2015; Zhu & Gupta 2017): the target is spread over
 * `steps` by a schedule (cubic by default), and after each prune step the model is retrained
 * for `epochsPerStep` epochs, by fine-tuning on labels (cross-entropy) or by distillation from
 * a teacher (the original model by default). Unstructured sparsity keeps its zeros during
 * retraining (masks). With evaluation data, accuracy (or top-1 agreement with the original)
 * is measured after each prune and each retrain, and of the final step's two models (pruned,
 * retrained) the better one is kept: both meet the target.
 */

export type TrainingRecovery = 'finetune' | 'distill';

export interface RecoveryOptions extends TrainSettings {
  method: TrainingRecovery;
  train: Dataset;
  /** Needed for finetune; optional for distill (α = 1 without). */
  trainLabels?: Int32Array;
  /** Epochs of retraining after each prune step (default `epochs`, itself default 5). */
  epochsPerStep?: number;
  /** Distillation teacher (default: the original model). */
  teacher?: Model;
  temperature?: number;
  alpha?: number;
  /** Evaluation data for the per-step report and the choice of the kept model. */
  eval?: { data: Dataset; labels?: Int32Array };
}

export interface RecoveryStep {
  step: number;
  /** Cumulative target of this step (fraction of MACs/params/channels/weights removed). */
  target: number;
  afterPrune?: Score;
  afterRetrain?: Score;
  /** Mean seconds per retraining epoch. */
  secondsPerEpoch: number;
  trainLoss: number[];
}

export interface RecoveryReport {
  method: TrainingRecovery;
  schedule: PruneSchedule;
  steps: RecoveryStep[];
  /** Accuracy (or agreement) of the original on the evaluation data. */
  original?: number;
  /** Which of the last step's models was kept. */
  kept: 'retrained' | 'pruned';
}

function checkRecovery(r: RecoveryOptions): void {
  if (r.method !== 'finetune' && r.method !== 'distill') throw new UsageError(`unknown recovery '${r.method as string}' (finetune, distill)`);
  if (r.method === 'finetune' && !r.trainLabels) {
    throw new UsageError('--recover finetune trains on labels (--train-labels); without labels use --recover distill, which learns from the original model');
  }
  if (r.trainLabels && r.trainLabels.length !== r.train.count) throw new UsageError(`there are ${r.trainLabels.length} training labels for ${r.train.count} training samples`);
}

/** Retrains `pruned` once (fine-tune or distill), keeping exact zeros when `keepZeros`. */
export async function retrain(pruned: Model, original: Model, r: RecoveryOptions, keepZeros: boolean): Promise<{ model: Model; secondsPerEpoch: number; trainLoss: number[] }> {
  checkRecovery(r);
  const settings = { ...r, epochs: r.epochsPerStep ?? r.epochs };
  if (r.method === 'distill') {
    const d = await distill(pruned, r.teacher ?? original, { ...settings, eval: undefined, keepZeros });
    return { model: d.model, secondsPerEpoch: d.secondsPerEpoch, trainLoss: d.fit.history.map((h) => h.trainLoss) };
  }
  const logits = pruned.graph.outputs[0]?.name;
  if (!logits) throw new UsageError('the model has no output to fine-tune');
  const set = datasetSampleSet(r.train, { labels: labelsTensor(r.trainLabels!) });
  const f = await fit(pruned, set, { ...fitSettings(settings), losses: [{ kind: 'cross-entropy', logits, labels: 'labels' }], keepZeros });
  return { model: f.model, secondsPerEpoch: secondsPerEpoch(f), trainLoss: f.history.map((h) => h.trainLoss) };
}

/**
 * Prunes `model` in `prune.steps` steps (default 3) along `schedule`, retraining after each
 * (see the module docs). Structured pruning goes through `pruneModel`'s recovery hook;
 * unstructured pruning prunes the retrained weights again by magnitude at each step.
 */
export async function pruneWithRecovery(
  model: Model,
  prune: PruneOptions,
  recovery: RecoveryOptions,
  schedule: PruneSchedule = 'cubic',
): Promise<PruneOutcome & { recovery: RecoveryReport }> {
  checkRecovery(recovery);
  if (prune.recoveryHook) throw new UsageError('a recovery hook is already set');
  const steps = Math.max(1, Math.floor(prune.steps ?? 3));
  const final = prune.ratio ?? prune.targetMacs ?? prune.targetParams;
  if (final === undefined) throw new UsageError('prune → retrain needs --ratio, --target-macs or --target-params');
  const report: RecoveryReport = { method: recovery.method, schedule, steps: [], kept: 'retrained' };
  const ev = recovery.eval;
  const score = async (m: Model) => (ev ? (await scoreModels(model, m, ev.data, ev.labels)).candidate : undefined);
  if (ev) report.original = (await scoreModels(model, model, ev.data, ev.labels)).reference ?? 1;
  let lastPruned: Model | undefined;
  const hook = async (pruned: Model, original: Model, step: number): Promise<Model> => {
    const rec: RecoveryStep = { step, target: scheduledTarget(final, step, steps, schedule), secondsPerEpoch: 0, trainLoss: [] };
    rec.afterPrune = await score(pruned);
    const r = await retrain(pruned, original, recovery, !prune.structured);
    // Cancelled during retraining: fit returned the best weights so far; stop here with them.
    if (recovery.signal?.aborted) throw new CancelledWithResult(r.model, `retrained (cancelled) after prune step ${step} of ${steps}`);
    rec.afterRetrain = await score(r.model);
    rec.secondsPerEpoch = r.secondsPerEpoch;
    rec.trainLoss = r.trainLoss;
    report.steps.push(rec);
    lastPruned = pruned;
    return r.model;
  };
  let outcome: PruneOutcome;
  if (prune.structured) {
    outcome = await pruneModel(model, { ...prune, steps, schedule, recoveryHook: hook });
  } else {
    if (prune.ratio === undefined) throw new UsageError('unstructured prune → retrain needs --ratio');
    let current = model;
    outcome = undefined as unknown as PruneOutcome;
    for (let step = 1; step <= steps; step++) {
      outcome = await pruneModel(current, { ...prune, steps: 1, ratio: scheduledTarget(final, step, steps, schedule) });
      current = await hook(outcome.model, model, step);
    }
    outcome = { ...outcome, model: current, sparsity: sparsityOf(current, outcome.sparsity ?? []) };
  }
  const last = report.steps[report.steps.length - 1];
  if (lastPruned && last?.afterPrune && last.afterRetrain && better(last.afterPrune, last.afterRetrain)) {
    report.kept = 'pruned';
    outcome = { ...outcome, model: lastPruned, sparsity: prune.structured ? outcome.sparsity : sparsityOf(lastPruned, outcome.sparsity ?? []) };
  }
  outcome.notes = outcome.notes.map((n) => n.replace('recovery: none', `recovery: ${recovery.method}`));
  outcome.notes.push(`recovery: ${recovery.method} after each of ${steps} steps (${schedule} schedule), ${recovery.epochsPerStep ?? recovery.epochs ?? 5} epochs per step; kept the ${report.kept} model of the last step${ev ? '' : ' (no real evaluation data to compare them on; --eval with --labels lets the better one be kept)'}`);
  return { ...outcome, recovery: report };
}

/** a strictly better than b: accuracy when known, else agreement. */
function better(a: Score, b: Score): boolean {
  return a.accuracy !== undefined && b.accuracy !== undefined ? a.accuracy > b.accuracy : a.agreement > b.agreement;
}

/** Recounts the zeros of the listed weights in `m`. */
function sparsityOf(m: Model, list: NonNullable<PruneOutcome['sparsity']>): NonNullable<PruneOutcome['sparsity']> {
  return list.map(({ name }) => {
    const w = m.graph.initializers.get(name)!.toFloat32();
    const zeros = w.reduce((a, v) => a + (v === 0 ? 1 : 0), 0);
    return { name, elements: w.length, zeros, sparsity: zeros / w.length };
  });
}
