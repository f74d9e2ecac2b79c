import { analyzeModel } from '../analysis/analyze';
import { ModelError, UsageError } from '../errors';
import { openModel } from '../formats/registry';
import { DataType } from '../ir/dtype';
import type { Model } from '../ir/graph';
import { benchmarkModels, modelSizeBytes, type LatencyStats } from './bench';
import { activationBytesPerSample, captureLockstep, DEFAULT_BATCH_BYTES, modelFixedBatch, planCaptureGroups } from './capture';
import { compareModels, hostValues, type CompareResult } from './compare';
import type { Dataset } from './data/dataset';
import { fidelityWarnings, type StepKind } from './fidelity-warnings';
import { rssStage } from './rss-log';
import { ALTERNATING, ModelSession, sessionSource, type HostTensor } from './session';
import { TfjsRunner } from './tfjs';

/**
 * The before/after report every compression step ends with: size, params and MACs, fidelity
 * (and accuracy with labels) on the given data, per-layer SQNR, and latency measured with the
 * two models interleaved in one run.
 */

export interface ModelFigures {
  sizeBytes: number;
  params: number;
  macs: number;
}

export interface LayerError {
  name: string;
  output: string;
  sqnrDb: number | null;
}

export interface EvaluationReport {
  before: ModelFigures;
  after: ModelFigures;
  /** `runtime`: what ran both models (ONNX Runtime, or TensorFlow.js and its backend). */
  fidelity?: CompareResult & { data: string; runtime: string };
  latencyMs?: { before: LatencyStats; after: LatencyStats; ratioP50: number; runs: number; batch: number };
  layers?: LayerError[];
  /** How latency was measured, or why it was not. */
  latencyNote?: string;
  /** How the output was run when it needs more than the original's inputs (a runtime-widths selector). */
  note?: string;
  /**
   * What the verification cost, in ms of wall time per stage (fidelity on the evaluation
   * data, per-layer SQNR, interleaved latency); `--samples` and `--no-bench` trim them.
   */
  costMs: { fidelity: number; layers: number; latency: number };
  /** Fidelity or accuracy collapses, each with what helps (see fidelity-warnings.ts). */
  warnings?: string[];
}

export interface EvaluateOptions {
  data?: Dataset;
  dataLabel?: string;
  labels?: Int32Array;
  batchSize?: number;
  /** Nodes whose outputs to compare one by one (their output names exist in both models). */
  layerOutputs?: Array<{ name: string; output: string }>;
  layerSamples?: number;
  bench?: { runs: number; warmup?: number; batch?: number; shapes?: Record<string, number[]>; threads?: number } | false;
  signal?: AbortSignal;
  onProgress?: (stage: string, fraction?: number) => void;
  /** The kind of step measured, so warnings suggest what helps for it. */
  step?: StepKind;
}

/**
 * How many random samples verify a model of this cost when no data and no count are given:
 * a budget of multiply-accumulates per model (about two seconds of TensorFlow.js on its wasm
 * backend for TF.js models, run by TensorFlow.js; twenty times that for ONNX Runtime), divided
 * by the model's MACs per sample, kept within [4, 32]. A model whose MACs are unknown gets 32.
 */
export function verificationSamples(model: Model): { count: number; macs: number } {
  const macs = analyzeModel(model).totals.macs;
  const budget = model.format.startsWith('tfjs') ? 4e9 : 8e10;
  const count = macs > 0 ? Math.max(4, Math.min(32, Math.round(budget / macs))) : 32;
  return { count, macs };
}

/**
 * The selector input of a runtime-widths model (metadata `runtime_widths`, written by
 * transforms/widths) with the value that runs its full width: `width` = 1 (the narrowest listed
 * width ≥ 1, the full one) or `budget` = 1 (all of the full width's MACs). Undefined for any
 * other model. The input must be one the original model does not have.
 */
