import * as path from 'path';
import { UsageError } from '../core/errors';
import { assertOutputNotInput, assertWritableFormat, openModel } from '../core/formats/registry';
import type { Model } from '../core/ir/graph';
import { dynamicModelRefusal } from '../core/analysis/dynamic-models';
import { assertTrainable } from '../core/train';
import { finishJob as coreFinishJob, inputSpecs, JOB_DEFAULTS, openJob as coreOpenJob, stepContext as coreStepContext, type OpenedJob } from '../core/jobs';
import type { EvaluationReport, EvaluateOptions } from '../core/runtime/evaluate';
import type { IOSpec } from '../core/runtime/session';
import { stepById } from '../core/transforms/registry';
import type { Step, StepContext, StepData } from '../core/transforms/step';
import type { FlagSpec } from './args';
import { DATA_FLAGS, dataOptions, shapeFlags } from './data-flags';
import { cliProgress, type CliProgress } from './progress';

/** Flags every compression command shares (data, output, report). */
export const JOB_FLAGS: Record<string, FlagSpec> = {
  ...DATA_FLAGS,
  calib: { type: 'string', placeholder: 'data', help: 'Calibration data: .npy, .pb, an image folder, name=path per input, or random:N (explicitly random).' },
  'calib-labels': { type: 'string', placeholder: 'y.npy', help: 'Integer class labels of the calibration data, one per sample (--criterion taylor: cross-entropy instead of KL to the model’s own outputs).' },
  eval: { type: 'string', placeholder: 'data', help: 'Evaluation data for the before/after report (default: the calibration data, else random samples).' },
  runs: { type: 'number', placeholder: 'N', default: JOB_DEFAULTS.benchRuns, help: 'Latency runs per model in the report.' },
  'no-bench': { type: 'boolean', help: 'Skip the latency measurement.' },
  output: { type: 'string', alias: 'o', placeholder: 'file', help: 'Output file (default: <name>.<suffix>.onnx or .json beside the input; never the input).' },
  json: { type: 'boolean', help: 'Print the report as JSON.' },
  progress: { type: 'boolean', help: 'Show progress on stderr even with --json (a bar with stage and ETA on a terminal, plain lines otherwise).' },
  train: { type: 'string', placeholder: 'data', help: 'Training inputs for steps that fine-tune or distill (--recover finetune|distill, --qat).' },
  'train-labels': { type: 'string', placeholder: 'y.npy', help: 'Integer class labels of the training inputs.' },
};

/** Each kind of job data and its flags. */
const DATA_KIND_FLAGS: Record<StepData, string[]> = { calib: ['calib'], calibLabels: ['calib-labels'], train: ['train', 'train-labels'], eval: ['eval', 'labels'] };

/**
 * JOB_FLAGS for a step: without the data flags of the kinds the step does not read (its
 * `data` declaration), so `--help` lists only flags the command reads and a flag it would
 * ignore is an unknown option.
 */
export function jobFlagsFor(step: Pick<Step, 'data'>): Record<string, FlagSpec> {
  const reads = new Set<StepData>(step.data ?? ['calib', 'calibLabels', 'train', 'eval']);
  const drop = new Set(Object.entries(DATA_KIND_FLAGS).flatMap(([k, flags]) => (reads.has(k as StepData) ? [] : flags)));
  const flags = Object.fromEntries(Object.entries(JOB_FLAGS).filter(([k]) => !drop.has(k)));
  if (!reads.has('calib')) {
    flags.samples = { ...flags.samples, help: 'Random evaluation samples when no --eval is given (random:N says it explicitly).' };
    if (flags.eval) flags.eval = { ...flags.eval, help: 'Evaluation data for the before/after report (default: random samples).' };
  }
  return flags;
}

/** `<name>.<suffix>.onnx` (or `.json` for TF.js) beside the input. */
export function defaultOutput(input: string, suffix: string): string {
  const ext = /\.json$/i.test(input) ? '.json' : '.onnx';
  const base = path.basename(input).replace(/\.(onnx|json)$/i, '');
  return path.join(path.dirname(input), `${base}.${suffix}${ext}`);
}

export interface Job extends OpenedJob {
  output: string;
  /** Stage, ETA and training epochs on stderr (see progress.ts); the engine reports through `onProgress` and `onTrainProgress`. */
  progress: CliProgress;
}

export async function probeInputs(file: string, model = openModel(file)): Promise<IOSpec[]> {
  return inputSpecs(model, file);
}

/** Opens the model, picks the output path (never the input, checked before any work), binds the data. */
export async function openJob(positional: string[], flags: Record<string, unknown>, command: string, suffix: string): Promise<Job> {
  if (positional.length !== 1) throw new UsageError(`${command} takes exactly one model`);
  const input = positional[0];
  const model = openModel(input);
  assertWritableFormat(model, input, command);
  // Before any data is read: a step refuses an early-exit or runtime-widths model (defineStep), in
  // its own words when it checks them itself (train, distill: "cannot be trained or distilled").
  if (stepById(command)?.checksDynamicModels) assertTrainable(model, []);
  else {
    const refused = dynamicModelRefusal(model, command);
    if (refused) throw new UsageError(refused);
  }
  const output = (flags.output as string | undefined) ?? defaultOutput(input, suffix);
  assertOutputNotInput(model, output);
  const inputs = await probeInputs(input, model);
  const job = await coreOpenJob(input, dataOptions(flags, inputs.map((i) => i.name)), model);
  return { ...job, output, progress: cliProgress(flags) };
}

/** Writes the result atomically (verified in its runtime), then measures it against the original. */
export async function finishJob(job: Job, result: Model, flags: Record<string, unknown>, extra: Pick<EvaluateOptions, 'layerOutputs' | 'step' | 'signal'> = {}): Promise<EvaluationReport> {
  try {
    return await coreFinishJob(job, result, job.output, {
      benchRuns: flags['no-bench'] ? false : (flags.runs as number | undefined),
      shapes: shapeFlags(flags, job.inputs),
      onProgress: job.progress.onProgress,
      ...extra,
    });
  } finally {
    job.progress.done();
  }
}

/** The data a step reads, from an opened CLI job, with the CLI's progress. */
export function stepContext(job: Job, extra: Pick<StepContext, 'signal' | 'checkpoint'> = {}): StepContext {
  return coreStepContext(job, { onProgress: job.progress.onProgress, onTrainProgress: job.progress.onTrainProgress, ...extra });
}

/** Per-epoch training curves for `--json` (every training run of the job), or null when nothing trained. */
export function trainingCurves(job: Job): CliProgress['epochs'] | null {
  return job.progress.epochs.length ? job.progress.epochs : null;
}
