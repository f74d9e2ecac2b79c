/**
 * Messages between the host and the Compress panel. The panel never sends file paths:
 * it names a data *slot*, and the host keeps the files the user picked in native dialogs,
 * so a webview cannot make the host read an arbitrary path.
 */
import type { Json } from './common';
import type { FromExits, ToExits } from './exits';
import type { JobResult, RecipeChoicesDto, StepSummaryDto } from './jobs';

export type DataSlot = 'calib' | 'eval' | 'labels';

export type CompressChoices = RecipeChoicesDto;

export type FromCompress =
  | { type: 'ready' }
  | { type: 'pick'; slot: DataSlot }
  /** Runs the steps in memory and returns params/MACs after each (no file written). */
  | { type: 'preview'; recipe: Json }
  | { type: 'run'; recipe: Json }
  | { type: 'saveRecipe'; recipe: Json }
  | { type: 'openOutput' }
  | FromExits;

export type ToCompress =
  /** `choices`: the steps and options this model's format supports (from the engine). */
  | { type: 'init'; model: string; format: string; output: string; calib?: string; choices: CompressChoices }
  | { type: 'picked'; slot: DataSlot; file: string }
  | { type: 'preview'; steps: StepSummaryDto[]; before: { params: number; macs: number } }
  | { type: 'result'; result: JobResult<'compress'> }
  | { type: 'error'; message: string }
  | ToExits;
