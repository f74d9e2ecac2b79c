import * as fs from 'fs';
import { analyzeModel } from './analysis/analyze';
import { CancelledError, ModelError, UsageError } from './errors';
import { openModel } from './formats/registry';
import { saveVerified } from './runtime/verified-save';
import type { Model } from './ir/graph';
import type { Dataset } from './runtime/data/dataset';
import { bindDataset } from './runtime/data/dataset';
import { ModelSession } from './runtime/session';
import { pruneModel } from './transforms/prune';
import { QUANTIZE_MODES, quantizeModel, type QuantizeMode } from './transforms/quantize';
import { substituteDepthwise, substituteLowRank } from './transforms/substitute';

/**
 * Compression recipes: an ordered list of steps (prune, substitute, quantize) as JSON. The
 * VS Code panel saves them and the CLI runs them (`compress --recipe`), through this one
 * runner, so a recipe means the same thing everywhere.
 */

export type RecipeStep =
  | { step: 'quantize'; mode: QuantizeMode; options?: Record<string, unknown> }
  | { step: 'prune'; structured?: boolean; ratio?: number; targetMacs?: number; targetParams?: number; criterion?: string; recover?: 'none' | 'reconstruct'; steps?: number }
  | { step: 'substitute'; kind: 'depthwise' | 'lowrank'; multiplier?: number; targetParams?: number; energy?: number; rank?: number };

export interface Recipe {
  steps: RecipeStep[];
}

/** Validates untrusted recipe JSON (from a file or a webview) before any work starts. */
export function parseRecipe(value: unknown, source = 'recipe'): Recipe {
  const fail = (why: string): never => {
    throw new UsageError(`${source}: ${why}`);
  };
  if (!value || typeof value !== 'object') fail('must be a JSON object with a "steps" array');
  const steps = (value as { steps?: unknown }).steps;
  if (!Array.isArray(steps) || steps.length === 0) fail('"steps" must be a non-empty array');
  const num = (v: unknown, name: string, lo = 0, hi = 1) => {
    if (v === undefined) return undefined;
    if (typeof v !== 'number' || !(v > lo && v < hi)) fail(`${name} must be a number in (${lo}, ${hi})`);
    return v as number;
  };
  const out: RecipeStep[] = (steps as unknown[]).map((s, i) => {
    if (!s || typeof s !== 'object') return fail(`step ${i + 1} is not an object`);
    const o = s as Record<string, unknown>;
    switch (o.step) {
      case 'quantize':
        if (!QUANTIZE_MODES.includes(o.mode as QuantizeMode)) fail(`step ${i + 1}: mode must be one of ${QUANTIZE_MODES.join(', ')}`);
        if (o.options !== undefined && (typeof o.options !== 'object' || o.options === null || Array.isArray(o.options))) fail(`step ${i + 1}: options must be an object`);
        return { step: 'quantize', mode: o.mode as QuantizeMode, options: o.options as Record<string, unknown> | undefined };
      case 'prune': {
        const targets = [o.ratio, o.targetMacs, o.targetParams].filter((x) => x !== undefined).length;
        if (targets !== 1) fail(`step ${i + 1}: prune needs exactly one of ratio, targetMacs, targetParams`);
        if (o.recover !== undefined && o.recover !== 'none' && o.recover !== 'reconstruct') fail(`step ${i + 1}: recover is none or reconstruct`);
        return {
          step: 'prune',
          structured: o.structured !== false,
          ratio: num(o.ratio, 'ratio'),
          targetMacs: num(o.targetMacs, 'targetMacs'),
          targetParams: num(o.targetParams, 'targetParams'),
          criterion: typeof o.criterion === 'string' ? o.criterion : undefined,
          recover: o.recover as 'none' | undefined,
          steps: typeof o.steps === 'number' ? o.steps : undefined,
        };
      }
      case 'substitute':
        if (o.kind !== 'depthwise' && o.kind !== 'lowrank') fail(`step ${i + 1}: kind is depthwise or lowrank`);
        return {
          step: 'substitute',
          kind: o.kind as 'depthwise',
          multiplier: typeof o.multiplier === 'number' ? o.multiplier : undefined,
          targetParams: num(o.targetParams, 'targetParams'),
          energy: num(o.energy, 'energy', 0, 1.0000001),
          rank: typeof o.rank === 'number' ? o.rank : undefined,
        };
      default:
        return fail(`step ${i + 1}: unknown step '${String(o.step)}' (steps: quantize, prune, substitute)`);
    }
  });
  const q = out.findIndex((s) => s.step === 'quantize');
  if (q >= 0 && q !== out.length - 1) fail('quantize must be the last step (other steps need float weights)');
  return { steps: out };
}

/** What a recipe may contain for a model format: the Compress panel offers exactly these. */
export interface RecipeChoices {
  steps: Array<RecipeStep['step']>;
  quantizeModes: QuantizeMode[];
  substituteKinds: Array<'depthwise' | 'lowrank'>;
  pruneCriteria: string[];
  recover: Array<'none' | 'reconstruct'>;
}

