import { UsageError } from '../../errors';
import type { Model } from '../../ir/graph';
import { compareModels } from '../../runtime/compare';
import type { Dataset } from '../../runtime/data/dataset';
import { ModelSession, type SessionOptions } from '../../runtime/session';
import type { FitOptions, FitResult, OptimizerConfig, TrainProgress } from '../../train';

/**
 * What every training-based method shares: the training settings a user gives once
 * (`--epochs`, `--batch`, `--lr`, `--optimizer`), and how a result is scored against a
 * reference (accuracy with labels, top-1 agreement with the reference always).
 */

export interface TrainSettings {
  /** Default 5. */
  epochs?: number;
  /** Default 32. */
  batchSize?: number;
  /** Default 1e-3 (AdamW) or 1e-2 (SGD). */
  lr?: number;
  /** Default 'adamw'. */
  optimizer?: 'adamw' | 'adam' | 'sgd';
  weightDecay?: number;
  seed?: number;
  signal?: AbortSignal;
  onProgress?: (p: TrainProgress) => void;
  session?: SessionOptions;
}

export function optimizerOf(s: TrainSettings): OptimizerConfig {
  const kind = s.optimizer ?? 'adamw';
  if (kind === 'sgd') return { kind, lr: s.lr ?? 1e-2, momentum: 0.9, nesterov: true, weightDecay: s.weightDecay ?? 0 };
  if (kind !== 'adamw' && kind !== 'adam') throw new UsageError(`unknown optimizer '${kind as string}' (optimizers: adamw, adam, sgd)`);
  return { kind, lr: s.lr ?? 1e-3, weightDecay: s.weightDecay ?? 0 };
}

/** The shared part of `FitOptions` (losses, data and masks are the caller's). */
export function fitSettings(s: TrainSettings): Pick<FitOptions, 'epochs' | 'batchSize' | 'optimizer' | 'schedule' | 'seed' | 'signal' | 'onProgress' | 'session'> {
  return {
    epochs: s.epochs ?? 5,
    batchSize: s.batchSize ?? 32,
    optimizer: optimizerOf(s),
    schedule: { kind: 'cosine', warmupSteps: 0 },
    seed: s.seed ?? 0,
    signal: s.signal,
    onProgress: s.onProgress,
    session: { ...s.session, allowSpinning: false },
  };
}

/** Time per epoch (s) of a fit, averaged over its epochs. */
export function secondsPerEpoch(r: FitResult): number {
  return r.history.length ? r.history.reduce((a, h) => a + h.seconds, 0) / r.history.length : 0;
}

/** A model's quality on evaluation data: top-1 accuracy with labels, and top-1 agreement with a reference. */
export interface Score {
  /** With labels. */
  accuracy?: number;
  /** Fraction of samples whose top-1 class equals the reference's. */
  agreement: number;
}

/**
 * Scores `candidate` against `reference` on `data` (ORT, same batches): the reference's
 * accuracy, the candidate's accuracy, and their top-1 agreement.
 */
export async function scoreModels(reference: Model, candidate: Model, data: Dataset, labels?: Int32Array, batchSize = 128): Promise<{ reference?: number; candidate: Score }> {
  const r = await ModelSession.create(reference, { allowSpinning: false }, '<reference>');
  try {
    const c = await ModelSession.create(candidate, { allowSpinning: false }, '<candidate>');
    try {
      const res = await compareModels(r, c, data, { batchSize, labels });
      const agreement = res.outputs[0]?.top1Agreement;
      if (agreement === undefined) throw new UsageError('the models have no [batch, classes] output to score (top-1 agreement needs class scores)');
      return { reference: res.accuracy?.reference, candidate: { accuracy: res.accuracy?.candidate, agreement } };
    } finally {
      await c.release();
    }
  } finally {
    await r.release();
  }
}

/** The engine's teacher feed, re-exported where the distillation methods import it. */
export { withTeacherOutputs } from '../../train';
