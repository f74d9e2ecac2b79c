import { z } from 'zod';
import { UsageError } from '../../errors';
import type { Model } from '../../ir/graph';
import type { TrainSettings } from '../distill/common';
import { defineStep, option, type StepContext } from '../step';
import { runtimeWidths, type WidthsOutcome } from '../widths';
import { earlyExit, type EarlyExitOutcome, type ExitTarget } from './index';

/**
 * Early exits (BranchyNet, Teerapittayanon et al. 2016) or runtime widths (slimmable
 * networks, Yu et al. 2019), as one step. Both write a model with `If` nodes and a new
 * interface (an `exit_index` output or a `width` input), so in a recipe this step comes last.
 */
export const earlyExitOptions = z.strictObject({
  maxAccuracyDrop: option(z.number().min(0).lt(1).optional(), 'Target: accuracy at most d below the original’s (a fraction, 0.005 = 0.5 pp); needs --labels.', { placeholder: 'd' }),
  minAgreement: option(z.number().gt(0).max(1).optional(), 'Target: top-1 agreement with the original of at least a (no labels needed).', {
    placeholder: 'a',
    // The panel's target (no labels needed); a recipe may give another.
    form: { min: 0.5, max: 1, step: 0.005, initial: 0.99 },
  }),
  threshold: option(z.number().min(0).max(1e6).optional(), 'No target: leave at every exit whose confidence exceeds t.', { placeholder: 't' }),
  margin: option(z.number().min(0).max(10).default(2), 'Safety margin z of the calibration: the target must hold for the bound (lost − gained + z·√(lost + gained))/n on the drop, not only the observed one (0: fit the evaluation data exactly).', { placeholder: 'z' }),
  folds: option(z.number().int().min(2).max(100).default(5), 'Folds of the out-of-sample cross-fit of the calibration on --eval.', { placeholder: 'k' }),
  exits: option(z.array(z.string().min(1)).min(1).max(64).optional(), 'Exit points: auto (about three stage boundaries spread by cumulative MACs; the default) or tensor names, comma separated.', {
    placeholder: 'auto|t1,t2',
  }),
  form: option(z.enum(['if', 'multi-output']).optional(), 'if (default): one model with nested If and an exit_index output; multi-output: every head as an extra output.'),
  score: option(z.enum(['max-prob', 'entropy']).optional(), 'Confidence score of an exit (default max-prob).'),
  headWidth: option(z.number().int().min(1).max(4096).optional(), 'Channels of a 1×1 Conv before pooling in each head (default: none).', { placeholder: 'c' }),
  joint: option(z.boolean().default(false), 'Fine-tune the backbone with the heads (default: the backbone stays frozen).'),
  temperature: option(z.number().gt(0).max(100).default(4), 'Distillation temperature.', { placeholder: 'T' }),
  alpha: option(z.number().min(0).max(1).default(0.7), 'Weight of the distillation term, 1 − α on the labels (1 without labels).', { placeholder: 'a' }),
  epochs: option(z.number().int().min(0).max(10000).optional(), 'Training epochs (default 10 for exit heads, 5 with --widths; 0 with --widths: no fine-tuning).', { placeholder: 'n', form: { min: 1, max: 100, step: 1, initial: 10 } }),
  batchSize: option(z.number().int().min(1).max(65536).default(32), 'Samples per training step.', { flag: 'batch', placeholder: 'b' }),
  lr: option(z.number().gt(0).max(10).optional(), 'Learning rate (AdamW, cosine schedule; default 3e-3 for exit heads, 1e-3 with --widths).', { placeholder: 'r' }),
  seed: option(z.number().int().min(0).max(2 ** 31 - 1).optional(), 'Seed of head initialisation and shuffles (default 0).', { placeholder: 's' }),
  widths: option(z.array(z.number().gt(0).max(1)).min(1).max(16).optional(), 'Instead of exits: one file that runs at these widths (fractions in (0, 1], 1 added), picked by a float input `width`; plain CNNs and MLPs.', {
    placeholder: 'w1,w2,…',
  }),
  criterion: option(z.enum(['l1', 'l2', 'bn', 'random']).optional(), '--widths: channel importance criterion (the pruning criteria; default l1).'),
  selector: option(z.enum(['width', 'budget']).optional(), "--widths: the model's input that picks the sub-network: width (a fraction of the channels; the default) or budget (a fraction of the full width's MACs; the widest width within it runs)."),
  latencySamples: option(z.number().int().min(0).max(100000).default(200), 'Evaluation samples timed at batch 1, interleaved with the original (0 skips).', { placeholder: 'N' }),
});
export type EarlyExitStepOptions = z.output<typeof earlyExitOptions>;

const EXIT_ONLY = ['maxAccuracyDrop', 'minAgreement', 'threshold', 'exits', 'form', 'score', 'headWidth'] as const;

export type EarlyExitStepOutcome = ({ kind: 'exits' } & Omit<EarlyExitOutcome, 'model'>) | ({ kind: 'widths' } & Omit<WidthsOutcome, 'model'>);

