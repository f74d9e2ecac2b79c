import { z } from 'zod';
import { UsageError } from '../../errors';
import type { Model } from '../../ir/graph';
import { defineStep, option, type StepContext } from '../step';
import { quantizeModel, type QuantizeMode, type QuantizeOutcome } from './index';

/** Options that apply to one or a few modes only (a rule checks it). */
const MODE_OF: Record<string, QuantizeMode[]> = {
  method: ['static'],
  percentile: ['static'],
  symmetricActivations: ['static'],
  qat: ['static'],
  qatEpochs: ['static'],
  dynamicForm: ['dynamic'],
  blockSize: ['int4'],
  symmetric: ['int4'],
  k: ['cluster'],
  clusterForm: ['cluster'],
};

/** Quantize options, declared once (recipe: `{ "step": "quantize", "mode": …, "options": {…} }`). */
export const quantizeOptions = z.strictObject({
  // Order: the panel offers the first value a format supports first (dynamic for ONNX, uint8 for TF.js).
  mode: option(z.enum(['dynamic', 'static', 'uint8', 'uint16', 'fp16', 'int4', 'cluster'] satisfies QuantizeMode[]), 'int8 dynamic/static, fp16, int4 (MatMulNBits), weight clustering (ONNX); fp16/uint8/uint16 weight storage (TF.js).', {
    needs: { static: ['calib'] },
    formats: { dynamic: ['onnx'], static: ['onnx'], int4: ['onnx'], cluster: ['onnx'], uint8: ['tfjs-layers', 'tfjs-graph'], uint16: ['tfjs-layers', 'tfjs-graph'] },
  }),
  options: option(
    z
      .strictObject({
        method: option(z.enum(['minmax', 'percentile', 'entropy']).optional(), 'Static: how activation ranges are calibrated (default minmax).', {
          form: { min: 0, max: 0, step: 0, initial: 'minmax', when: { key: 'mode', values: ['static'] } },
        }),
        percentile: option(z.number().gt(50).lte(100).optional(), 'Static, percentile method: keep this percentile of each activation (default 99.999).', { placeholder: 'p' }),
        perChannel: option(z.boolean().default(true), 'Weights quantized per output channel (default) or per tensor.', { switches: { on: 'per-channel', off: 'per-tensor' } }),
        symmetricActivations: option(z.boolean().default(false), 'Static: symmetric int8 activations (zero point 0).'),
        reduceRange: option(z.boolean().optional(), '7-bit weights (for CPUs without VNNI, whose u8×s8 products saturate), or full 8-bit range (default: chosen by the quantizer).', {
          switches: { on: 'reduce-range', off: 'full-range' },
        }),
        dynamicForm: option(z.enum(['integer', 'fused', 'weights']).optional(), 'Dynamic: integer kernels, fused DynamicQuantizeMatMul, or int8 weights only.'),
        blockSize: option(z.literal([32, 64, 128]).optional(), 'int4: weights per quantization block along K (a power of two ≥ 16 for MatMulNBits; 32, 64 or 128 here).', { placeholder: 'n' }),
        symmetric: option(z.boolean().default(true), 'int4: symmetric blocks (no zero points).', { switches: { off: 'asymmetric' } }),
        k: option(z.literal([16, 256]).optional(), 'Clustering: number of shared values per tensor (16: 4-bit indices, 256: 8-bit).', { placeholder: 'n' }),
        clusterForm: option(z.enum(['gather', 'dense']).optional(), 'Clustering: keep indices and a codebook (Gather) or write dense weights.'),
        exclude: option(z.array(z.string()).optional(), 'Nodes to leave in float, comma separated.', { placeholder: 'n1,n2' }),
        targetAgreement: option(z.number().gt(0).lte(1).optional(), 'Accuracy-aware: keep the most sensitive layers in float until top-1 agreement (or cosine) reaches this.', { placeholder: 'x' }),
        qat: option(z.boolean().default(false), 'Static: quantization-aware fine-tuning with fake quantization (straight-through estimator) before writing the QDQ model (needs --train, labels optional).', {
          switches: { on: 'qat' },
          needs: { true: ['train'] },
          form: { min: 0, max: 0, step: 0, initial: false, when: { key: 'mode', values: ['static'] } },
        }),
        qatEpochs: option(z.number().int().min(1).max(1000).optional(), 'QAT: fine-tuning epochs (default 3).', { placeholder: 'n' }),
        maxAccuracyDrop: option(z.number().gte(0).lt(1).optional(), 'Accuracy-aware with labels: the largest accuracy drop allowed (0.005 = 0.5 pp).', { placeholder: 'd' }),
      })
      .default({ perChannel: true, symmetricActivations: false, symmetric: true, qat: false }),
    'Mode options.',
  ),
});
export type QuantizeStepOptions = z.output<typeof quantizeOptions>;

