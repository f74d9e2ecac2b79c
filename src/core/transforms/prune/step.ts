import * as path from 'path';
import { z } from 'zod';
import { allocateFromCurves, pruningSensitivity, type SensitivityResult } from './sensitivity';
import { fillScratchDir, makeScratchDir, releaseScratch } from '../../util/scratch';
import { UsageError } from '../../errors';
import { saveModel } from '../../formats/registry';
import { defineStep, option, type StepContext } from '../step';
import { CRITERIA } from './importance';
import { pruneModel, pruneToLatency, type PruneOutcome } from './index';

const fraction = z.number().gt(0).lt(1);

/** Prune options, declared once: CLI flags, recipe keys, JSON Schema and the panel's form come from here. */
export const pruneOptions = z.strictObject({
  structured: option(z.boolean().default(true), 'Remove whole channels (real speed-up) rather than zeroing single weights.', {
    switches: { on: 'structured', off: 'unstructured', required: true },
  }),
  ratio: option(fraction.optional(), 'Fraction of each group’s channels (structured) or of the weights (unstructured) to remove.', {
    placeholder: 'r',
    form: { min: 0.05, max: 0.95, step: 0.05, initial: 0.5 },
  }),
  targetMacs: option(fraction.optional(), 'Fraction of the model’s MACs to remove (structured).', { placeholder: 'f' }),
  targetParams: option(fraction.optional(), 'Fraction of the model’s parameters to remove (structured).', { placeholder: 'f' }),
  targetLatency: option(fraction.optional(), 'Fraction of the measured latency to remove (structured, ONNX; searched with ONNX Runtime).', {
    placeholder: 'f',
    formats: {},
  }),
  threshold: option(z.number().gt(0).optional(), 'Unstructured: zero every weight whose magnitude is below this.', { placeholder: 't' }),
  criterion: option(z.enum(CRITERIA).default('l1'), 'Channel importance: l1/l2 norm, BatchNorm scale, output entropy, first-order Taylor |Σ w·∂L/∂w| on the calibration data (cross-entropy with --calib-labels, else KL to the model’s own outputs) or random.', {
    hidden: ['bn', 'taylor'],
    needs: { entropy: ['calib'] },
    form: { min: 0, max: 0, step: 0, initial: 'l1' },
  }),
  recover: option(
    z.enum(['none', 'reconstruct', 'finetune', 'distill']).default('none'),
    'Recovery after pruning: least-squares reconstruction of the next layer’s weights (needs --calib), or retraining after each step: finetune on labels or distill from the original (needs --train, and --train-labels for finetune).',
    {
      form: { min: 0, max: 0, step: 0, initial: 'none' },
      // Retraining runs the training engine on ONNX graphs.
      formats: { finetune: ['onnx'], distill: ['onnx'] },
      needs: { reconstruct: ['calib'], finetune: ['train', 'trainLabels'], distill: ['train'] },
    },
  ),
  epochsPerStep: option(z.number().int().min(1).max(1000).optional(), 'Retraining epochs after each prune step (recover finetune/distill; default 5).', {
    placeholder: 'e',
    form: { min: 1, max: 100, step: 1, initial: 5, when: { key: 'recover', values: ['finetune', 'distill'] } },
  }),
  schedule: option(z.enum(['linear', 'cubic']).optional(), 'How the target is spread over the steps: equal shares (default) or Zhu & Gupta’s cubic schedule (default with finetune/distill).'),
  steps: option(z.number().int().min(1).max(100).default(1), 'Prune in this many equal steps (re-scoring channels after each).', { placeholder: 'k' }),
  allocate: option(z.enum(['uniform', 'sensitivity']).default('uniform'), 'Per-group ratios: the same everywhere, or from measured sensitivity curves (needs a MACs or params target).'),
  scope: option(z.enum(['layer', 'global']).default('layer'), 'Unstructured: one threshold per layer or one for the whole model.'),
  exclude: option(z.array(z.string()).optional(), 'Groups (first producer layer) to leave alone, comma separated.', { placeholder: 'g1,g2' }),
  roundTo: option(z.number().int().min(1).max(1024).default(8), 'Keep channel counts multiples of this (1: no rounding); CPU kernels work in blocks of 8.', { placeholder: 'n' }),
  seed: option(z.number().int().min(0).max(2 ** 31 - 1).optional(), 'Seed for the random criterion.', { placeholder: 's' }),
});
export type PruneStepOptions = z.output<typeof pruneOptions>;

