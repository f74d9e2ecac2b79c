import type { Model } from '../../ir/graph';
import type { Dataset } from '../../runtime/data/dataset';
import type { Criterion } from './importance';
import type { ReconstructReport } from './refit';
import type { PruneSchedule } from './schedule';

/** Options and outcome of pruning (shared by the ONNX and TF.js layers paths). */

export interface PruneOptions {
  structured: boolean;
  /** Fraction of each group's channels (structured) or of the weights (unstructured) to remove. */
  ratio?: number;
  /** Fraction of the model's MACs / params to remove (structured). */
  targetMacs?: number;
  targetParams?: number;
  /** Per-group ratios (from sensitivity allocation), keyed by group name. */
  groupRatios?: Record<string, number>;
  /** Precomputed importance per producer layer and channel (TF.js layers models: entropy). */
  layerScores?: Map<string, Float64Array>;
  criterion?: Criterion;
  calib?: Dataset;
  /** Labels of the calibration samples (the Taylor criterion's cross-entropy). */
  calibLabels?: Int32Array;
  recover?: 'none' | 'reconstruct';
  steps?: number;
  /** How a ratio or target is spread over `steps` (default: equal shares; see schedule.ts). */
  schedule?: PruneSchedule;
  /** Group names (first producer) to leave alone. */
  exclude?: string[];
  seed?: number;
  /**
   * Keep channel counts multiples of this (groups of at least 2× that size). CPU kernels
   * work in blocks of 8 channels (ORT's NCHWc on AVX2): odd counts can make a smaller
   * model slower. Default 8; 1 turns it off.
   */
  roundTo?: number;
  /** Unstructured: per layer or one global threshold; or an explicit magnitude threshold. */
  scope?: 'layer' | 'global';
  threshold?: number;
  signal?: AbortSignal;
  onProgress?: (stage: string, fraction?: number) => void;
  /**
   * Recovery by training (fine-tuning, distillation) once the training engine exists: called
   * after each step with the pruned model and the original; returns the recovered model.
   */
  recoveryHook?: (pruned: Model, original: Model, step: number) => Promise<Model>;
}

export interface PrunedGroup {
  name: string;
  producers: string[];
  channels: number;
  removed: number;
  paramsSaved: number;
  macsSaved: number;
}

export interface PruneOutcome {
  model: Model;
  groups: PrunedGroup[];
  skipped: Array<{ name: string; reason: string }>;
  reconstruction: ReconstructReport[];
  notes: string[];
  /** Unstructured: sparsity per weight tensor. */
  sparsity?: Array<{ name: string; elements: number; zeros: number; sparsity: number }>;
}

