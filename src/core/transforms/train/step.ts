import { z } from 'zod';
import { UsageError } from '../../errors';
import type { Model } from '../../ir/graph';
import { datasetSampleSet, fit, labelsTensor, selectTrainable, type FitOptions, type FitResult, type LossTerm, type LrSchedule, type OptimizerConfig, type SampleSet } from '../../train';
import { defineStep, option } from '../step';

/**
 * `train`: supervised training or fine-tuning with softmax cross-entropy on labelled data
 * (`--train`, `--train-labels`), optionally with L1/L2 penalties on the trained weights
 * (sparsity training: λ‖W‖₁ + (λ₂/2)‖W‖₂²). Optimizers and schedules follow PyTorch's update
 * rules (SGD with momentum/Nesterov; Adam, Kingma & Ba 2015; AdamW, Loshchilov & Hutter 2019).
 * Validation picks the best epoch: a held-out `valSplit` of the training data (the evaluation
 * data, if given, then only reports), else the evaluation data with labels (then the accuracy
 * reported on that data is not a test accuracy).
 */

const list = z.array(z.string().min(1)).max(4096);

export const trainOptions = z.strictObject({
  epochs: option(z.number().int().min(1).max(10000).default(10), 'Passes over the training data.', { placeholder: 'n', form: { min: 1, max: 1000, step: 1, initial: 10 } }),
  batchSize: option(z.number().int().min(1).max(65536).default(32), 'Samples per training step.', { flag: 'batch', placeholder: 'b' }),
  lr: option(z.number().gt(0).max(10).optional(), 'Learning rate (default 1e-3 for adam/adamw, 0.01 for sgd).', { placeholder: 'r' }),
  optimizer: option(z.enum(['adamw', 'adam', 'sgd']).default('adamw'), 'Optimizer: AdamW (decoupled weight decay), Adam, or SGD with momentum.'),
  momentum: option(z.number().min(0).lt(1).optional(), 'SGD momentum (default 0.9).', { placeholder: 'm' }),
  nesterov: option(z.boolean().default(false), 'Nesterov momentum (SGD).'),
  weightDecay: option(z.number().min(0).max(1).optional(), 'Weight decay (decoupled for adamw, L2 for adam and sgd).', { placeholder: 'w' }),
  schedule: option(z.enum(['constant', 'step', 'cosine']).default('constant'), 'Learning-rate schedule: constant, step (×0.1 every third of the epochs) or cosine decay.'),
  warmup: option(z.number().int().min(0).max(10_000_000).optional(), 'Linear warm-up over this many steps.', { placeholder: 'steps' }),
  clipGradNorm: option(z.number().gt(0).max(1e6).optional(), 'Clip the global gradient L2 norm to this value.', { placeholder: 'g' }),
  patience: option(z.number().int().min(1).max(10000).optional(), 'Early stopping: epochs without a better validation metric (needs validation data).', { placeholder: 'p' }),
  valSplit: option(z.number().gt(0).lt(1).optional(), 'Hold out this fraction of the training data (its last samples) for validation, instead of the evaluation data.', { placeholder: 'f' }),
  trainable: option(list.optional(), 'Train only these weights (names or prefixes), comma separated.', { placeholder: 'n1,n2' }),
  freeze: option(list.optional(), 'Keep these weights frozen (names or prefixes), comma separated.', { placeholder: 'n1,n2' }),
  l1: option(z.number().min(0).max(1000).optional(), 'L1 penalty λ·Σ|w| on the trained weights (sparsity training).', { placeholder: 'λ' }),
  l2: option(z.number().min(0).max(1000).optional(), 'L2 penalty (λ/2)·Σw² on the trained weights.', { placeholder: 'λ' }),
  keepZeros: option(z.boolean().default(false), 'Weights that are exactly zero stay zero (retraining a pruned model).'),
  bn: option(
    z.enum(['frozen', 'train']).default('frozen'),
    'BatchNormalization: frozen running statistics, or PyTorch train mode (batch statistics; running mean and variance updated each step and written to the model).',
  ),
  seed: option(z.number().int().min(0).max(2 ** 31 - 1).optional(), 'Seed of the shuffles (default 0).', { placeholder: 's' }),
  threads: option(z.number().int().min(1).max(256).optional(), 'ONNX Runtime intra-op threads.', { placeholder: 't' }),
});
export type TrainStepOptions = z.output<typeof trainOptions>;

export interface TrainOutcome {
  fit: Omit<FitResult, 'model'>;
  /** Where the best epoch was chosen: a held-out split, the evaluation data, or nowhere (the last epoch is kept). */
  validation: 'val-split' | 'eval' | 'none';
  notes: string[];
}

