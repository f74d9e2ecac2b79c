/**
 * Early exits in the Compress panel: the result of an early-exit step (its threshold curve and
 * per-exit table), and re-exporting it at another threshold. Plain types only.
 *
 * The worker keeps the trained state of the last runs (the model with its heads and the
 * per-exit observations on the evaluation data) under an id; a re-export names that id and a
 * threshold, never a file, and is written over the run's own output.
 */

/** The range of a confidence threshold (max softmax probability, or 1 − normalised entropy). */
export const EXIT_THRESHOLD_MIN = 0;
export const EXIT_THRESHOLD_MAX = 1;
/** Shape of a kept run's id (a random UUID). */
export const EXIT_RUN_ID = /^[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}$/;

/** One exit: the fraction of samples leaving there, their score, and the MACs each paid. */
export interface ExitRowDto {
  tensor: string;
  /** Fraction of the original's MACs computed before this exit. */
  position: number;
  /** null: the exit is off. */
  threshold: number | null;
  samples: number;
  score: number | null;
  macs: number;
}

/** The outcome of one set of thresholds on the run's evaluation data. */
export interface ExitTableDto {
  thresholds: Array<number | null>;
  exits: ExitRowDto[];
  final: { samples: number; score: number | null; macs: number };
  /** Accuracy (with labels) or top-1 agreement with the original, of the whole model. */
  score: number;
  /** MACs per sample, expected on the evaluation data. */
  expectedMacs: number;
  originalMacs: number;
  originalScore: number;
}

/** What the result view of an early-exit step shows. */
export interface ExitsResultDto {
  /** The kept run, named by re-exports. */
  id: string;
  metric: 'accuracy' | 'agreement';
  form: 'if' | 'multi-output';
  /** One shared threshold per point, from EXIT_THRESHOLD_MIN to EXIT_THRESHOLD_MAX in equal steps. */
  curve: Array<{ threshold: number; expectedMacs: number; score: number }>;
  /** The thresholds the run calibrated and their table (what the output holds now). */
  calibrated: ExitTableDto;
  /** Where the model was written (re-exports replace it). */
  output: string;
}

/** A re-export: the file written, its table, and what ORT measured on it at batch 1. */
export interface ExitsReexportDto {
  id: string;
  output: string;
  threshold: number;
  table: ExitTableDto;
  /** Fractions per exit (0 for exits that are off), the final output last; score of the model's output. */
  measured: { samples: number; fractions: number[]; score: number };
}

/** The worker's jobs for early exits (merged into `JobKinds`). */
export interface ExitsJobKinds {
  /** Writes the kept run `id` with one threshold for every exit, verified in ORT before it takes its name. */
  exitsReexport: { request: { id: string; threshold: number }; result: ExitsReexportDto };
  /** Forgets kept runs (the panel closed). */
  exitsDrop: { request: { ids: string[] }; result: { dropped: number } };
}

/** Panel → host. */
export type FromExits = { type: 'reexport'; id: string; threshold: number };

/** Host → panel. */
export type ToExits = { type: 'reexported'; result: ExitsReexportDto } | { type: 'reexportFailed'; id: string; message: string };
