import * as fs from 'fs';
import { analyzeModel, layerWeightStats, type LayerInfo, type ModelAnalysis } from '../core/analysis/analyze';
import { pruningSensitivity } from '../core/analysis/sensitivity';
import { CancelledError, UsageError } from '../core/errors';
import { modelSizeBytes, openModel } from '../core/formats/registry';
import { saveVerified } from '../core/runtime/verified-save';
import type { Model } from '../core/ir/graph';
import { parseRecipe, quickQuantize, recipeChoices, runRecipe } from '../core/recipe';
import { benchmarkModels } from '../core/runtime/bench';
import { compareModels } from '../core/runtime/compare';
import { bindDataset, parseDataSpecs, readLabels } from '../core/runtime/data/dataset';
import { evaluateCompression } from '../core/runtime/evaluate';
import { modelInputs } from '../core/runtime/tfjs';
import { ModelSession } from '../core/runtime/session';
import type { JobRequest, Json } from '../protocol/worker';
import { SORT_KEYS, type LayerRow } from '../protocol/webview';
import { buildGraph } from './graph-layout';

/**
 * Job implementations. Everything returned is a plain DTO (JSON): the webview never sees IR
 * objects. Opened models and their analyses are cached by path and modification time, so
 * paging, sorting and filtering the layer table costs no re-read.
 */

