import * as crypto from 'crypto';
import * as fs from 'fs';
import * as path from 'path';
import { analyzeModel, layerWeightStats, type LayerInfo, type ModelAnalysis } from '../core/analysis/analyze';
import { pruningSensitivity } from '../core/transforms/prune/sensitivity';
import { CancelledError, UsageError } from '../core/errors';
import { assertOutputNotInput, modelSizeBytes, openModel } from '../core/formats/registry';
import type { Model } from '../core/ir/graph';
import { quickQuantize } from '../core/jobs/quick-int8';
import { assertRecipeOutput, parseRecipe } from '../core/recipe';
import { makeScratchDir, releaseScratch } from '../core/util/scratch';
import { stepForms } from '../core/transforms/registry';
import { benchmarkModels } from '../core/runtime/bench';
import { compareModels } from '../core/runtime/compare';
import { bindData, finishJob, inputSpecs, JOB_DEFAULTS, openJob, randomData, readLabelsFor, runRecipeJob } from '../core/jobs';
import { evaluateCompression } from '../core/runtime/evaluate';
import { ModelSession } from '../core/runtime/session';
import type { AnyJobResult, JobKind, JobRequest, JobRequestOf, JobResult, TrainProgressDto } from '../protocol/worker';
import { SORT_KEYS, type LayerRow } from '../protocol/webview';
import { dropExitRuns, keepExitRun, reexportRun } from './exits';
import { buildGraph } from './graph-layout';

/**
 * Job implementations. Everything returned is a plain DTO (JSON): the webview never sees IR
 * objects. Opened models and their analyses are cached by path and modification time, so
 * paging, sorting and filtering the layer table costs no re-read.
 */

export interface JobContext {
  signal: AbortSignal;
  progress(stage: string, fraction?: number): void;
  /** Training progress of steps that train (the caller throttles it for the wire). */
  train?(p: TrainProgressDto): void;
}

interface Cached {
  mtimeMs: number;
  size: number;
  model: Model;
  analysis: ModelAnalysis;
  /** Row order by sort key, computed on demand. */
  orders: Map<string, number[]>;
}

const cache = new Map<string, Cached>();
const MAX_CACHED = 4;

function load(file: string): Cached {
  const st = fs.statSync(file);
  const hit = cache.get(file);
  if (hit && hit.mtimeMs === st.mtimeMs && hit.size === st.size) return hit;
  const model = openModel(file);
  const analysis = analyzeModel(model, { topN: 20 });
  const entry = { mtimeMs: st.mtimeMs, size: st.size, model, analysis, orders: new Map<string, number[]>() };
  cache.set(file, entry);
  while (cache.size > MAX_CACHED) cache.delete(cache.keys().next().value as string);
  return entry;
}

function row(l: LayerInfo, index: number): LayerRow {
  const shape = l.outputShapes[0];
  return {
    index,
    name: l.name,
    op: l.domain ? `${l.domain}:${l.op}` : l.op,
    params: l.params,
    bytes: l.bytes,
    macs: l.macs,
    dtype: Object.keys(l.bytesByDtype).join('+'),
    outputShape: shape ? `[${shape.map((d) => (d === null ? '?' : d)).join(', ')}]` : '?',
    weights: l.weights.length,
    ...(l.noWeights ? { noWeights: l.noWeights } : {}),
    ...(l.branchMacs ? { branchMacs: l.branchMacs } : {}),
  };
}


/**
 * A job's result on the wire: type-checked against the job kind's DTO (src/protocol/jobs.ts),
 * then made plain JSON (typed arrays and class instances become arrays and objects).
 */
function wire<K extends JobKind>(_kind: K, value: JobResult<K>): JobResult<K> {
  return JSON.parse(JSON.stringify(value)) as JobResult<K>;
}

/**
 * Temporary outputs of cancelled compressions (token → folder and file), created by this
 * process only: `resolvePartial` moves or deletes nothing else.
 */
const partials = new Map<string, { dir: string; file: string; output: string }>();

/**
 * A compression: run the recipe, save (verified) and evaluate. Cancelled during training with
 * `keepOnCancel`: the best model so far is saved, verified, to a hidden folder beside the
 * output and evaluated (no latency runs), and the result names it for `resolvePartial`.
 */
