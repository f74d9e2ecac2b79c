import { UsageError } from '../errors';
import * as fs from 'fs';
import { modelFiles, openModel } from '../formats/registry';
import { sameFile } from '../util/atomic-write';
import type { Model } from '../ir/graph';
import { DataType } from '../ir/dtype';
import { bindDataset, Dataset, parseDataSpecs, readLabels } from '../runtime/data/dataset';
import type { ImageOptions } from '../runtime/data/images';
import { checkLabels, outputClasses } from '../runtime/data/checks';
import { randomSpec } from '../runtime/data/sources';
import { evaluateCompression, verificationSamples, type EvaluateOptions, type EvaluationReport } from '../runtime/evaluate';
import type { IOSpec } from '../runtime/session';
import { modelInputs } from '../runtime/tfjs';
import { saveVerified } from '../runtime/verified-save';
import { rssStage } from '../runtime/rss-log';
import { runRecipe, type Recipe, type RecipeCancelled, type RecipeOptions, type StepSummary } from '../recipe';
import type { Step, StepContext, StepResult } from '../transforms/step';

/**
 * One job layer for the CLI and the editor's worker: open a model, bind calibration and
 * evaluation data, run a step or a recipe, save, evaluate — with one set of defaults.
 */

/** The defaults every job uses, from the CLI and from the editor alike. */
export const JOB_DEFAULTS = {
  /** Seed of every generated (random) sample set. */
  seed: 0,
  /** Latency runs per model in a before/after report (the editor's `modelCompressor.benchmarkRuns` default). */
  benchRuns: 50,
  /** Random samples when none are given and no count is derived from the model (`random` alone, compare). */
  randomSamples: 32,
  /** Random samples for pruning sensitivity curves and generated calibration data (one-click INT8). */
  sensitivitySamples: 16,
  calibrationSamples: 16,
} as const;

export interface BoundData {
  data: Dataset;
  /** What the data is, for reports ("digits_calib_x.npy (256 samples)", "32 random samples"). */
  label: string;
  random: boolean;
}

/** How data options are given (by flags or by the editor's slots). */
export interface DataOptions {
  /** Data specs: files, image folders, `name=path` per input, or `random:N` (explicitly random). */
  calib?: string | string[];
  eval?: string | string[];
  /** Integer labels for the calibration data (the Taylor criterion's cross-entropy). */
  calibLabels?: string;
  /** Integer labels for the evaluation data. */
  labels?: string;
  /** Training data and its labels, for steps that fine-tune or distill. */
  train?: string | string[];
  trainLabels?: string;
  /** Random sample count, overriding the derived one. */
  samples?: number;
  seed?: number;
  /** Fixed input shapes, by input name. */
  shapes?: Record<string, number[]>;
  image?: Partial<ImageOptions>;
  /** The model's metadata: `shape:<input>` = `1x3x48x320` sizes symbolic dims of random data and image folders. */
  metadata?: Array<[string, string]>;
}

/**
 * A model's inputs, from the IR (ONNX and TF.js layers models; no runtime session). TF.js
 * graph models name their inputs as TensorFlow.js does, so they are asked of TensorFlow.js.
 */
export async function inputSpecs(model: Model, file: string): Promise<IOSpec[]> {
  if (model.format === 'tfjs-graph') return modelInputs(file, model.format);
  const g = model.graph;
  return g.inputs
    .filter((v) => !g.initializers.has(v.name))
    .map((v) => {
      const t = v.type?.kind === 'tensor' ? v.type : undefined;
      const shape = (t?.shape ?? []).map((d, k) => (d === null && k === 0 && model.format === 'tfjs-layers' ? 'batch' : typeof d === 'number' && d < 0 ? null : d));
      return { name: v.name, dtype: t?.dtype ?? DataType.FLOAT, shape };
    });
}

/** Fixed shapes for generated data where the editor cannot ask for `--shape`: unknown dims become 1. */
export function unknownDimsAsOne(inputs: IOSpec[]): Record<string, number[]> {
  return Object.fromEntries(inputs.map((i) => [i.name, i.shape.map((d) => (typeof d === 'number' && d > 0 ? d : 1))]));
}

