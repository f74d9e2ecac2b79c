import { analyzeModel } from '../analysis/analyze';
import { dynamicModelRefusal } from '../analysis/dynamic-models';
import { UsageError } from '../errors';
import { openModel } from '../formats/registry';
import type { Dataset } from '../runtime/data/dataset';
import { saveVerified } from '../runtime/verified-save';
import { quantizeModel, type QuantizeMode } from '../transforms/quantize';
import { inputSpecs, JOB_DEFAULTS, randomData, unknownDimsAsOne } from './index';

/**
 * The one-click INT8 choice: dynamic int8 for MatMul-heavy models (most MACs in MatMul/Gemm,
 * as in transformers and MLPs), static int8 with generated calibration data otherwise
 * (convolutional models), since ORT only fuses convolutions into integer kernels statically.
 */
export async function quickQuantize(file: string, output: string, opts: { signal?: AbortSignal; onProgress?: (stage: string, f?: number) => void; calibSamples?: number } = {}) {
  const model = openModel(file);
  if (model.format.startsWith('tfjs')) throw new UsageError('one-click INT8 works on ONNX models; TF.js models are quantized in their own manifest: use Compress Model… or `quantize --mode uint8`');
  if (model.format !== 'onnx') throw new UsageError(`one-click INT8 works on ONNX models; ${model.format} models are read-only here`);
  const dynamic = dynamicModelRefusal(model, 'quantize');
  if (dynamic) throw new UsageError(dynamic);
  const a = analyzeModel(model);
  const dense = a.byOpType.filter((o) => o.op === 'MatMul' || o.op === 'Gemm').reduce((s, o) => s + o.macs, 0);
  const share = a.totals.macs ? dense / a.totals.macs : 1;
  const mode: QuantizeMode = share >= 0.5 ? 'dynamic' : 'static';
  const reason =
    mode === 'dynamic'
      ? `${(share * 100).toFixed(0)}% of the MACs are in MatMul/Gemm: dynamic int8 (activations quantized at run time)`
      : `${((1 - share) * 100).toFixed(0)}% of the MACs are outside MatMul/Gemm: static int8, calibrated on ${opts.calibSamples ?? JOB_DEFAULTS.calibrationSamples} generated random samples (for real calibration data use the CLI: quantize --mode static --calib data)`;
  let calib: Dataset | undefined;
  if (mode === 'static') {
    const inputs = await inputSpecs(model, file);
    calib = randomData(inputs, opts.calibSamples ?? JOB_DEFAULTS.calibrationSamples, { shapes: unknownDimsAsOne(inputs) }).data;
  }
  const r = await quantizeModel(model, { mode, calib, signal: opts.signal, onProgress: opts.onProgress });
  await saveVerified(r.model, output);
  return { model, outcome: r, mode, reason };
}