async function compress(job: JobRequestOf<'compress'>, ctx: JobContext): Promise<JobResult<'compress'>> {
  const recipe = parseRecipe(job.recipe, 'recipe');
  assertRecipeOutput(recipe, job.output);
  const opened = await openJob(job.model, { calib: job.calib, eval: job.eval, labels: job.labels, train: job.train, trainLabels: job.trainLabels });
  assertOutputNotInput(opened.model, job.output);
  const r = await runRecipeJob(opened, recipe, { signal: ctx.signal, onProgress: ctx.progress, onTrainProgress: ctx.train, keepOnCancel: job.keepOnCancel });
  if (!r.cancelled) {
    const report = await finishJob(opened, r.model, job.output, { benchRuns: job.benchRuns, threads: job.threads, step: 'compress', signal: ctx.signal, onProgress: ctx.progress });
    const exits = keepExitRun(r.model, job.output);
    return wire('compress', { output: job.output, steps: r.steps, report, ...(exits ? { exits } : {}) });
  }
  ctx.progress('saving the best model so far');
  // Removed when the user resolves it, or when the worker ends first (no orphaned copies).
  const dir = makeScratchDir('.mc-partial-', path.dirname(path.resolve(job.output)));
  const file = path.join(dir, path.basename(job.output));
  try {
    // The job's signal is aborted: saving and measuring the kept model runs to its end (no latency runs).
    const report = await finishJob(opened, r.model, file, { benchRuns: false, step: 'compress', onProgress: ctx.progress });
    const token = crypto.randomBytes(12).toString('hex');
    partials.set(token, { dir, file, output: path.resolve(job.output) });
    return wire('compress', { output: file, steps: r.steps, report, cancelled: { ...r.cancelled, partial: token } });
  } catch (e) {
    releaseScratch(dir);
    throw e;
  }
}

/** Keeps (renames every file of the temporary output into the output's folder) or discards a cancelled compression's output. */
function resolvePartial(job: JobRequestOf<'resolvePartial'>): JobResult<'resolvePartial'> {
  const p = partials.get(job.partial);
  if (!p) throw new UsageError('that temporary output is no longer known to the worker (it was resolved already, or the worker restarted)');
  if (path.resolve(job.output) !== p.output) throw new UsageError(`the temporary output belongs to ${p.output}, not ${job.output}`);
  partials.delete(job.partial);
  try {
    if (!job.keep) return { output: null };
    const into = path.dirname(p.output);
    // Same folder, so each rename is atomic; the model file goes last, after its data files.
    const names = fs.readdirSync(p.dir).sort((a, b) => Number(a === path.basename(p.file)) - Number(b === path.basename(p.file)));
    for (const n of names) fs.renameSync(path.join(p.dir, n), path.join(into, n));
    return { output: p.output };
  } finally {
    releaseScratch(p.dir);
  }
}

