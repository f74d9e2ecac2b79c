export { DEFAULT_DEPTHWISE_MAX_ERROR, substituteDepthwise, type DepthwiseOptions } from './onnx/depthwise';
export { substituteLowRank, allocateRanks, type LowRankOptions } from './onnx/lowrank';
export type { LayerSubstitution, SubstituteSkip } from './types';
