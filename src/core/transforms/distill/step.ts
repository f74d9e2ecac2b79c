import { z } from 'zod';
import { UsageError } from '../../errors';
import { openModel } from '../../formats/registry';
import type { Model } from '../../ir/graph';
import { defineStep, option } from '../step';
import { distill, parseMatches, type DistillResult } from './index';

/** Distillation options, declared once: CLI flags, recipe keys, JSON Schema. */
export const distillOptions = z.strictObject({
  teacher: option(z.string().min(1).optional(), 'The teacher model (same inputs; class logits as its first output). In a recipe the default is the model the recipe started from.', {
    placeholder: 'teacher.onnx',
    file: true,
  }),
  temperature: option(z.number().gt(0).max(100).default(4), 'Softening temperature T of softmax(z/T).', { placeholder: 'T', form: { min: 1, max: 20, step: 0.5, initial: 4 } }),
  alpha: option(z.number().min(0).max(1).optional(), 'Weight α of the distillation term, 1 − α on the labels (default 0.7; 1 without labels).', { placeholder: 'a' }),
  match: option(z.array(z.string().min(3)).max(256).optional(), 'Feature distillation: MSE between two intermediate tensors of the same shape, as teacherTensor=studentTensor (repeatable).', {
    placeholder: 'teacherTensor=studentTensor',
    repeatable: true,
  }),
  matchWeight: option(z.number().min(0).max(1e6).optional(), 'Weight β of each feature term (default 1).', { placeholder: 'b' }),
  epochs: option(z.number().int().min(1).max(10000).default(5), 'Training epochs.', { placeholder: 'n', form: { min: 1, max: 1000, step: 1, initial: 5 } }),
  batchSize: option(z.number().int().min(1).max(65536).default(32), 'Samples per training step.', { flag: 'batch', placeholder: 'b' }),
  lr: option(z.number().gt(0).max(10).optional(), 'Learning rate (default 1e-3 with AdamW, 1e-2 with SGD), cosine schedule.', { placeholder: 'r' }),
  optimizer: option(z.enum(['adamw', 'adam', 'sgd']).default('adamw'), 'Optimizer.'),
  keepZeros: option(z.boolean().default(false), 'Weights that are exactly zero stay zero (a student pruned unstructured).'),
});
export type DistillStepOptions = z.output<typeof distillOptions>;

export type DistillOutcome = Omit<DistillResult, 'model'> & { teacher: string };

export const distillStep = defineStep({
  id: 'distill',
  summary: 'train a (compressed) student on a teacher’s softened outputs, with or without labels',
  formats: ['onnx'],
  options: distillOptions,
  example: 'distill student.onnx --teacher model.onnx --train x.npy --train-labels y.npy --eval ex.npy --labels ey.npy -o student.distilled.onnx',
  needsTrain: () => 'distill',
  data: ['train', 'eval'],
  checksDynamicModels: true,
  plan: async (model, o) => ({ model, detail: `retrains the weights for ${o.epochs} epoch(s) from the teacher; same structure` }),
  async apply(model, o, ctx): Promise<{ model: Model; detail: string; outcome: DistillOutcome }> {
    if (model.format !== 'onnx') throw new UsageError('distillation trains an ONNX model (export a TF.js model to ONNX first: model-compressor export)');
    const teacher = o.teacher ? openModel(o.teacher) : ctx.original;
    if (!teacher) throw new UsageError('distill needs a teacher (--teacher model.onnx)');
    if (!ctx.train) throw new UsageError('distill needs training inputs (--train x.npy; not random)');
    ctx.onProgress?.('distilling');
    const r = await distill(model, teacher, {
      train: ctx.train,
      trainLabels: ctx.trainLabels,
      temperature: o.temperature,
      alpha: o.alpha,
      match: parseMatches(o.match),
      matchWeight: o.matchWeight,
      epochs: o.epochs,
      batchSize: o.batchSize,
      lr: o.lr,
      optimizer: o.optimizer,
      keepZeros: o.keepZeros,
      eval: ctx.eval ? { data: ctx.eval, labels: ctx.evalIsRandom ? undefined : ctx.labels } : undefined,
      signal: ctx.signal,
      onProgress: ctx.onTrainProgress,
    });
    const { model: student, ...rest } = r;
    const acc = r.after?.accuracy !== undefined ? `, accuracy ${r.before?.accuracy?.toFixed(4)} → ${r.after.accuracy.toFixed(4)}` : '';
    return { model: student, detail: `${r.fit.history.length} epochs, α = ${r.alpha}, T = ${r.temperature}${acc}`, outcome: { ...rest, teacher: o.teacher ?? 'the original model' } };
  },
});
