/**
 * Messages between the host and the Compress panel. The panel never sends file paths:
 * it names a data *slot*, and the host keeps the files the user picked in native dialogs,
 * so a webview cannot make the host read an arbitrary path.
 */
import type { Json } from './worker';

export type DataSlot = 'calib' | 'eval' | 'labels';

export type FromCompress =
  | { type: 'ready' }
  | { type: 'pick'; slot: DataSlot }
  /** Runs the steps in memory and returns params/MACs after each (no file written). */
  | { type: 'preview'; recipe: Json }
  | { type: 'run'; recipe: Json }
  | { type: 'saveRecipe'; recipe: Json }
  | { type: 'openOutput' };

export type ToCompress =
  | { type: 'init'; model: string; output: string; calib?: string }
  | { type: 'picked'; slot: DataSlot; file: string }
  | { type: 'preview'; steps: Json; before: Json }
  | { type: 'result'; result: Json }
  | { type: 'error'; message: string };
