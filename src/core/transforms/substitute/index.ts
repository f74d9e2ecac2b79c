export { DEFAULT_DEPTHWISE_MAX_ERROR, substituteDepthwise, type DepthwiseOptions } from './depthwise';
export { substituteLowRank, allocateRanks, type LowRankOptions } from './lowrank';
export type { LayerSubstitution, SubstituteSkip } from './types';
