import { z } from 'zod';
import type { Model } from '../../ir/graph';
import { UsageError } from '../../errors';
import { scoreModels, type Score } from '../distill/common';
import { defineStep, option, type StepContext } from '../step';
import { substituteDepthwise, substituteLowRank } from '.';
import type { LayerSubstitution, SubstituteSkip } from './types';

/** Substitute options, declared once. */
export const substituteOptions = z.strictObject({
  kind: option(z.enum(['lowrank', 'depthwise']), 'Conv → depthwise-separable pair, or dense layer → low-rank factors.', {
    valueSwitches: true,
    formats: { lowrank: ['onnx'] },
  }),
  multiplier: option(z.number().int().min(1).max(64).optional(), 'Depthwise: channel multiplier of the depthwise conv (default 1).', {
    placeholder: 'm',
    form: { min: 1, max: 9, step: 1, initial: 1, when: { key: 'kind', values: ['depthwise'] } },
  }),
  energy: option(z.number().gt(0).lte(1).optional(), 'Low-rank: keep the smallest rank that holds this fraction of the spectral energy.', { placeholder: 'f' }),
  rank: option(z.number().int().min(1).max(65536).optional(), 'Low-rank: the same rank for every layer.', { placeholder: 'r' }),
  targetParams: option(z.number().gt(0).lt(1).optional(), 'Low-rank: fraction of each layer’s weight params to keep, ranks allocated globally.', {
    placeholder: 'f',
    form: { min: 0.05, max: 0.95, step: 0.05, initial: 0.5, when: { key: 'kind', values: ['lowrank'] } },
  }),
  plain: option(z.boolean().default(false), 'Low-rank: plain SVD even when calibration data is given (default: whitened by the data).'),
  layers: option(z.array(z.string()).optional(), 'Only these layers (node names), comma separated.', { placeholder: 'n1,n2' }),
  maxError: option(z.number().gt(0).optional(), 'Per-layer error budget: a layer whose relative output error on the calibration data (or, for depthwise without data, its weight error) exceeds it is skipped. Depthwise without --multiplier defaults to 0.25 and picks each layer\'s multiplier within it.', { placeholder: 'e' }),
  refit: option(z.boolean().default(true), 'Depthwise: refit the pair by least squares on the calibration data.', { switches: { off: 'no-refit' } }),
  recover: option(
    z.enum(['none', 'finetune', 'distill']).default('none'),
    'Retraining after the substitution (ONNX): finetune on labels, or distill from the original model (needs --train, and --train-labels for finetune).',
    {
      form: { min: 0, max: 0, step: 0, initial: 'none' },
      formats: { finetune: ['onnx'], distill: ['onnx'] },
      needs: { finetune: ['train', 'trainLabels'], distill: ['train'] },
    },
  ),
  epochs: option(z.number().int().min(1).max(1000).optional(), 'Retraining epochs (recover finetune/distill; default 5).', {
    placeholder: 'e',
    form: { min: 1, max: 100, step: 1, initial: 5, when: { key: 'recover', values: ['finetune', 'distill'] } },
  }),
});
export type SubstituteStepOptions = z.output<typeof substituteOptions>;

export interface SubstituteOutcome {
  model: Model;
  layers: LayerSubstitution[];
  skipped: SubstituteSkip[];
  /** With recover finetune/distill: scores on real evaluation data (when given) and the training curve. */
  recovery?: SubstituteRecovery;
}

export interface SubstituteRecovery {
  method: 'finetune' | 'distill';
  epochs: number;
  /** Accuracy (with labels) or agreement of the original, after the substitution and after retraining. */
  original?: number;
  afterSubstitute?: Score;
  afterRetrain?: Score;
  /** Which model was kept: the retrained one unless it scored worse than the substituted one. */
  kept: 'retrained' | 'substituted';
  secondsPerEpoch: number;
  trainLoss: number[];
}