export const trainStep = defineStep({
  id: 'train',
  summary: 'train or fine-tune a model on labelled data (cross-entropy; optional L1/L2 sparsity penalties)',
  formats: ['onnx'],
  options: trainOptions,
  example: 'train model.onnx --train x.npy --train-labels y.npy --val-split 0.1 --epochs 5 --eval ex.npy --labels ey.npy -o trained.onnx',
  check(o) {
    if (o.optimizer !== 'sgd' && (o.momentum !== undefined || o.nesterov)) return '«momentum» and «nesterov» go with «optimizer» sgd';
    if (o.trainable && o.freeze) return 'choose one of «trainable» or «freeze»';
    return undefined;
  },
  needsTrain: () => 'train',
  data: ['train', 'eval'],
  checksDynamicModels: true,
  // Training changes weights, not structure: a preview shows the model as it is, without training.
  plan: async (model, o) => ({ model, detail: `retrains the weights for ${o.epochs} epoch(s); same structure` }),
  async apply(model, o, ctx): Promise<{ model: Model; detail: string; outcome: TrainOutcome }> {
    if (model.format !== 'onnx') throw new UsageError('training needs an ONNX model (export a TF.js model to ONNX first: model-compressor export)');
    if (!ctx.train) throw new UsageError('train needs training inputs (--train x.npy; not random)');
    if (!ctx.trainLabels) throw new UsageError('--train-labels names the training labels (integers, one per sample)');
    if (ctx.trainLabels.length !== ctx.train.count) throw new UsageError(`--train-labels holds ${ctx.trainLabels.length} labels for ${ctx.train.count} training samples`);
    const logits = model.graph.outputs[0]?.name;
    if (!logits) throw new UsageError('the model has no output');
    const lr = o.lr ?? (o.optimizer === 'sgd' ? 0.01 : 1e-3);
    const optimizer: OptimizerConfig =
      o.optimizer === 'sgd' ? { kind: 'sgd', lr, momentum: o.momentum ?? 0.9, nesterov: o.nesterov, weightDecay: o.weightDecay } : { kind: o.optimizer, lr, weightDecay: o.weightDecay };
    const warmupSteps = o.warmup;
    const schedule: LrSchedule =
      o.schedule === 'step' ? { kind: 'step', stepEpochs: Math.max(1, Math.round(o.epochs / 3)), gamma: 0.1, warmupSteps } : o.schedule === 'cosine' ? { kind: 'cosine', warmupSteps } : { kind: 'constant', warmupSteps };
    const labelsName = model.graph.inputs.some((i) => i.name === 'labels') ? 'train_labels' : 'labels';
    const trainable = selectTrainable(model, { trainable: o.trainable, freeze: o.freeze });
    const losses: LossTerm[] = [{ kind: 'cross-entropy', logits, labels: labelsName }];
    if (o.l1 !== undefined) losses.push({ kind: 'l1', weights: trainable, weight: o.l1 });
    if (o.l2 !== undefined) losses.push({ kind: 'l2', weights: trainable, weight: o.l2 });

    const all = datasetSampleSet(ctx.train, { [labelsName]: labelsTensor(ctx.trainLabels) });
    let train: SampleSet = all;
    let validation: FitOptions['validation'];
    let where: TrainOutcome['validation'] = 'none';
    const notes: string[] = [];
    if (o.valSplit !== undefined) {
      const nVal = Math.max(1, Math.round(all.count * o.valSplit));
      if (nVal >= all.count) throw new UsageError('--val-split leaves no training samples');
      const nTrain = all.count - nVal;
      // The held-out split is the last samples of the training data (never shuffled into training).
      train = { count: nTrain, gather: (idx) => all.gather(idx) };
      validation = { data: { count: nVal, gather: (idx) => all.gather(idx.map((i) => nTrain + i)) }, metric: 'accuracy', labels: labelsName };
      where = 'val-split';
      if (ctx.eval && ctx.labels && !ctx.evalIsRandom) notes.push(`the best epoch was chosen on the held-out split (the last ${nVal} training samples); the accuracy reported on the evaluation data (--eval) is independent of that choice`);
    } else if (ctx.eval && ctx.labels && !ctx.evalIsRandom) {
      validation = { data: datasetSampleSet(ctx.eval, { [labelsName]: labelsTensor(ctx.labels) }), metric: 'accuracy', labels: labelsName };
      where = 'eval';
      notes.push('the best epoch was chosen on the evaluation data (--eval), so the accuracy reported on it is not a test accuracy; hold out --val-split for validation to keep it independent');
    }
    if (o.patience !== undefined && !validation) throw new UsageError('--patience needs validation data (--eval with --labels, or --val-split)');
    const r = await fit(model, train, {
      losses,
      trainable,
      epochs: o.epochs,
      batchSize: o.batchSize,
      optimizer,
      schedule,
      clipGradNorm: o.clipGradNorm,
      seed: o.seed ?? 0,
      keepZeros: o.keepZeros,
      batchNorm: o.bn,
      validation,
      earlyStopping: o.patience !== undefined ? { patience: o.patience } : undefined,
      checkpoint: ctx.checkpoint,
      onProgress: (p) => {
        ctx.onTrainProgress?.(p);
        ctx.onProgress?.(`training, epoch ${p.epoch}/${p.epochs}`, ((p.epoch - 1) * p.steps + p.step) / (p.epochs * p.steps));
      },
      signal: ctx.signal,
      session: o.threads !== undefined ? { intraOpThreads: o.threads } : undefined,
    });
    const { model: trained, ...rest } = r;
    if (r.bestEpoch === 0 && r.initialMetric !== undefined && r.history.length) {
      const best = Math.max(...r.history.map((h) => h.metric ?? -Infinity));
      notes.push(`no epoch beat the original weights on validation (accuracy ${r.initialMetric.toFixed(4)} before training, ${best.toFixed(4)} at best after an epoch): the original weights are kept`);
    }
    return { model: trained, detail: `${r.history.length} epoch(s), kept ${r.bestEpoch === 0 ? 'the original weights' : `epoch ${r.bestEpoch}`}${r.stopped === 'completed' ? '' : ` (${r.stopped})`}`, outcome: { fit: rest, validation: where, notes } };
  },
});
