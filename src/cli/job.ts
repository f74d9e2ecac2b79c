import * as path from 'path';
import { UsageError } from '../core/errors';
import { assertOutputNotInput, assertWritableFormat, openModel } from '../core/formats/registry';
import { saveVerified } from '../core/runtime/verified-save';
import type { Model } from '../core/ir/graph';
import { readLabels, type Dataset } from '../core/runtime/data/dataset';
import { evaluateCompression, verificationSamples, type EvaluationReport, type EvaluateOptions } from '../core/runtime/evaluate';
import type { IOSpec } from '../core/runtime/session';
import { checkLabels, outputClasses } from '../core/runtime/data/checks';
import { modelInputs } from '../core/runtime/tfjs';
import type { StepContext } from '../core/transforms/step';
import type { FlagSpec } from './args';
import { DATA_FLAGS, labelsFlag, openData, randomData, shapeFlags } from './data-flags';
import { cliProgress } from './progress';

/** Flags every compression command shares (data, output, report). */
export const JOB_FLAGS: Record<string, FlagSpec> = {
  ...DATA_FLAGS,
  calib: { type: 'string', placeholder: 'data', help: 'Calibration data: .npy, .pb, an image folder, name=path per input, or random:N (explicitly random).' },
  eval: { type: 'string', placeholder: 'data', help: 'Evaluation data for the before/after report (default: the calibration data, else random samples).' },
  runs: { type: 'number', placeholder: 'N', default: 50, help: 'Latency runs per model in the report.' },
  'no-bench': { type: 'boolean', help: 'Skip the latency measurement.' },
  output: { type: 'string', alias: 'o', placeholder: 'file', help: 'Output file (default: <name>.<suffix>.onnx or .json beside the input; never the input).' },
  json: { type: 'boolean', help: 'Print the report as JSON.' },
  progress: { type: 'boolean', help: 'Show progress on stderr even with --json (a bar with stage and ETA on a terminal, plain lines otherwise).' },
  train: { type: 'string', placeholder: 'data', help: 'Training inputs for steps that fine-tune or distill (--recover finetune|distill, --qat).' },
  'train-labels': { type: 'string', placeholder: 'y.npy', help: 'Integer class labels of the training inputs.' },
};

/** `<name>.<suffix>.onnx` (or `.json` for TF.js) beside the input. */
export function defaultOutput(input: string, suffix: string): string {
  const ext = /\.json$/i.test(input) ? '.json' : '.onnx';
  const base = path.basename(input).replace(/\.(onnx|json)$/i, '');
  return path.join(path.dirname(input), `${base}.${suffix}${ext}`);
}

export interface Job {
  input: string;
  model: Model;
  output: string;
  inputs: IOSpec[];
  calib?: { data: Dataset; label: string; random: boolean };
  evalData: { data: Dataset; label: string; random: boolean };
  labels?: Int32Array;
  /** Stage and ETA on stderr (see progress.ts); the engine reports through `onProgress`. */
  progress: { onProgress?: (stage: string, fraction?: number) => void; done: () => void };
  /** `--train` / `--train-labels`, when given. */
  train?: { data: Dataset; label: string; random: boolean };
  trainLabels?: Int32Array;
}

export async function probeInputs(file: string, model?: Model): Promise<IOSpec[]> {
  return modelInputs(file, model?.format);
}

/** Opens the model, picks the output path (never the input), binds calibration/evaluation data. */
export async function openJob(positional: string[], flags: Record<string, unknown>, command: string, suffix: string): Promise<Job> {
  if (positional.length !== 1) throw new UsageError(`${command} takes exactly one model`);
  const input = positional[0];
  const model = openModel(input);
  assertWritableFormat(model, input, command);
  const output = (flags.output as string | undefined) ?? defaultOutput(input, suffix);
  assertOutputNotInput(model, output);
  const inputs = await probeInputs(input, model);
  const calib = openData(flags.calib as string | undefined, inputs, flags);
  const evalData = openData(flags.eval as string | undefined, inputs, flags) ?? calib ?? scaledRandomData(model, inputs, flags);
  const labels = labelsFlag(flags, evalData.data.count, outputClasses(model));
  if (labels && evalData.random) throw new UsageError('--labels needs real evaluation data (--eval)');
  const train = openData(flags.train as string | undefined, inputs, flags);
  let trainLabels: Int32Array | undefined;
  if (flags['train-labels']) {
    const file = flags['train-labels'] as string;
    trainLabels = readLabels(file);
    if (train && trainLabels.length !== train.data.count) throw new UsageError(`the labels file ${file} holds ${trainLabels.length} labels for ${train.data.count} training samples`);
    checkLabels(trainLabels, file, undefined, outputClasses(model));
  }
  return { input, model, output, inputs, calib, evalData, labels, train, trainLabels, progress: cliProgress(flags) };
}

/** Random evaluation data: `--samples` if given, else a count scaled to the model's cost (the label says so). */
function scaledRandomData(model: Model, inputs: IOSpec[], flags: Record<string, unknown>): { data: Dataset; label: string; random: boolean } {
  if (flags.samples !== undefined) return randomData(inputs, flags);
  const { count, macs } = verificationSamples(model);
  const d = randomData(inputs, flags, count);
  return macs > 0 ? { ...d, label: `${d.label} (count scaled to ${(macs / 1e6).toFixed(1)}M MACs per sample; --samples sets it)` } : d;
}

/** Writes the result atomically, then measures it against the original. */
export async function finishJob(job: Job, result: Model, flags: Record<string, unknown>, extra: Pick<EvaluateOptions, 'layerOutputs' | 'step'> = {}): Promise<EvaluationReport> {
  await saveVerified(result, job.output);
  try {
    return await evaluateCompression({ model: job.model, path: job.input }, job.output, {
      data: job.evalData.data,
      dataLabel: job.evalData.label,
      labels: job.labels,
      bench: flags['no-bench'] ? false : { runs: (flags.runs as number | undefined) ?? 50, shapes: shapeFlags(flags, job.inputs) },
      onProgress: job.progress.onProgress,
      ...extra,
    });
  } finally {
    job.progress.done();
  }
}

/** The data a step reads, from an opened job. */
export function stepContext(job: Job): StepContext {
  return { calib: job.calib?.data, eval: job.evalData.data, labels: job.labels, input: job.input, train: job.train?.random ? undefined : job.train?.data, trainLabels: job.trainLabels, onProgress: job.progress.onProgress };
}
