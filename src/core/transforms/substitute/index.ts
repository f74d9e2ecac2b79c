import { UsageError } from '../../errors';
import type { Model, ModelFormat } from '../../ir/graph';
import { substituteDepthwiseOnnx } from './onnx/depthwise';
import { substituteLowRankOnnx, type LowRankOptions } from './onnx/lowrank';
import type { DepthwiseOptions } from './separable';
import { substituteKerasDepthwise } from './tfjs-layers/depthwise';
import type { LayerSubstitution, SubstituteSkip } from './types';

export { DEFAULT_DEPTHWISE_MAX_ERROR, type DepthwiseOptions } from './separable';
export { allocateRanks, type LowRankOptions } from './onnx/lowrank';
export type { LayerSubstitution, SubstituteSkip } from './types';

export interface SubstituteResult {
  model: Model;
  layers: LayerSubstitution[];
  skipped: SubstituteSkip[];
}

/** The one place substitution picks its code by format: each kind's implementation per format. */
const DEPTHWISE: Partial<Record<ModelFormat, (model: Model, opts: DepthwiseOptions) => Promise<SubstituteResult> | SubstituteResult>> = {
  onnx: substituteDepthwiseOnnx,
  'tfjs-layers': substituteKerasDepthwise,
};
const LOWRANK: Partial<Record<ModelFormat, (model: Model, opts: LowRankOptions) => Promise<SubstituteResult>>> = {
  onnx: substituteLowRankOnnx,
};

/** Conv → depthwise + pointwise pair (see separable.ts, onnx/depthwise.ts, tfjs-layers/depthwise.ts). Throws UsageError for other formats. */
export async function substituteDepthwise(model: Model, opts: DepthwiseOptions = {}): Promise<SubstituteResult> {
  const impl = DEPTHWISE[model.format];
  if (!impl) throw new UsageError(`depthwise substitution works on ONNX and TF.js layers models, not ${model.format}`);
  return impl(model, opts);
}

/** Dense layer → two low-rank factors (see onnx/lowrank.ts). Throws UsageError for other formats. */
export async function substituteLowRank(model: Model, opts: LowRankOptions = {}): Promise<SubstituteResult> {
  const impl = LOWRANK[model.format];
  if (!impl) throw new UsageError(`low-rank factorisation works on ONNX models; for ${model.format} use --depthwise`);
  return impl(model, opts);
}
