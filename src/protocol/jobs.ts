/**
 * The worker's jobs: for each kind, its request and its result DTO. Plain types only.
 */
import type { LayerSortKey } from './common';
import type { ExitsJobKinds, ExitsResultDto } from './exits';
import type { GraphDto, LayerRow } from './model';

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
  /** How the output was run when it needs more than the original's inputs (a runtime-widths selector). */
  note?: string;
  warnings?: string[];
}

/** One step of a recipe run or plan: what changed and the totals after it. */
export interface StepSummaryDto {
  step: string;
  detail: string;
  params: number;
  macs: number;
  /** Caveats the step reported; absent when none. */
  notes?: string[];
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

/** Data a step option may read besides the model (the Compress panel's slots of the same names). */
export type DataNeedDto = 'calib' | 'train' | 'trainLabels';

/** One control of a step's form, from the step's option schema (core/transforms/registry.ts `FormField`). */
export interface FormFieldDto {
  /** Option key; nested options are dotted (`options.method`). */
  key: string;
  label: string;
  description: string;
  kind: 'number' | 'choice' | 'boolean';
  values?: Array<string | number>;
  min?: number;
  max?: number;
  step?: number;
  initial: string | number | boolean;
  /** Shown only when the option `key` (dotted) has one of `values`. */
  when?: { key: string; values: Array<string | number> };
  /** Data slots a value reads, keyed by the value as a string ('true' for a switch). */
  needs?: Record<string, DataNeedDto[]>;
}

/** A step the model's format supports, with the options the panel offers. */
export interface StepFormDto {
  step: string;
  summary: string;
  fields: FormFieldDto[];
  /** Runs after all other steps (quantization, early exits). */
  last?: boolean;
  /** Data slots the step reads whatever its options (e.g. a `train` step: training data). */
  needs?: DataNeedDto[];
}

/** An option value in a recipe: plain values, lists, or one level of nested options (`options`). */
export type RecipeValue = string | number | boolean | string[] | { [key: string]: string | number | boolean | string[] };

/** A recipe as a webview or a file gives it. Untrusted: the worker validates it with the step registry. */
export interface RecipeDto {
  steps: Array<{ step: string; [option: string]: RecipeValue }>;
}

/** Training progress of a step that trains (core/train `TrainProgress`), as streamed to the panel. */
export interface TrainProgressDto {
  phase: 'step' | 'epoch';
  /** 1-based epoch, of `epochs`. */
  epoch: number;
  epochs: number;
  /** 1-based step within the epoch, of `steps`. */
  step: number;
  steps: number;
  /** Loss of this step, or the epoch's mean training loss. */
  loss: number;
  lr: number;
  samplesPerSecond: number;
  /** Seconds left at the current speed (validation excluded). */
  etaSeconds: number;
  /** Validation metric after an epoch, when validating. */
  metric?: number;
}

/** A compression's result. `cancelled`: Cancel came during training; `output` is then a temporary file holding the best model so far. */
export interface CompressResultDto {
  output: string;
  steps: StepSummaryDto[];
  report: EvaluationReportDto;
  /** The early-exit step's curve and table, when the recipe ends with one. */
  exits?: ExitsResultDto;
  cancelled?: {
    /** 1-based index of the step that was training, and its id. */
    step: number;
    stepId: string;
    detail: string;
    /** Token of the temporary output, for `resolvePartial`. */
    partial: string;
  };
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
  /**
   * Runs a recipe and writes `output`. With `keepOnCancel`, Cancel during training saves the
   * best model so far (verified) to a temporary file instead: the result's `cancelled` names
   * it, and `resolvePartial` keeps (moves into place) or discards it.
   */
  compress: {
    request: {
      model: string;
      output: string;
      recipe: RecipeDto;
      calib?: string;
      eval?: string;
      labels?: string;
      train?: string;
      trainLabels?: string;
      benchRuns?: number;
      threads?: number;
      keepOnCancel?: boolean;
    };
    result: CompressResultDto;
  };
  /** Keeps (moves to `output`) or discards a cancelled compression's temporary output. */
  resolvePartial: { request: { partial: string; output: string; keep: boolean }; result: { output: string | null } };
  /** The model's format and the forms of the steps it supports (from the step registry). */
  stepForms: { request: { model: string }; result: { format: string; forms: StepFormDto[] } };
  /** A recipe run in memory: params and MACs after each step, nothing written. */
  plan: {
    request: { model: string; recipe: RecipeDto; calib?: string; train?: string; trainLabels?: string };
    result: { before: { params: number; macs: number }; steps: StepSummaryDto[] };
  };
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
/** Any job's result. */
export type AnyJobResult = JobResult<JobKind>;

/** The model summary of `inspect` (the layer table is paged separately). */
export interface InspectDto {
  format: string;
  fileSizeBytes: number;
  layerCount: number;
  weightedLayers: number;
  totals: { params: number; bytes: number; macs: number | null; flops?: number | null; nodes: number; unknownMacsNodes?: number; dequantizedBytes?: number };
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

/** One weight of a layer: name, dtype and shape, and (when computed) statistics and a 256-bin histogram. */
export interface WeightDetailDto {
  name: string;
  dtype: string;
  shape: number[];
  params: number;
  /** In-memory (dequantized) bytes; `stored` is what the file holds when narrower. */
  bytes?: number;
  stored?: { dtype: string; bytes: number };
  /** About its storage (external, shared, not readable…). */
  note?: string;
  min?: number;
  max?: number;
  mean?: number;
  std?: number;
  sparsity?: number;
  entropyBits?: number;
  histogram?: { min: number; max: number; counts: number[] };
}

/** A layer's detail: its row, its inputs and outputs, and statistics per weight. */
export interface TensorDetailDto {
  layer: LayerRow;
  inputs: string[];
  outputs: string[];
  weights: WeightDetailDto[];
  noWeights?: string;
}