export function recipeChoices(format: string): RecipeChoices {
  switch (format) {
    case 'onnx':
      return { steps: ['prune', 'substitute', 'quantize'], quantizeModes: ['dynamic', 'static', 'fp16', 'int4', 'cluster'], substituteKinds: ['lowrank', 'depthwise'], pruneCriteria: ['l1', 'l2', 'entropy', 'random'], recover: ['none', 'reconstruct'] };
    case 'tfjs-layers':
      return { steps: ['prune', 'substitute', 'quantize'], quantizeModes: ['uint8', 'uint16', 'fp16'], substituteKinds: ['depthwise'], pruneCriteria: ['l1', 'l2', 'entropy', 'random'], recover: ['none', 'reconstruct'] };
    case 'tfjs-graph':
      return { steps: ['quantize'], quantizeModes: ['uint8', 'uint16', 'fp16'], substituteKinds: [], pruneCriteria: [], recover: [] };
    default:
      return { steps: [], quantizeModes: [], substituteKinds: [], pruneCriteria: [], recover: [] };
  }
}

export function readRecipe(file: string): Recipe {
  let text: string;
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    throw new ModelError(file, 'cannot read the recipe');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ModelError(file, `not valid JSON (${(e as Error).message})`);
  }
  return parseRecipe(json, file);
}

export interface RecipeOptions {
  calib?: Dataset;
  signal?: AbortSignal;
  onProgress?: (stage: string, fraction?: number) => void;
}

export interface StepSummary {
  step: string;
  detail: string;
  params: number;
  macs: number;
}

/** Runs the steps in order on an in-memory model; each step starts from the previous result. */
export async function runRecipe(model: Model, recipe: Recipe, opts: RecipeOptions = {}): Promise<{ model: Model; steps: StepSummary[] }> {
  let current = model;
  const steps: StepSummary[] = [];
  for (const [i, s] of recipe.steps.entries()) {
    if (opts.signal?.aborted) throw new CancelledError();
    const progress = (stage: string, f?: number) => opts.onProgress?.(`step ${i + 1}/${recipe.steps.length} (${s.step}): ${stage}`, f);
    progress('starting');
    let detail = '';
    if (s.step === 'prune') {
      const r = await pruneModel(current, { structured: s.structured ?? true, ratio: s.ratio, targetMacs: s.targetMacs, targetParams: s.targetParams, criterion: s.criterion as 'l1' | undefined, recover: s.recover, steps: s.steps, calib: opts.calib, signal: opts.signal, onProgress: progress });
      current = r.model;
      detail = s.structured === false ? `unstructured, ${r.sparsity?.length ?? 0} tensors` : `${r.groups.length} groups pruned`;
    } else if (s.step === 'substitute') {
      const r = s.kind === 'depthwise'
        ? await substituteDepthwise(current, { multiplier: s.multiplier, calib: opts.calib, signal: opts.signal })
        : await substituteLowRank(current, { targetParams: s.targetParams, energy: s.energy, rank: s.rank, calib: opts.calib, signal: opts.signal });
      current = r.model;
      detail = `${r.layers.length} layers (${s.kind})`;
    } else {
      const o = s.options ?? {};
      const r = await quantizeModel(current, { ...(o as object), mode: s.mode, calib: opts.calib, signal: opts.signal, onProgress: progress });
      current = r.model;
      detail = `${s.mode}: ${r.quantizedNodes.length} quantized, ${r.skippedNodes.length} left`;
    }
    const t = analyzeModel(current).totals;
    steps.push({ step: s.step, detail, params: t.params, macs: t.macs });
  }
  return { model: current, steps };
}

/**
 * The one-click INT8 choice: dynamic int8 for MatMul-heavy models (most MACs in MatMul/Gemm,
 * as in transformers and MLPs), static int8 with generated calibration data otherwise
 * (convolutional models), since ORT only fuses convolutions into integer kernels statically.
 */
export async function quickQuantize(file: string, output: string, opts: { signal?: AbortSignal; onProgress?: (stage: string, f?: number) => void; calibSamples?: number } = {}) {
  const model = openModel(file);
  if (model.format.startsWith('tfjs')) throw new UsageError('one-click INT8 works on ONNX models; TF.js models are quantized in their own manifest: use Compress Model… or `quantize --mode uint8`');
  if (model.format !== 'onnx') throw new UsageError(`one-click INT8 works on ONNX models; ${model.format} models are read-only here`);
  const a = analyzeModel(model);
  const dense = a.byOpType.filter((o) => o.op === 'MatMul' || o.op === 'Gemm').reduce((s, o) => s + o.macs, 0);
  const share = a.totals.macs ? dense / a.totals.macs : 1;
  const mode: QuantizeMode = share >= 0.5 ? 'dynamic' : 'static';
  const reason =
    mode === 'dynamic'
      ? `${(share * 100).toFixed(0)}% of the MACs are in MatMul/Gemm: dynamic int8 (activations quantized at run time)`
      : `${((1 - share) * 100).toFixed(0)}% of the MACs are outside MatMul/Gemm: static int8, calibrated on ${opts.calibSamples ?? 16} generated random samples (for real calibration data use the CLI: quantize --mode static --calib data)`;
  let calib: Dataset | undefined;
  if (mode === 'static') {
    const s = await ModelSession.create(file);
    const shapes = Object.fromEntries(s.inputs.map((i) => [i.name, i.shape.map((d) => (typeof d === 'number' ? d : 1))]));
    calib = bindDataset(s.inputs, [], { randomSamples: opts.calibSamples ?? 16, seed: 1, shapes });
    await s.release();
  }
  const r = await quantizeModel(model, { mode, calib, signal: opts.signal, onProgress: opts.onProgress });
  await saveVerified(r.model, output);
  return { model, outcome: r, mode, reason };
}