export const pruneStep = defineStep({
  id: 'prune',
  summary: 'remove channels (structured, real speed) or zero weights (unstructured), then prove it',
  formats: ['onnx', 'tfjs-layers'],
  options: pruneOptions,
  example: 'prune model.onnx --structured --ratio 0.3 --criterion l2 --calib calib.npy --recover reconstruct -o model.pruned.onnx',
  check(o) {
    const targets = [o.ratio, o.targetMacs, o.targetParams, o.targetLatency, o.threshold].filter((x) => x !== undefined).length;
    if (targets !== 1) return 'give exactly one of «ratio», «targetMacs», «targetParams», «targetLatency» or «threshold»';
    if (o.targetLatency !== undefined && !o.structured) return '«targetLatency» goes with structured pruning';
    if (o.threshold !== undefined && o.structured) return '«threshold» goes with unstructured pruning';
    if (o.allocate === 'sensitivity' && o.targetMacs === undefined && o.targetParams === undefined) return '«allocate» sensitivity needs «targetMacs» or «targetParams»';
    const retrain = o.recover === 'finetune' || o.recover === 'distill';
    if (retrain && (o.targetLatency !== undefined || o.threshold !== undefined || o.allocate === 'sensitivity')) return '«recover» finetune/distill goes with «ratio», «targetMacs» or «targetParams» (uniform allocation)';
    return undefined;
  },
  needsCalib: (o) => (o.recover === 'reconstruct' ? '«recover» reconstruct' : o.criterion === 'taylor' ? '«criterion» taylor' : undefined),
  needsTrain: (o) => (o.recover === 'finetune' || o.recover === 'distill' ? `«recover» ${o.recover}` : undefined),
  /** A preview prunes to the same target without retraining: channel counts follow the target, not the trained weights. */
  async plan(model, o, ctx): Promise<{ model: typeof model; detail: string; outcome: PruneOutcome & { allocation?: Record<string, number> } }> {
    if (o.recover !== 'finetune' && o.recover !== 'distill') return pruneStep.apply(model, o, ctx);
    const r = await pruneStep.apply(model, { ...o, recover: 'none', schedule: o.schedule ?? 'cubic' }, ctx);
    return { ...r, detail: `${r.detail} (retraining not run in a preview)` };
  },
  async apply(model, o, ctx): Promise<{ model: typeof model; detail: string; outcome: PruneOutcome & { allocation?: Record<string, number> } }> {
    if (o.targetLatency !== undefined && model.format !== 'onnx') {
      throw new UsageError('--target-latency measures with ONNX Runtime; for TF.js models use --ratio, --target-params or --target-macs (with --allocate sensitivity)');
    }
    const common = {
      roundTo: o.roundTo,
      criterion: o.criterion,
      calib: ctx.calib,
      calibLabels: ctx.calibLabels,
      recover: o.recover as 'none' | 'reconstruct',
      steps: o.steps,
      schedule: o.schedule,
      exclude: o.exclude,
      seed: o.seed,
      signal: ctx.signal,
      onProgress: ctx.onProgress,
    };
    let outcome: PruneOutcome & { allocation?: Record<string, number> };
    if (o.targetLatency !== undefined) outcome = await pruneForLatency(model, o.targetLatency, common, ctx);
    else if (o.recover === 'finetune' || o.recover === 'distill') {
      if (!ctx.train) throw new UsageError(`--recover ${o.recover} trains the pruned model: give training inputs (--train${o.recover === 'finetune' ? ' and --train-labels' : ''})`);
      const { pruneWithRecovery } = await import('./recover');
      outcome = await pruneWithRecovery(
        model,
        { ...common, recover: 'none', structured: o.structured, ratio: o.ratio, targetMacs: o.targetMacs, targetParams: o.targetParams, scope: o.scope },
        { method: o.recover, train: ctx.train, trainLabels: ctx.trainLabels, epochsPerStep: o.epochsPerStep ?? 5, eval: ctx.eval && !ctx.evalIsRandom ? { data: ctx.eval, labels: ctx.labels } : undefined, signal: ctx.signal, onProgress: ctx.onTrainProgress },
        o.schedule ?? 'cubic',
      );
    } else {
      let groupRatios: Record<string, number> | undefined;
      if (o.allocate === 'sensitivity') {
        const data = ctx.calib ?? ctx.eval;
        if (!data) throw new UsageError('sensitivity allocation needs data (--calib or --eval)');
        const s: SensitivityResult = await pruningSensitivity(model, { data, criterion: o.criterion, calib: ctx.calib, signal: ctx.signal });
        groupRatios = allocateFromCurves(s, (o.targetMacs ?? o.targetParams)!, o.targetMacs !== undefined ? 'macs' : 'params').ratios;
      }
      outcome = await pruneModel(model, {
        ...common,
        structured: o.structured,
        ratio: o.ratio,
        targetMacs: groupRatios ? undefined : o.targetMacs,
        targetParams: groupRatios ? undefined : o.targetParams,
        groupRatios,
        threshold: o.threshold,
        scope: o.scope,
      });
      if (groupRatios) outcome.allocation = groupRatios;
    }
    const detail = o.structured ? `${outcome.groups.length} groups pruned` : `unstructured, ${outcome.sparsity?.length ?? 0} tensors`;
    return { model: outcome.model, detail, outcome };
  },
});

/** Latency targets bench candidates against the model's file (written to a scratch folder if it has none). */
async function pruneForLatency(model: Parameters<typeof pruneModel>[0], target: number, common: Omit<Parameters<typeof pruneToLatency>[3], 'structured' | 'workDir'>, ctx: StepContext) {
  const workDir = makeScratchDir('mc-prune-');
  try {
    let input = ctx.input;
    if (!input) {
      input = path.join(workDir, 'input.onnx');
      fillScratchDir(workDir, 0, () => saveModel(model, input!));
    }
    return await pruneToLatency(model, input, target, { ...common, structured: true, workDir });
  } finally {
    releaseScratch(workDir);
  }
}