export async function runJob(job: JobRequest, ctx: JobContext): Promise<AnyJobResult> {
  switch (job.kind) {
    case 'inspect': {
      ctx.progress('reading the model');
      const c = load(job.model);
      const { layers, ...summary } = c.analysis;
      return wire('inspect', { ...summary, fileSizeBytes: modelSizeBytes(job.model, c.model), layerCount: layers.length, weightedLayers: layers.filter((l) => l.params > 0).length });
    }
    case 'layers': {
      const c = load(job.model);
      const sortBy = job.sortBy ?? 'index';
      if (!SORT_KEYS.includes(sortBy)) throw new UsageError(`cannot sort by '${String(sortBy)}'`);
      const limit = Math.max(0, Math.min(1000, Math.floor(job.limit)));
      const offset = Math.max(0, Math.floor(job.offset));
      let order = c.orders.get(sortBy);
      if (!order) {
        const ls = c.analysis.layers;
        order = ls.map((_, i) => i);
        if (sortBy !== 'index') {
          order.sort((a, b) => {
            const x = ls[a][sortBy as 'params'] ?? -1;
            const y = ls[b][sortBy as 'params'] ?? -1;
            return typeof x === 'string' ? String(x).localeCompare(String(y)) : x - (y as number) || a - b;
          });
        }
        c.orders.set(sortBy, order);
      }
      let idx = job.descending ? [...order].reverse() : order;
      const f = job.filter?.trim().toLowerCase();
      if (f) idx = idx.filter((i) => c.analysis.layers[i].name.toLowerCase().includes(f) || c.analysis.layers[i].op.toLowerCase().includes(f));
      if (job.locate !== undefined) return wire('layers', { position: idx.indexOf(job.locate) });
      return wire('layers', { total: idx.length, offset, rows: idx.slice(offset, offset + limit).map((i) => row(c.analysis.layers[i], i)) });
    }
    case 'graph': {
      const c = load(job.model);
      ctx.progress('laying out the graph');
      return wire('graph', (await buildGraph(c.analysis.layers, c.analysis.inputs.map((i) => i.name), job.collapse)));
    }
    case 'tensor': {
      const c = load(job.model);
      const l = c.analysis.layers.find((x) => x.name === job.layer);
      if (!l) throw new UsageError(`no layer named '${job.layer}'`);
      // Initializers, Constant nodes, dequantized constants and outer-scope constants alike.
      const stats = layerWeightStats(l);
      return wire('tensor', { layer: row(l, c.analysis.layers.indexOf(l)), inputs: l.inputs, outputs: l.outputs, weights: stats, ...(l.noWeights ? { noWeights: l.noWeights } : {}) });
    }
    case 'quickQuantize': {
      const output = job.output ?? job.model.replace(/\.onnx$/i, '') + '.int8.onnx';
      const q = await quickQuantize(job.model, output, { signal: ctx.signal, onProgress: ctx.progress });
      ctx.progress('measuring size, fidelity and latency');
      const opened = await openJob(job.model, {}, q.model);
      const report = await evaluateCompression({ model: q.model, path: job.model }, output, { data: opened.evalData.data, dataLabel: opened.evalData.label, bench: { runs: job.benchRuns ?? JOB_DEFAULTS.benchRuns, threads: job.threads || undefined }, step: 'quantize', signal: ctx.signal });
      return wire('quickQuantize', { output, mode: q.mode, reason: q.reason, notes: q.outcome.notes, slowerBecause: q.outcome.slowerBecause, quantizedNodes: q.outcome.quantizedNodes.length, skippedNodes: q.outcome.skippedNodes, report });
    }
    case 'compress':
      return compress(job, ctx);
    case 'resolvePartial':
      return resolvePartial(job);
    case 'sensitivity': {
      const c = load(job.model);
      const inputs = await inputSpecs(c.model, job.model);
      const samples = job.samples ?? JOB_DEFAULTS.sensitivitySamples;
      const data = bindData(job.data, inputs) ?? randomData(inputs, samples);
      const r = await pruningSensitivity(c.model, { data: data.data, ratios: job.ratios ?? [0.1, 0.3, 0.5, 0.7, 0.9], samples, metric: job.data ? undefined : 'cosine', signal: ctx.signal, onProgress: (d, t) => ctx.progress('pruning each group alone', d / t) });
      return wire('sensitivity', { ...r, data: job.data ?? data.label });
    }
    case 'stepForms': {
      const format = load(job.model).model.format;
      return wire('stepForms', { format, forms: stepForms(format) });
    }
    case 'plan': {
      const recipe = parseRecipe(job.recipe, 'recipe');
      const opened = await openJob(job.model, { calib: job.calib, train: job.train, trainLabels: job.trainLabels });
      const before = analyzeModel(opened.model).totals;
      const r = await runRecipeJob(opened, recipe, { signal: ctx.signal, onProgress: ctx.progress, onTrainProgress: ctx.train, plan: true });
      return wire('plan', { before: { params: before.params, macs: before.macs }, steps: r.steps });
    }
    case 'bench':
      return wire('bench', await benchmarkModels(job.models, { runs: job.runs ?? JOB_DEFAULTS.benchRuns, threads: job.threads || undefined, signal: ctx.signal, onProgress: (d, t) => ctx.progress('benchmarking', d / t) }));
    case 'compare': {
      const ref = await ModelSession.create(job.reference, { allowSpinning: false });
      const cand = await ModelSession.create(job.candidate, { allowSpinning: false });
      try {
        const data = (bindData(job.data, ref.inputs) ?? randomData(ref.inputs, JOB_DEFAULTS.randomSamples)).data;
        const r = await compareModels(ref, cand, data, { batchSize: 32, labels: readLabelsFor(job.labels, data.count), signal: ctx.signal, onProgress: (d, t) => ctx.progress('comparing', d / t) });
        return wire('compare', r);
      } finally {
        await ref.release();
        await cand.release();
      }
    }
    case 'exitsReexport':
      ctx.progress('re-exporting the early exits');
      return wire('exitsReexport', await reexportRun(job, ctx.signal));
    case 'exitsDrop':
      return wire('exitsDrop', { dropped: dropExitRuns(job.ids) });
    case 'sleep':
      await new Promise<void>((resolve, reject) => {
        const t = setTimeout(resolve, job.ms);
        ctx.signal.addEventListener('abort', () => {
          clearTimeout(t);
          reject(new CancelledError());
        });
      });
      return null;
    case 'crash':
      process.exit(70);
  }
}