export const quantizeStep = defineStep({
  id: 'quantize',
  summary: 'quantize a model (int8 dynamic/static, fp16, int4, weight clustering), then prove it',
  formats: ['onnx', 'tfjs-layers', 'tfjs-graph'],
  options: quantizeOptions,
  example: 'quantize model.onnx --mode static --calib calib.npy --method percentile --eval test_x.npy --labels test_y.npy',
  check(o) {
    const given = o.options as Record<string, unknown>;
    for (const [key, modes] of Object.entries(MODE_OF)) {
      const v = given[key];
      const isDefault = (key === 'symmetric' && v === true) || ((key === 'symmetricActivations' || key === 'qat') && v === false);
      if (v !== undefined && !isDefault && !modes.includes(o.mode)) return `«options.${key}» applies to «mode» ${modes.join('/')}`;
    }
    if (o.options.targetAgreement !== undefined && o.options.maxAccuracyDrop !== undefined) return 'choose «options.targetAgreement» or «options.maxAccuracyDrop»';
    if (o.options.qat && (o.options.targetAgreement !== undefined || o.options.maxAccuracyDrop !== undefined)) return '«options.qat» fine-tunes the whole int8 model; it does not combine with «options.targetAgreement» or «options.maxAccuracyDrop»';
    return undefined;
  },
  needsCalib: (o) => (o.mode === 'static' ? '«mode» static' : undefined),
  needsTrain: (o) => (o.options.qat ? '«options.qat»' : undefined),
  data: ['calib', 'train', 'eval'],
  /** A preview of `qat` quantizes without the fine-tuning: the same nodes are quantized either way. */
  async plan(model, o, ctx): Promise<{ model: typeof model; detail: string; outcome: QuantizeOutcome }> {
    if (!o.options.qat) return quantizeStep.apply(model, o, ctx);
    const r = await quantizeStep.apply(model, { ...o, options: { ...o.options, qat: false } }, ctx);
    return { ...r, detail: `${r.detail} (fine-tuning not run in a preview)` };
  },
  async apply(model, o, ctx): Promise<{ model: typeof model; detail: string; outcome: QuantizeOutcome }> {
    const q = o.options;
    if (q.qat) return qatStep(model, o, ctx);
    const r = await quantizeModel(model, {
      mode: o.mode,
      perChannel: q.perChannel,
      method: q.method,
      percentile: q.percentile,
      symmetricActivations: q.symmetricActivations,
      reduceRange: q.reduceRange,
      exclude: q.exclude,
      dynamicForm: q.dynamicForm,
      blockSize: q.blockSize,
      symmetric: q.symmetric,
      k: q.k,
      clusterForm: q.clusterForm,
      targetAgreement: q.targetAgreement,
      maxAccuracyDrop: q.maxAccuracyDrop,
      calib: ctx.calib,
      eval: ctx.eval,
      labels: ctx.labels,
      signal: ctx.signal,
      onProgress: ctx.onProgress,
    });
    return { model: r.model, detail: `${o.mode}: ${r.quantizedNodes.length} quantized, ${r.skippedNodes.length} left`, outcome: r };
  },
});

/** `--qat`: calibrate, fine-tune with fake quantization, write the static QDQ model (quantize/qat.ts). */
async function qatStep(model: Model, o: QuantizeStepOptions, ctx: StepContext): Promise<{ model: Model; detail: string; outcome: QuantizeOutcome }> {
  if (!ctx.calib) throw new UsageError('static quantization needs calibration data (--calib)');
  if (!ctx.train) throw new UsageError('--qat fine-tunes the model: give training inputs (--train, and --train-labels when there are labels)');
  const { quantizationAwareTraining } = await import('./qat');
  const q = o.options;
  const r = await quantizationAwareTraining(model, {
    calib: ctx.calib,
    method: q.method,
    percentile: q.percentile,
    perChannel: q.perChannel,
    symmetricActivations: q.symmetricActivations,
    reduceRange: q.reduceRange,
    exclude: q.exclude ? new Set(q.exclude) : undefined,
    train: ctx.train,
    trainLabels: ctx.trainLabels,
    epochs: q.qatEpochs ?? 3,
    signal: ctx.signal,
    onProgress: ctx.onTrainProgress,
  });
  const outcome: QuantizeOutcome = {
    model: r.model,
    mode: 'static',
    quantizedNodes: r.plan.covered.map((n) => n.label),
    skippedNodes: r.plan.skipped,
    notes: [
      `quantization-aware fine-tuning: ${r.trainLoss.length} epochs (${r.secondsPerEpoch.toFixed(2)} s/epoch), ${ctx.trainLabels ? 'cross-entropy on the training labels' : 'distillation from the float model (no labels)'}, training loss ${r.trainLoss.map((l) => l.toFixed(4)).join(' → ')}`,
      `calibration: ${q.method ?? 'minmax'} on ${ctx.calib.count} samples; activation ranges fixed, weight scales follow the trained weights`,
    ],
    slowerBecause: 'the same QDQ model as static mode: ONNX Runtime runs int8 fast only where it fuses DequantizeLinear→op→QuantizeLinear, and this CPU (AVX2 without VNNI) has no 8-bit dot-product instruction',
  };
  return { model: r.model, detail: `static + QAT: ${outcome.quantizedNodes.length} quantized, ${outcome.skippedNodes.length} left`, outcome };
}