export function fullWidthSelector(model: Model, original?: Model): { input: string; value: number } | undefined {
  const meta = model.metadata.find(([k]) => k === 'runtime_widths');
  if (!meta) return undefined;
  let named: unknown;
  try {
    named = (JSON.parse(meta[1]) as { input?: unknown }).input;
  } catch {
    named = undefined;
  }
  // Files written before the metadata named the budget input say 'width' for both selectors.
  const names = [...(typeof named === 'string' ? [named] : []), 'width', 'budget'];
  const input = names.find((n) => model.graph.inputs.some((i) => i.name === n) && !original?.graph.inputs.some((i) => i.name === n));
  return input === undefined ? undefined : { input, value: 1 };
}

export function figures(model: Model, path: string): ModelFigures {
  const a = analyzeModel(model);
  return { sizeBytes: modelSizeBytes(path, model), params: a.totals.params, macs: a.totals.macs };
}

export async function evaluateCompression(original: { model: Model; path: string }, outputPath: string, opts: EvaluateOptions): Promise<EvaluationReport> {
  const outModel = openModel(outputPath);
  rssStage('output reopened');
  const report: EvaluationReport = { before: figures(original.model, original.path), after: figures(outModel, outputPath), costMs: { fidelity: 0, layers: 0, latency: 0 } };
  let t0 = performance.now();
  const lap = () => {
    const t = performance.now();
    const d = t - t0;
    t0 = t;
    return Math.round(d);
  };
  // An early-exit model (nested If with an `exit_index` output) answers from an exit head when it is
  // confident: its logits differ from the original's by design, and a batch leaves an exit only when
  // every sample in it is confident. It is compared per sample (batch 1) and judged by its decisions.
  const earlyExit = outModel.metadata.some(([k]) => k === 'early_exit') && outModel.graph.outputs.some((o) => o.name === 'exit_index');
  // A runtime-widths model has a selector input the original lacks: measured at its full width.
  const selector = fullWidthSelector(outModel, original.model);
  if (selector) report.note = `measured at full width ('${selector.input}' = ${selector.value}); early-exit --widths reports every width`;
  const candidateFeeds: Record<string, HostTensor> = selector ? { [selector.input]: { dtype: DataType.FLOAT, dims: [1], data: Float32Array.of(selector.value) } } : {};
  try {
    if (opts.data) {
      opts.onProgress?.('measuring fidelity');
      const tfjsModel = original.model.format.startsWith('tfjs');
      const open = (p: string, m: Model) => (tfjsModel ? TfjsRunner.create(p) : ModelSession.create(sessionSource(m, p), ALTERNATING, p));
      const ref = await open(original.path, original.model);
      const cand = await open(outputPath, outModel);
      try {
        // TF.js holds each batch's activations at once: smaller batches keep the peak memory down.
        const r = await compareModels(ref, cand, opts.data, { batchSize: earlyExit ? 1 : (opts.batchSize ?? (tfjsModel ? 8 : 32)), labels: opts.labels, signal: opts.signal, candidateFeeds });
        const runtime = ref instanceof TfjsRunner ? `TensorFlow.js (${ref.backend} backend)` : 'ONNX Runtime';
        report.fidelity = { ...r, data: opts.dataLabel ?? opts.data.describe(), runtime };
        rssStage('fidelity measured');
      } finally {
        await ref.release();
        await cand.release();
      }
      report.costMs.fidelity = lap();
      if (opts.layerOutputs?.length && !tfjsModel) {
        opts.onProgress?.('measuring per-layer error');
        report.layers = await layerErrors(original.model, outModel, opts.layerOutputs, opts.data, opts.layerSamples ?? 16, opts.batchSize ?? 16);
        report.costMs.layers = lap();
        rssStage('per-layer SQNR measured');
      }
    }
    // Runtime widths are fine-tuned (the full width too) by distillation: judged by their decisions as well.
    report.warnings = fidelityWarnings({ ...report, decisionsOnly: earlyExit || selector !== undefined }, opts.step);
    lap();
    if (opts.bench) {
      opts.onProgress?.('measuring latency (interleaved)');
      try {
        const b = await benchmarkModels([original.path, outputPath], { runs: opts.bench.runs, warmup: opts.bench.warmup ?? 5, batch: opts.bench.batch ?? 1, shapes: opts.bench.shapes, threads: opts.bench.threads, signal: opts.signal, constants: selector ? { [selector.input]: selector.value } : undefined, sizes: [report.before.sizeBytes, report.after.sizeBytes] });
        report.latencyMs = { before: b.models[0].latencyMs, after: b.models[1].latencyMs, ratioP50: b.models[1].ratioP50, runs: b.runs, batch: b.batch };
        if (original.model.format !== 'onnx') report.latencyNote = 'latency measured with ONNX Runtime on ONNX exports of both models (same NHWC inputs)';
        if (earlyExit) report.latencyNote = 'latency measured on random inputs, which rarely leave at an early exit (the worst case: every head runs); the early-exit step measures batch-1 latency on the evaluation data';
      } catch (e) {
        // A TF.js model whose layers have no ONNX conversion: say so instead of failing the job.
        if (original.model.format === 'onnx' || !(e instanceof UsageError)) throw e;
        report.latencyNote = `latency not measured: ${e.message}`;
      }
      report.costMs.latency = lap();
      rssStage('latency measured');
    }
  } catch (e) {
    // The output was written and checked by this tool: failing to run it is the tool's bug, not a bad input.
    if (e instanceof ModelError && e.file === outputPath) throw new Error(`verifying the written output ${outputPath} failed: ${e.problem}`);
    throw e;
  }
  return report;
}

