/**
 * Messages between the extension host and the worker process. Typed messages only: no
 * imports, no behaviour. Every request carries an id; the worker answers with progress
 * events and exactly one `result` or `error` for that id.
 */

export type Json = null | boolean | number | string | Json[] | { [k: string]: Json };

/** Jobs the worker runs. Paths are absolute files on the machine that holds the models. */
export type JobRequest =
  | { kind: 'inspect'; model: string; weightStats?: boolean; topN?: number }
  | { kind: 'layers'; model: string; offset: number; limit: number; sortBy?: LayerSortKey; descending?: boolean; filter?: string; locate?: number }
  /** Nodes with positions from the layout, edges as [from, to] layer indices. */
  | { kind: 'graph'; model: string; collapse?: string[] }
  | { kind: 'tensor'; model: string; layer: string }
  | { kind: 'quickQuantize'; model: string; output?: string; benchRuns?: number; threads?: number }
  /** `recipe` is validated by the engine (it may come from a webview or a file). */
  | { kind: 'compress'; model: string; output: string; recipe: Json; calib?: string; eval?: string; labels?: string; benchRuns?: number; threads?: number }
  /** The model's format and the recipe steps and options it supports. */
  | { kind: 'recipeChoices'; model: string }
  /** A recipe run in memory: params and MACs after each step, nothing written. */
  | { kind: 'plan'; model: string; recipe: Json; calib?: string }
  | { kind: 'bench'; models: string[]; runs?: number; threads?: number }
  /** Pruning sensitivity curves (on random samples unless `data` is given). */
  | { kind: 'sensitivity'; model: string; data?: string; ratios?: number[]; samples?: number }
  | { kind: 'compare'; reference: string; candidate: string; data?: string; labels?: string }
  /** For tests of crash isolation: the worker exits abruptly. */
  | { kind: 'crash' }
  /** For tests of cancellation: a job that only ends when cancelled (or after `ms`). */
  | { kind: 'sleep'; ms: number };

export type LayerSortKey = 'index' | 'name' | 'op' | 'params' | 'bytes' | 'macs';

export type HostToWorker =
  | { type: 'run'; id: number; job: JobRequest }
  | { type: 'cancel'; id: number };

export type WorkerToHost =
  | { type: 'ready'; pid: number }
  | { type: 'progress'; id: number; stage: string; fraction?: number }
  | { type: 'result'; id: number; value: Json }
  | { type: 'error'; id: number; kind: 'model' | 'usage' | 'cancelled' | 'unavailable' | 'internal'; message: string };
