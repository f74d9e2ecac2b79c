/**
 * Messages between the host and the Compress panel. The panel never sends file paths:
 * it names a data *slot*, and the host keeps the files the user picked in native dialogs,
 * so a webview cannot make the host read an arbitrary path.
 */
import type { FromExits, ToExits } from './exits';
import type { CompressResultDto, RecipeDto, StepFormDto, StepSummaryDto, TrainProgressDto } from './jobs';

/** Calibration, evaluation and its labels, training inputs and their labels. */
export type DataSlot = 'calib' | 'eval' | 'labels' | 'train' | 'trainLabels';
export const DATA_SLOTS: readonly DataSlot[] = ['calib', 'eval', 'labels', 'train', 'trainLabels'];

export type FromCompress =
  | { type: 'ready' }
  | { type: 'pick'; slot: DataSlot }
  /** Runs the steps in memory and returns params/MACs after each (no file written). */
  | { type: 'preview'; recipe: RecipeDto }
  | { type: 'run'; recipe: RecipeDto }
  /** Stops the running job; during training the best model so far comes back (result with `cancelled`). */
  | { type: 'cancel' }
  /** After a cancelled run: keep the best model so far (move it to the output) or discard it. */
  | { type: 'resolvePartial'; keep: boolean }
  | { type: 'saveRecipe'; recipe: RecipeDto }
  | { type: 'openOutput' }
  | FromExits;

export type ToCompress =
  /** `forms`: the steps this model's format supports and their options (from the engine's registry); `data`: slots already filled (file names). */
  | { type: 'init'; model: string; format: string; output: string; data: Partial<Record<DataSlot, string>>; forms: StepFormDto[] }
  | { type: 'picked'; slot: DataSlot; file: string }
  | { type: 'preview'; steps: StepSummaryDto[]; before: { params: number; macs: number } }
  /** Training progress of the running step, batched (≤ 10 messages a second); `stage`: the recipe step, e.g. "step 1/2 (prune): …". */
  | { type: 'train'; progress: TrainProgressDto[]; stage?: string }
  | { type: 'result'; result: CompressResultDto }
  /** The cancelled run's temporary output was kept (moved to `output`) or discarded. */
  | { type: 'resolved'; kept: boolean; output?: string }
  | { type: 'error'; message: string }
  | ToExits;