function target(o: EarlyExitStepOptions): ExitTarget {
  if (o.maxAccuracyDrop !== undefined) return { kind: 'max-accuracy-drop', drop: o.maxAccuracyDrop };
  if (o.minAgreement !== undefined) return { kind: 'min-agreement', agreement: o.minAgreement };
  return { kind: 'threshold', threshold: o.threshold! };
}

/** Training data and real evaluation data, which both methods need. */
function data(ctx: StepContext, what: string) {
  if (!ctx.train) throw new UsageError(`${what} trains on real inputs; --train cannot be random (give --train x.npy)`);
  if (!ctx.eval || ctx.evalIsRandom) throw new UsageError(`${what} measures on real inputs; --eval cannot be random (give held-out data: --eval ex.npy)`);
  return { train: ctx.train, eval: ctx.eval };
}

export const earlyExitStep = defineStep({
  id: 'early-exit',
  summary: 'add early exits that skip the rest of the network on easy inputs (calibrated to an accuracy or agreement target)',
  formats: ['onnx'],
  options: earlyExitOptions,
  example: 'early-exit model.onnx --train x.npy --train-labels y.npy --eval ex.npy --labels ey.npy --max-accuracy-drop 0.005 -o model.exits.onnx',
  check(o) {
    if (o.widths) {
      const k = EXIT_ONLY.find((key) => o[key] !== undefined) ?? (o.joint ? 'joint' : undefined);
      return k ? `«widths» builds a width-switchable model; «${k}» belongs to early exits` : undefined;
    }
    if (o.criterion !== undefined || o.selector !== undefined) return `«${o.criterion !== undefined ? 'criterion' : 'selector'}» goes with «widths»`;
    if (o.epochs === 0) return '«epochs» 0 (no training) goes with «widths»; exit heads need at least one epoch';
    if ([o.maxAccuracyDrop, o.minAgreement, o.threshold].filter((x) => x !== undefined).length !== 1) return 'early-exit needs exactly one of «maxAccuracyDrop», «minAgreement» or «threshold»';
    return undefined;
  },
  needsTrain: (o) => (o.widths ? '«widths»' : 'early-exit'),
  needsEval: (o) => (o.widths ? '«widths»' : 'early-exit'),
  data: ['train', 'eval'],
  async apply(model, o, ctx): Promise<{ model: Model; detail: string; outcome: EarlyExitStepOutcome }> {
    if (model.format !== 'onnx') throw new UsageError('early exits and runtime widths are written as ONNX If models (export a TF.js model to ONNX first: model-compressor export)');
    // Only the settings given: an absent one keeps each method's own default (10 epochs at 3e-3 for heads, 5 at 1e-3 for widths).
    const training = Object.fromEntries(
      Object.entries({ epochs: o.epochs, batchSize: o.batchSize, lr: o.lr, seed: o.seed, signal: ctx.signal, onProgress: ctx.onTrainProgress }).filter(([, v]) => v !== undefined),
    ) as TrainSettings;
    // Training is reported through onTrainProgress when it is listened to; stages through onProgress.
    let announced = false;
    const onProgress = (stage: string, f?: number) => {
      if (ctx.onTrainProgress && /^training/.test(stage)) {
        if (announced) return;
        announced = true;
        f = undefined;
      }
      ctx.onProgress?.(stage, f);
    };
    if (o.widths) {
      const d = data(ctx, '--widths');
      const r = await runtimeWidths(model, { widths: o.widths, ...d, trainLabels: ctx.trainLabels, labels: ctx.labels, criterion: o.criterion, selector: o.selector, temperature: o.temperature, training, latencySamples: o.latencySamples, signal: ctx.signal, onProgress });
      const { model: m, ...rest } = r;
      return { model: m, detail: `widths ${r.widths.map((w) => w.width).join(', ')}`, outcome: { kind: 'widths', ...rest } };
    }
    const t = target(o);
    if (t.kind === 'max-accuracy-drop' && !ctx.labels) throw new UsageError('--max-accuracy-drop needs evaluation labels (--labels); without labels use --min-agreement');
    const d = data(ctx, 'early-exit');
    const exits = !o.exits || (o.exits.length === 1 && o.exits[0] === 'auto') ? 'auto' : o.exits;
    const r = await earlyExit(model, {
      ...d,
      trainLabels: ctx.trainLabels,
      labels: ctx.labels,
      target: t,
      margin: o.margin,
      folds: o.folds,
      exits,
      form: o.form,
      score: o.score,
      headWidth: o.headWidth,
      joint: o.joint,
      temperature: o.temperature,
      alpha: o.alpha,
      training,
      latencySamples: o.latencySamples,
      signal: ctx.signal,
      onProgress,
    });
    const { model: m, ...rest } = r;
    const on = r.exits.filter((e) => e.threshold !== null).length;
    return { model: m, detail: `${on} of ${r.exits.length} exits on, expected MACs ${(r.originalMacs > 0 ? r.expectedMacs / r.originalMacs : 1).toFixed(3)}x`, outcome: { kind: 'exits', ...rest } };
  },
});
