/**
 * The worker's jobs: for each kind, its request and its result DTO. Plain types only.
 */
import type { Json, LayerSortKey } from './common';
import type { ExitsJobKinds, ExitsResultDto } from './exits';
import type { GraphDto, LayerRow } from './webview';

/** Size, parameters and MACs of one model. */
export interface ModelFiguresDto {
  sizeBytes: number;
  params: number;
  macs: number;
}

export interface OutputComparisonDto {
  name: string;
  elements: number;
  maxAbsDiff: number;
  meanAbsDiff: number;
  cosine: number;
  /** null when the outputs are identical (infinite SQNR). */
  sqnrDb: number | null;
  top1Agreement?: number;
  top5Agreement?: number;
}

export interface CompareDto {
  samples: number;
  batchSize: number;
  outputs: OutputComparisonDto[];
  accuracy?: { reference: number; candidate: number; correctReference: number; correctCandidate: number; output: string };
}

export interface LatencyDto {
  min: number;
  p50: number;
  p90: number;
  p99: number;
  mean: number;
}

/** The before/after report every compression ends with. */
export interface EvaluationReportDto {
  before: ModelFiguresDto;
  after: ModelFiguresDto;
  /** `data`: what the fidelity was measured on; `runtime`: what ran both models. */
  fidelity?: CompareDto & { data: string; runtime: string };
  latencyMs?: { before: LatencyDto; after: LatencyDto; ratioP50: number; runs: number; batch: number };
  /** How latency was measured, or why it was not. */
  latencyNote?: string;
  warnings?: string[];
}

/** One step of a recipe run or plan: what changed and the totals after it. */
export interface StepSummaryDto {
  step: string;
  detail: string;
  params: number;
  macs: number;
}

export interface BenchDto {
  runs: number;
  warmup: number;
  batch: number;
  threads: number | null;
  interleaved: boolean;
  models: Array<{ path: string; sizeBytes: number; sessionCreateMs: number; latencyMs: LatencyDto; throughput: number; peakRssBytes: number; ratioP50: number; ratioSize: number }>;
}

export interface SensitivityDto {
  metric: 'accuracy' | 'top1Agreement' | 'cosine';
  baseline: number;
  samples: number;
  totals: { params: number; macs: number };
  curves: Array<{ group: string; channels: number; points: Array<{ ratio: number; drop: number; macsSaved: number; paramsSaved: number }> }>;
  skipped: Array<{ name: string; reason: string }>;
  runtime?: string;
  /** What the curves were measured on. */
  data: string;
}

export interface QuickQuantizeDto {
  output: string;
  mode: string;
  reason: string;
  notes: string[];
  slowerBecause: string;
  quantizedNodes: number;
  skippedNodes: Array<{ name: string; op: string; reason: string }>;
  report: EvaluationReportDto;
}

/** The recipe steps and options a format supports (the Compress panel offers exactly these). */
export interface RecipeChoicesDto {
  steps: string[];
  quantizeModes: string[];
  substituteKinds: string[];
  pruneCriteria: string[];
  recover: string[];
}

/**
 * Every job the worker runs: its request (paths are absolute files on the machine that holds
 * the models) and its result. The worker's handlers are typed by this map, so a renamed field
 * fails to compile on both sides instead of breaking the webview at run time.
 */
export interface JobKinds extends ExitsJobKinds {
  inspect: { request: { model: string; weightStats?: boolean; topN?: number }; result: InspectDto };
  layers: {
    request: { model: string; offset: number; limit: number; sortBy?: LayerSortKey; descending?: boolean; filter?: string; locate?: number };
    /** A page of rows, or with `locate` the row's position under the current sort and filter. */
    result: LayersPageDto | { position: number };
  };
  /** Nodes with positions from the layout, edges as [from, to] layer indices. */
  graph: { request: { model: string; collapse?: string[] }; result: GraphResultDto };
  tensor: { request: { model: string; layer: string }; result: TensorDetailDto };
  quickQuantize: { request: { model: string; output?: string; benchRuns?: number; threads?: number }; result: QuickQuantizeDto };
  /** `recipe` is validated by the engine (it may come from a webview or a file). */
  compress: {
    request: { model: string; output: string; recipe: Json; calib?: string; eval?: string; labels?: string; benchRuns?: number; threads?: number };
    /** `exits`: the early-exit step's curve and table, when the recipe ends with one. */
    result: { output: string; steps: StepSummaryDto[]; report: EvaluationReportDto; exits?: ExitsResultDto };
  };
  /** The model's format and the recipe steps and options it supports. */
  recipeChoices: { request: { model: string }; result: { format: string; choices: RecipeChoicesDto } };
  /** A recipe run in memory: params and MACs after each step, nothing written. */
  plan: { request: { model: string; recipe: Json; calib?: string }; result: { before: { params: number; macs: number }; steps: StepSummaryDto[] } };
  bench: { request: { models: string[]; runs?: number; threads?: number }; result: BenchDto };
  /** Pruning sensitivity curves (on random samples unless `data` is given). */
  sensitivity: { request: { model: string; data?: string; ratios?: number[]; samples?: number }; result: SensitivityDto };
  compare: { request: { reference: string; candidate: string; data?: string; labels?: string }; result: CompareDto };
  /** For tests of crash isolation: the worker exits abruptly. */
  crash: { request: Record<never, never>; result: never };
  /** For tests of cancellation: a job that only ends when cancelled (or after `ms`). */
  sleep: { request: { ms: number }; result: null };
}

export type JobKind = keyof JobKinds;
export type JobRequestOf<K extends JobKind> = { kind: K } & JobKinds[K]['request'];
/** Jobs the worker runs. */
export type JobRequest = { [K in JobKind]: JobRequestOf<K> }[JobKind];
export type JobResult<K extends JobKind> = JobKinds[K]['result'];

/** The model summary of `inspect` (the layer table is paged separately). */
export interface InspectDto {
  format: string;
  fileSizeBytes: number;
  layerCount: number;
  weightedLayers: number;
  totals: { params: number; bytes: number; macs: number | null; flops?: number | null };
  [key: string]: unknown;
}

export interface LayersPageDto {
  total: number;
  offset: number;
  rows: LayerRowDto[];
}

/** One row of the layer table and the graph view's DTO (declared with the webview's messages). */
export type LayerRowDto = LayerRow;
export type GraphResultDto = GraphDto;

/** A layer's detail: its row, its inputs and outputs, and statistics per weight. */
export interface TensorDetailDto {
  layer: LayerRow;
  inputs: string[];
  outputs: string[];
  /** Per weight: name, dtype and shape, and (when computed) min/max/mean/std/sparsity; `note` tells about its storage. */
  weights: Array<{ name: string; dtype: string; shape: number[]; note?: string; min?: number; max?: number; mean?: number; std?: number; sparsity?: number }>;
}