/** N random samples (uniform in [0, 1) for float inputs), seeded. */
export function randomData(inputs: IOSpec[], count: number, opts: Pick<DataOptions, 'seed' | 'shapes' | 'metadata'> = {}): BoundData {
  const data = bindDataset(inputs, [], { randomSamples: count, seed: opts.seed ?? JOB_DEFAULTS.seed, shapes: opts.shapes, metadata: opts.metadata });
  // The sizes given to symbolic dims are part of what the report must state.
  return { data, label: `${count} random samples${data.assumed.length ? ` (assumed ${data.assumed.join(', ')})` : ''}`, random: true };
}

/** Binds a data option; `random:N` asks for N random samples explicitly (never implied). */
export function bindData(values: string | string[] | undefined, inputs: IOSpec[], opts: DataOptions = {}, role?: string): BoundData | undefined {
  if (values === undefined) return undefined;
  const list = (Array.isArray(values) ? values : [values]).flatMap((v) => v.split(',')).filter(Boolean);
  const n = randomSpec(list, opts.samples ?? JOB_DEFAULTS.randomSamples);
  if (n !== undefined) return randomData(inputs, n, opts);
  const data = bindDataset(inputs, parseDataSpecs(list), { shapes: opts.shapes, image: opts.image, metadata: opts.metadata, role });
  return { data, label: data.describe(), random: false };
}

/** 1234 → "1.2K", 2.6e6 → "2.6M", 3e9 → "3.0G" (figures in reports). */
function compactCount(n: number): string {
  for (const [d, u] of [[1e9, 'G'], [1e6, 'M'], [1e3, 'K']] as const) if (n >= d) return `${(n / d).toFixed(1)}${u}`;
  return String(Math.round(n));
}

/** Random evaluation data: `samples` if given, else a count scaled to the model's cost (the label says so). */
export function evaluationRandomData(model: Model, inputs: IOSpec[], opts: DataOptions = {}): BoundData {
  if (opts.samples !== undefined) return randomData(inputs, opts.samples, opts);
  const { count, macs } = verificationSamples(model);
  const d = randomData(inputs, count, opts);
  return macs > 0 ? { ...d, label: `${d.label} (count scaled to ${compactCount(macs)} MACs per sample; --samples sets it)` } : d;
}

/**
 * Reads a labels file, refused (UsageError naming the file) when it holds fewer labels than
 * `count` samples or a label outside the model's `classes`.
 */
export function readLabelsFor(file: string | undefined, count: number, classes?: number): Int32Array | undefined {
  if (!file) return undefined;
  const l = readLabels(file);
  checkLabels(l, file, count, classes);
  return l;
}

export interface OpenedJob {
  input: string;
  model: Model;
  inputs: IOSpec[];
  calib?: BoundData;
  calibLabels?: Int32Array;
  evalData: BoundData;
  labels?: Int32Array;
  /** `train` / `trainLabels`, when given. */
  train?: BoundData;
  trainLabels?: Int32Array;
}

/** Opens the model and binds its data: evaluation defaults to the calibration data, else scaled random samples. */
export async function openJob(input: string, options: DataOptions = {}, model = openModel(input)): Promise<OpenedJob> {
  rssStage(`opened ${input}`);
  const opts: DataOptions = { metadata: model.metadata, ...options };
  const inputs = await inputSpecs(model, input);
  const calib = bindData(opts.calib, inputs, opts);
  const evalData = bindData(opts.eval, inputs, opts) ?? firstSamples(calib, opts.samples) ?? evaluationRandomData(model, inputs, opts);
  const classes = outputClasses(model);
  const labels = readLabelsFor(opts.labels, evalData.data.count, classes);
  if (labels && evalData.random) throw new UsageError('--labels needs real evaluation data (--eval)');
  const calibLabels = readCalibLabels(opts.calibLabels, calib, classes);
  const train = bindData(opts.train, inputs, opts, 'training');
  let trainLabels: Int32Array | undefined;
  if (opts.trainLabels) {
    trainLabels = readLabels(opts.trainLabels);
    if (train && trainLabels.length !== train.data.count) throw new UsageError(`the labels file ${opts.trainLabels} holds ${trainLabels.length} labels for ${train.data.count} training samples`);
    checkLabels(trainLabels, opts.trainLabels, undefined, classes);
  }
  return { input, model, inputs, calib, calibLabels, evalData, labels, train, trainLabels };
}

