/**
 * Messages between the host and the Compress panel. The panel never sends file paths:
 * it names a data *slot*, and the host keeps the files the user picked in native dialogs,
 * so a webview cannot make the host read an arbitrary path.
 */
import type { Json } from './worker';

export type DataSlot = 'calib' | 'eval' | 'labels';

export interface CompressChoices {
  steps: Array<'prune' | 'substitute' | 'quantize'>;
  quantizeModes: string[];
  substituteKinds: string[];
  pruneCriteria: string[];
  recover: string[];
}

export type FromCompress =
  | { type: 'ready' }
  | { type: 'pick'; slot: DataSlot }
  /** Runs the steps in memory and returns params/MACs after each (no file written). */
  | { type: 'preview'; recipe: Json }
  | { type: 'run'; recipe: Json }
  | { type: 'saveRecipe'; recipe: Json }
  | { type: 'openOutput' };

export type ToCompress =
  /** `choices`: the steps and options this model's format supports (from the engine). */
  | { type: 'init'; model: string; format: string; output: string; calib?: string; choices: CompressChoices }
  | { type: 'picked'; slot: DataSlot; file: string }
  | { type: 'preview'; steps: Json; before: Json }
  | { type: 'result'; result: Json }
  | { type: 'error'; message: string };