/**
 * Bytes one batch of both models' captured layer outputs may take. Each group of outputs is a
 * session pair of its own, and the outputs a session exposes decide which ops ORT may fuse (an
 * exposed value cannot be fused away), so a different grouping gives slightly different
 * figures: this stays at twice the capture default, where it was before that default halved.
 */
const LAYER_BATCH_BYTES = 2 * DEFAULT_BATCH_BYTES;

/**
 * Per-layer SQNR of `cand` against `ref`, streamed: both models run in lockstep on the same
 * batches, tensors in groups so one batch of one group stays within `maxBatchBytes`; only
 * Σref² and Σ(ref−cand)² per output are kept.
 */
async function layerErrors(ref: Model, cand: Model, layers: Array<{ name: string; output: string }>, data: Dataset, samples: number, batchSize: number, maxBatchBytes?: number): Promise<LayerError[]> {
  const names = [...new Set(layers.map((l) => l.output))];
  const limit = Math.min(samples, data.count);
  const perSample = activationBytesPerSample(ref, names, data);
  // Two models' values are held per batch: plan for twice the bytes.
  const budget = (maxBatchBytes ?? LAYER_BATCH_BYTES) / 2;
  const plan = planCaptureGroups(perSample, names, batchSize, budget, modelFixedBatch(ref));
  const signal = new Map<string, number>(names.map((n) => [n, 0]));
  const noise = new Map<string, number>(names.map((n) => [n, 0]));
  for (const group of plan.groups) {
    await captureLockstep(
      [
        { model: ref, names: group },
        { model: cand, names: group },
      ],
      data,
      { batchSize: plan.batchSize, limit, session: ALTERNATING },
      ({ values: [a, b] }) => {
        for (const n of group) {
          const x = hostValues(a[n]);
          const y = hostValues(b[n]);
          let s = 0;
          let e = 0;
          for (let k = 0; k < x.length; k++) {
            s += x[k] * x[k];
            e += (x[k] - y[k]) ** 2;
          }
          signal.set(n, signal.get(n)! + s);
          noise.set(n, noise.get(n)! + e);
        }
      },
    );
  }
  return layers.map(({ name, output }) => {
    const e = noise.get(output)!;
    return { name, output, sqnrDb: e === 0 ? null : 10 * Math.log10(signal.get(output)! / e) };
  });
}