/** `--calib-labels`: one integer label per calibration sample (real data only), within the model's classes. */
function readCalibLabels(file: string | undefined, calib: BoundData | undefined, classes?: number): Int32Array | undefined {
  if (!file) return undefined;
  if (!calib || calib.random) throw new UsageError('--calib-labels needs real calibration data (--calib data.npy)');
  const l = readLabels(file);
  if (l.length !== calib.data.count) throw new UsageError(`the labels file ${file} holds ${l.length} labels for ${calib.data.count} calibration samples`);
  checkLabels(l, file, undefined, classes);
  return l;
}

/**
 * The calibration data as evaluation data: `--samples N` keeps its first N samples, which
 * bounds what the before/after report costs (two models run over every sample).
 */
function firstSamples(d: BoundData | undefined, samples: number | undefined): BoundData | undefined {
  if (!d || samples === undefined || !(samples < d.data.count)) return d;
  const n = Math.max(1, Math.floor(samples));
  return { ...d, data: new Dataset(d.data.sources, n, d.data.assumed), label: `the first ${n} of ${d.label}` };
}

/** The data a step reads, from an opened job. */
export function stepContext(job: OpenedJob, extra: StepExtras = {}): StepContext {
  return { calib: job.calib?.data, calibLabels: job.calibLabels, eval: job.evalData.data, evalIsRandom: job.evalData.random, labels: job.labels, input: job.input, train: job.train?.random ? undefined : job.train?.data, trainLabels: job.trainLabels, ...extra };
}

/** What the caller adds to a job's data: cancel, progress, a training checkpoint. */
export type StepExtras = Pick<StepContext, 'signal' | 'onProgress' | 'onTrainProgress' | 'checkpoint'>;

export async function runStep<O>(job: OpenedJob, step: Step, options: Record<string, unknown>, extra: StepExtras = {}): Promise<StepResult<O>> {
  return (await step.apply(job.model, options, stepContext(job, extra))) as StepResult<O>;
}

/**
 * Runs a recipe on an opened job. `onTrainProgress` receives the training progress of steps
 * that train (with the step's index and id); with `keepOnCancel`, a cancel during training
 * returns the best model so far (`cancelled` says where) instead of throwing.
 */
export async function runRecipeJob(
  job: OpenedJob,
  recipe: Recipe,
  extra: Omit<StepExtras, 'onTrainProgress'> & Pick<RecipeOptions, 'onTrainProgress' | 'keepOnCancel'> & { plan?: boolean } = {},
): Promise<{ model: Model; steps: StepSummary[]; cancelled?: RecipeCancelled }> {
  const { onTrainProgress, plan, keepOnCancel, ...rest } = extra;
  return runRecipe(job.model, recipe, { ...stepContext(job, rest), onTrainProgress, plan, keepOnCancel });
}

export interface FinishOptions extends Pick<EvaluateOptions, 'layerOutputs' | 'step' | 'signal' | 'onProgress'> {
  /** Latency runs (default JOB_DEFAULTS.benchRuns); false: no latency measurement. */
  benchRuns?: number | false;
  threads?: number;
  /** Fixed input shapes for the latency measurement (`--shape`). */
  shapes?: Record<string, number[]>;
}

/** Writes the result atomically (verified), then measures it against the original. */
export async function finishJob(job: OpenedJob, result: Model, output: string, opts: FinishOptions = {}): Promise<EvaluationReport> {
  rssStage('step done');
  await saveVerified(result, output);
  // The files just written (read back from the output), never one of the input's.
  let written: string[];
  try {
    written = modelFiles(output);
  } catch {
    written = [output];
  }
  written = written.filter((f) => !(job.model.inputFiles ?? [job.input]).some((i) => sameFile(i, f)));
  const { benchRuns, threads, shapes, ...rest } = opts;
  try {
    return await evaluateCompression({ model: job.model, path: job.input }, output, {
      data: job.evalData.data,
      dataLabel: job.evalData.label,
      labels: job.labels,
      bench: benchRuns === false ? false : { runs: benchRuns ?? JOB_DEFAULTS.benchRuns, threads: threads || undefined, shapes },
      ...rest,
    });
  } catch (e) {
    // All or nothing: a job that fails (or is cancelled) after writing leaves no output behind.
    for (const f of written) fs.rmSync(f, { force: true });
    throw e;
  }
}