export const substituteStep = defineStep({
  id: 'substitute',
  summary: 'replace convolutions with depthwise-separable pairs, or dense layers with low-rank factors',
  formats: ['onnx', 'tfjs-layers'],
  options: substituteOptions,
  example: 'substitute model.onnx --lowrank --target-params 0.5 --calib calib.npy -o model.lowrank.onnx',
  check(o) {
    if (o.kind === 'depthwise' && (o.energy !== undefined || o.rank !== undefined || o.targetParams !== undefined || o.plain)) {
      return '«energy», «rank», «targetParams» and «plain» go with «kind» lowrank';
    }
    if (o.epochs !== undefined && o.recover === 'none') return '«epochs» goes with «recover» finetune or distill';
    if (o.kind === 'lowrank' && o.multiplier !== undefined) return '«multiplier» goes with «kind» depthwise';
    if ([o.energy, o.rank, o.targetParams].filter((x) => x !== undefined).length > 1) return 'choose one of «energy», «rank» or «targetParams»';
    return undefined;
  },
  needsCalib: (o) => (o.maxError !== undefined && o.kind === 'lowrank' ? '«maxError» with «kind» lowrank (the error is measured on calibration data)' : undefined),
  needsTrain: (o) => (o.recover !== 'none' ? `«recover» ${o.recover}` : undefined),
  data: ['calib', 'train', 'eval'],
  async apply(model, o, ctx): Promise<{ model: Model; detail: string; outcome: SubstituteOutcome }> {
    const common = { layers: o.layers, maxError: o.maxError, calib: ctx.calib, signal: ctx.signal };
    const r =
      o.kind === 'depthwise'
        ? await substituteDepthwise(model, { ...common, multiplier: o.multiplier, refit: o.refit })
        : await substituteLowRank(model, { ...common, energy: o.energy, rank: o.rank, targetParams: o.targetParams, plain: o.plain });
    if (o.recover === 'none' || !r.layers.length) return { model: r.model, detail: `${r.layers.length} layers (${o.kind})`, outcome: r };
    const recovery = await recoverSubstitution(model, r.model, o.recover, o.epochs ?? 5, ctx);
    return { model: recovery.model, detail: `${r.layers.length} layers (${o.kind}), ${o.recover} ${recovery.report.epochs} epochs`, outcome: { ...r, model: recovery.model, recovery: recovery.report } };
  },
});

/**
 * Retrains a substituted model once (prune's recovery: `retrain` in prune/recover.ts) and,
 * with real evaluation data, keeps the better of the substituted and the retrained model.
 */
async function recoverSubstitution(original: Model, substituted: Model, method: 'finetune' | 'distill', epochs: number, ctx: StepContext): Promise<{ model: Model; report: SubstituteRecovery }> {
  if (original.format !== 'onnx') throw new UsageError(`--recover ${method} trains with ONNX Runtime: it needs an ONNX model`);
  if (!ctx.train) throw new UsageError(`--recover ${method} trains the substituted model: give training inputs (--train${method === 'finetune' ? ' and --train-labels' : ''})`);
  const { retrain } = await import('../prune/recover');
  const ev = ctx.eval && !ctx.evalIsRandom ? { data: ctx.eval, labels: ctx.labels } : undefined;
  ctx.onProgress?.(`recovery: ${method}`);
  const r = await retrain(substituted, original, { method, train: ctx.train, trainLabels: ctx.trainLabels, epochsPerStep: epochs, signal: ctx.signal, onProgress: ctx.onTrainProgress }, false);
  const report: SubstituteRecovery = { method, epochs, kept: 'retrained', secondsPerEpoch: r.secondsPerEpoch, trainLoss: r.trainLoss };
  if (!ev) return { model: r.model, report };
  const before = await scoreModels(original, substituted, ev.data, ev.labels);
  const after = await scoreModels(original, r.model, ev.data, ev.labels);
  Object.assign(report, { original: before.reference ?? 1, afterSubstitute: before.candidate, afterRetrain: after.candidate });
  const key = before.candidate.accuracy !== undefined && after.candidate.accuracy !== undefined ? 'accuracy' : 'agreement';
  if (before.candidate[key]! > after.candidate[key]!) report.kept = 'substituted';
  return { model: report.kept === 'retrained' ? r.model : substituted, report };
}
