import type { Model } from '../../ir/graph';
import { compareModels, recordOutputs } from '../../runtime/compare';
import { chooseBatchSize, type Dataset } from '../../runtime/data/dataset';
import { ModelSession } from '../../runtime/session';

/**
 * How far ONNX Runtime's integer kernels fall below the exact QDQ arithmetic of the same
 * model. The exact arithmetic is the QDQ model run with graph optimisations disabled: ORT then
 * runs each DequantizeLinear → float op → QuantizeLinear as written (float math on the
 * dequantized values), instead of fusing them into u8×s8 integer kernels that may saturate
 * (see runtime/cpu.ts). Both are measured as SQNR (dB) of the first output against the float model.
 */
export interface KernelFidelity {
  /** SQNR of the quantized model as ORT runs it (fused integer kernels). */
  measuredDb: number;
  /** SQNR of the exact QDQ arithmetic. */
  exactDb: number;
}

/** A gap above this many dB means the kernels, not the quantization, lose the fidelity. */
export const KERNEL_GAP_DB = 6;

export async function kernelFidelity(reference: Model, quantized: Model, data: Dataset, samples = 8): Promise<KernelFidelity> {
  // One session at a time: the reference's outputs are recorded, then each quantized form runs.
  const ref = await ModelSession.create(reference, { allowSpinning: false });
  const batchSize = chooseBatchSize(ref.inputs, 1);
  const limit = Math.min(data.count, Math.max(batchSize, samples));
  let recorded: Awaited<ReturnType<typeof recordOutputs>>;
  try {
    recorded = await recordOutputs(ref, data, { batchSize, limit });
  } finally {
    await ref.release();
  }
  const db = async (graphOptimization?: 'disabled') => {
    const s = await ModelSession.create(quantized, { allowSpinning: false, graphOptimization });
    try {
      const r = await compareModels(recorded.replay(), s, data, { batchSize, limit });
      return r.outputs[0]?.sqnrDb ?? Infinity;
    } finally {
      await s.release();
    }
  };
  const measuredDb = await db();
  const exactDb = await db('disabled');
  return { measuredDb, exactDb };
}

/** The report line when the kernels lose more than KERNEL_GAP_DB against the exact arithmetic. */
export function kernelGapWarning(k: KernelFidelity, reduceRange: boolean): string | undefined {
  if (!(k.exactDb - k.measuredDb > KERNEL_GAP_DB)) return undefined;
  return (
    `warning: ONNX Runtime's int8 kernels reach ${k.measuredDb.toFixed(1)} dB SQNR where the exact QDQ arithmetic of the same model gives ${k.exactDb.toFixed(1)} dB: ` +
    (reduceRange ? 'the kernels lose precision on this CPU; try --symmetric-activations or keep the worst layers in float (--exclude)' : 'u8×s8 products saturate on CPUs without VNNI; use --reduce-range')
  );
}