export interface JobContext {
  signal: AbortSignal;
  progress(stage: string, fraction?: number): void;
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

const inputsOf = (file: string) => modelInputs(file);

export async function runJob(job: JobRequest, ctx: JobContext): Promise<Json> {
  switch (job.kind) {
    case 'inspect': {
      ctx.progress('reading the model');
      const c = load(job.model);
      const { layers, ...summary } = c.analysis;
      return JSON.parse(JSON.stringify({ ...summary, fileSizeBytes: modelSizeBytes(job.model, c.model), layerCount: layers.length, weightedLayers: layers.filter((l) => l.params > 0).length })) as Json;
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
      if (job.locate !== undefined) return { position: idx.indexOf(job.locate) };
      return { total: idx.length, offset, rows: idx.slice(offset, offset + limit).map((i) => row(c.analysis.layers[i], i)) } as unknown as Json;
    }
    case 'graph': {
      const c = load(job.model);
      ctx.progress('laying out the graph');
      return (await buildGraph(c.analysis.layers, c.analysis.inputs.map((i) => i.name), job.collapse)) as unknown as Json;
    }
    case 'tensor': {
      const c = load(job.model);
      const l = c.analysis.layers.find((x) => x.name === job.layer);
      if (!l) throw new UsageError(`no layer named '${job.layer}'`);
      // Initializers, Constant nodes, dequantized constants and outer-scope constants alike.
      const stats = layerWeightStats(l);
      return JSON.parse(JSON.stringify({ layer: row(l, c.analysis.layers.indexOf(l)), inputs: l.inputs, outputs: l.outputs, weights: stats, ...(l.noWeights ? { noWeights: l.noWeights } : {}) })) as Json;
    }
    case 'quickQuantize': {
      const output = job.output ?? job.model.replace(/\.onnx$/i, '') + '.int8.onnx';
      const q = await quickQuantize(job.model, output, { signal: ctx.signal, onProgress: ctx.progress });
      ctx.progress('measuring size, fidelity and latency');
      const s = await ModelSession.create(job.model);
      const shapes = Object.fromEntries(s.inputs.map((i) => [i.name, i.shape.map((d) => (typeof d === 'number' ? d : 1))]));
      const data = bindDataset(s.inputs, [], { randomSamples: 16, seed: 7, shapes });
      await s.release();
      const report = await evaluateCompression({ model: q.model, path: job.model }, output, { data, dataLabel: '16 random samples', bench: { runs: job.benchRuns ?? 30, threads: job.threads || undefined }, step: 'quantize', signal: ctx.signal });
      return JSON.parse(JSON.stringify({ output, mode: q.mode, reason: q.reason, notes: q.outcome.notes, slowerBecause: q.outcome.slowerBecause, quantizedNodes: q.outcome.quantizedNodes.length, skippedNodes: q.outcome.skippedNodes, report })) as Json;
    }
    case 'compress': {
      const recipe = parseRecipe(job.recipe, 'recipe');
      const model = openModel(job.model);
      const inputs = await modelInputs(job.model, model.format);
      const calib = job.calib ? bindDataset(inputs, parseDataSpecs([job.calib])) : undefined;
      const r = await runRecipe(model, recipe, { calib, signal: ctx.signal, onProgress: ctx.progress });
      await saveVerified(r.model, job.output);
      const evalData = job.eval ? bindDataset(inputs, parseDataSpecs([job.eval])) : calib ?? bindDataset(inputs, [], { randomSamples: 16, shapes: Object.fromEntries(inputs.map((i) => [i.name, i.shape.map((d) => (typeof d === 'number' ? d : 1))])) });
      const dataLabel = job.eval ? evalData.describe() : calib ? `the calibration data (${calib.describe()})` : '16 random samples';
      const report = await evaluateCompression({ model, path: job.model }, job.output, { data: evalData, dataLabel, labels: job.labels ? readLabels(job.labels) : undefined, bench: { runs: job.benchRuns ?? 30, threads: job.threads || undefined }, step: 'compress', signal: ctx.signal, onProgress: ctx.progress });
      return JSON.parse(JSON.stringify({ output: job.output, steps: r.steps, report })) as Json;
    }
    case 'sensitivity': {
      const c = load(job.model);
      const inputs = await inputsOf(job.model);
      const data = job.data
        ? bindDataset(inputs, parseDataSpecs([job.data]))
        : bindDataset(inputs, [], { randomSamples: job.samples ?? 16, seed: 3, shapes: Object.fromEntries(inputs.map((i) => [i.name, i.shape.map((d) => (typeof d === 'number' ? d : 1))])) });
      const r = await pruningSensitivity(c.model, { data, ratios: job.ratios ?? [0.1, 0.3, 0.5, 0.7, 0.9], samples: job.samples ?? 16, metric: job.data ? undefined : 'cosine', signal: ctx.signal, onProgress: (d, t) => ctx.progress('pruning each group alone', d / t) });
      return JSON.parse(JSON.stringify({ ...r, data: job.data ?? `${job.samples ?? 16} random samples` })) as Json;
    }
    case 'recipeChoices': {
      const format = load(job.model).model.format;
      return JSON.parse(JSON.stringify({ format, choices: recipeChoices(format) })) as Json;
    }
    case 'plan': {
      const recipe = parseRecipe(job.recipe, 'recipe');
      const model = openModel(job.model);
      const calib = job.calib ? bindDataset(await inputsOf(job.model), parseDataSpecs([job.calib])) : undefined;
      const before = analyzeModel(model).totals;
      const r = await runRecipe(model, recipe, { calib, signal: ctx.signal, onProgress: ctx.progress });
      return JSON.parse(JSON.stringify({ before: { params: before.params, macs: before.macs }, steps: r.steps })) as Json;
    }
    case 'bench':
      return JSON.parse(JSON.stringify(await benchmarkModels(job.models, { runs: job.runs ?? 50, threads: job.threads || undefined, signal: ctx.signal, onProgress: (d, t) => ctx.progress('benchmarking', d / t) }))) as Json;
    case 'compare': {
      const ref = await ModelSession.create(job.reference, { allowSpinning: false });
      const cand = await ModelSession.create(job.candidate, { allowSpinning: false });
      try {
        const data = job.data ? bindDataset(ref.inputs, parseDataSpecs([job.data])) : bindDataset(ref.inputs, [], { randomSamples: 32, shapes: Object.fromEntries(ref.inputs.map((i) => [i.name, i.shape.map((d) => (typeof d === 'number' ? d : 1))])) });
        const r = await compareModels(ref, cand, data, { batchSize: 32, labels: job.labels ? readLabels(job.labels) : undefined, signal: ctx.signal, onProgress: (d, t) => ctx.progress('comparing', d / t) });
        return JSON.parse(JSON.stringify(r)) as Json;
      } finally {
        await ref.release();
        await cand.release();
      }
    }
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
