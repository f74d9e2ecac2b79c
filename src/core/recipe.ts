import * as fs from 'fs';
import * as path from 'path';
import type { z } from 'zod';
import { analyzeModel } from './analysis/analyze';
import { CancelledError, CancelledWithResult, ModelError, UsageError } from './errors';
import { assertOutputNotInput, openModel } from './formats/registry';
import type { Model } from './ir/graph';
import type { Dataset } from './runtime/data/dataset';
import type { TrainProgress } from './train/api';
import { LAST_STEPS, MAX_RECIPE_STEPS, STEP_IDS, stepById } from './transforms/registry';
import { didYouMean, optionInfo, renderRule, validateOptions, type StepContext } from './transforms/step';

/**
 * Compression recipes: an ordered list of steps (prune, substitute, train, distill, quantize,
 * early-exit) as JSON. The VS Code panel saves them and the CLI runs them (`compress
 * --recipe`), through this one runner, so a recipe means the same thing everywhere.
 */

/** One recipe step: its id and its options (defaults filled in), validated by the step's schema. */
export interface RecipeStep {
  step: string;
  options: Record<string, unknown>;
}

export interface Recipe {
  steps: RecipeStep[];
}

/**
 * Validates untrusted recipe JSON (from a file or a webview) before any work starts, with
 * each step's own option schema: unknown keys are errors naming the nearest valid key, and
 * every range is checked (UsageError, exit 2). With `baseDir` (the folder of a recipe file),
 * relative values of file options (`OptionInfo.file`: a distill step's teacher) are resolved
 * against it; a recipe given as data (from the panel) keeps its paths as they are.
 */
export function parseRecipe(value: unknown, source = 'recipe', baseDir?: string): Recipe {
  const fail = (why: string): never => {
    throw new UsageError(`${source}: ${why}`);
  };
  if (!value || typeof value !== 'object' || Array.isArray(value)) fail('must be a JSON object with a "steps" array');
  for (const k of Object.keys(value as object)) if (k !== 'steps' && k !== '$schema') fail(`unknown key '${k}'${didYouMean(k, ['steps', '$schema'])}`);
  const steps = (value as { steps?: unknown }).steps;
  if (!Array.isArray(steps) || steps.length === 0) fail('"steps" must be a non-empty array');
  if ((steps as unknown[]).length > MAX_RECIPE_STEPS) fail(`at most ${MAX_RECIPE_STEPS} steps`);
  const out: RecipeStep[] = (steps as unknown[]).map((s, i) => {
    if (!s || typeof s !== 'object' || Array.isArray(s)) return fail(`step ${i + 1} is not an object`);
    const { step: id, ...rest } = s as Record<string, unknown>;
    const step = typeof id === 'string' ? stepById(id) : undefined;
    if (!step) return fail(`step ${i + 1}: unknown step '${String(id)}'${typeof id === 'string' ? didYouMean(id, STEP_IDS) : ` (steps: ${STEP_IDS.join(', ')})`}`);
    const r = validateOptions(step, rest, (p) => p.map(String).join('.'));
    if (!r.ok) {
      if (r.unknownKey) fail(`unknown key '${r.unknownKey.key}' in step ${i + 1} (${step.id})${r.unknownKey.hint}`);
      fail(`step ${i + 1} (${step.id}): ${r.message}`);
    }
    const options = (r as { value: Record<string, unknown> }).value;
    // File options (a distill step's teacher) are relative to the recipe's folder, not the cwd.
    if (baseDir) {
      for (const [k, field] of Object.entries(step.options.shape)) {
        const v = options[k];
        if (optionInfo.get(field as z.ZodType)?.file && typeof v === 'string' && !path.isAbsolute(v)) options[k] = path.resolve(baseDir, v);
      }
    }
    return { step: step.id, options };
  });
  const early = out.findIndex((s, i) => i < out.length - 1 && s.step in LAST_STEPS);
  if (early >= 0) fail(`step ${early + 1} (${out[early].step}) must be the last step: ${LAST_STEPS[out[early].step]}`);
  return { steps: out };
}

/** Why a recipe needs calibration data, if it does (e.g. "step 2 (quantize): mode static"). */
export function recipeNeedsCalib(recipe: Recipe): string | undefined {
  for (const [i, s] of recipe.steps.entries()) {
    const why = stepById(s.step)!.needsCalib?.(s.options);
    if (why) return `step ${i + 1} (${s.step}): ${renderRule(why, (k) => k)}`;
  }
  return undefined;
}

/** Why a recipe needs training inputs (--train), if it does (e.g. "step 2 (distill)"). */
export function recipeNeedsTrain(recipe: Recipe): string | undefined {
  for (const [i, s] of recipe.steps.entries()) {
    const why = stepById(s.step)!.needsTrain?.(s.options);
    if (why) return `step ${i + 1} (${s.step})${why === s.step ? '' : `: ${renderRule(why, (k) => k)}`}`;
  }
  return undefined;
}

/** Why a recipe needs real evaluation data (--eval), if it does (e.g. "step 2 (early-exit)"). */
export function recipeNeedsEval(recipe: Recipe): string | undefined {
  for (const [i, s] of recipe.steps.entries()) {
    const why = stepById(s.step)!.needsEval?.(s.options);
    if (why) return `step ${i + 1} (${s.step})${why === s.step ? '' : `: ${renderRule(why, (k) => k)}`}`;
  }
  return undefined;
}

/** The largest recipe file read (a recipe is a short list of steps; this bounds a mistaken path). */
export const MAX_RECIPE_BYTES = 1 << 20;

/** Reads and validates a recipe file; relative file paths in it (a teacher) resolve against its folder. */
export function readRecipe(file: string): Recipe {
  let text: string;
  let stat: fs.Stats;
  try {
    stat = fs.statSync(file);
  } catch {
    throw new ModelError(file, 'cannot read the recipe');
  }
  if (!stat.isFile()) throw new UsageError(`${file}: a recipe is a JSON file, and this is not a regular file`);
  if (stat.size > MAX_RECIPE_BYTES) throw new UsageError(`${file}: ${stat.size} bytes is too large for a recipe (at most ${MAX_RECIPE_BYTES} bytes of JSON)`);
  try {
    text = fs.readFileSync(file, 'utf8');
  } catch {
    throw new ModelError(file, 'cannot read the recipe');
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    // A broken recipe is a usage problem like any other recipe error (exit 2), not a bad model.
    throw new UsageError(`${file}: not valid JSON (${(e as Error).message})`);
  }
  return parseRecipe(json, file, path.dirname(path.resolve(file)));
}

export interface RecipeOptions {
  calib?: Dataset;
  /** Labels of the calibration samples (the Taylor criterion). */
  calibLabels?: Int32Array;
  eval?: Dataset;
  labels?: Int32Array;
  /** Training inputs and labels (prune with recover finetune/distill, quantize with qat). */
  train?: Dataset;
  trainLabels?: Int32Array;
  /** The model's file (steps that bench the original use it). */
  input?: string;
  /** A dry run for a preview: steps with a cheaper `plan` use it. */
  plan?: boolean;
  evalIsRandom?: boolean;
  signal?: AbortSignal;
  onProgress?: (stage: string, fraction?: number) => void;
  /** Training progress of the steps that train, with the step's index (0-based) and id. */
  onTrainProgress?: (p: TrainProgress, step: number, id: string) => void;
  /**
   * Cancelled while a step was training: return the best model so far (marked `cancelled`)
   * instead of throwing, and skip the steps after it. Cancelled at any other time still throws.
   */
  keepOnCancel?: boolean;
}

/** Where a recipe run was cancelled during training, and what its model is. */
export interface RecipeCancelled {
  /** 1-based index of the step that was training. */
  step: number;
  stepId: string;
  detail: string;
}

export interface StepSummary {
  step: string;
  detail: string;
  params: number;
  macs: number;
  /** Caveats the step reported (e.g. a best epoch chosen on the evaluation data); absent when none. */
  notes?: string[];
}

/** The `notes` a step's outcome carries (train, early-exit), if any. */
function outcomeNotes(r: { outcome?: unknown }): string[] {
  const n = (r.outcome as { notes?: unknown } | undefined)?.notes;
  return Array.isArray(n) ? n.filter((x): x is string => typeof x === 'string') : [];
}

/** Runs the steps in order on an in-memory model; each step starts from the previous result. */
export async function runRecipe(model: Model, recipe: Recipe, opts: RecipeOptions = {}): Promise<{ model: Model; steps: StepSummary[]; cancelled?: RecipeCancelled }> {
  let current = model;
  const steps: StepSummary[] = [];
  for (const [i, s] of recipe.steps.entries()) {
    if (opts.signal?.aborted) throw new CancelledError();
    const progress = (stage: string, f?: number) => opts.onProgress?.(`step ${i + 1}/${recipe.steps.length} (${s.step}): ${stage}`, f);
    progress('starting');
    const step = stepById(s.step)!;
    let trained = false;
    const ctx: StepContext = {
      calib: opts.calib,
      calibLabels: opts.calibLabels,
      eval: opts.eval,
      evalIsRandom: opts.evalIsRandom,
      labels: opts.labels,
      train: opts.train,
      trainLabels: opts.trainLabels,
      original: model,
      input: i === 0 ? opts.input : undefined,
      signal: opts.signal,
      onProgress: progress,
      onTrainProgress: (p) => {
        trained = true;
        opts.onTrainProgress?.(p, i, s.step);
      },
    };
    let r: { model: Model; detail: string; outcome?: unknown };
    try {
      r = opts.plan && step.plan ? await step.plan(current, s.options, ctx) : await step.apply(current, s.options, ctx);
    } catch (e) {
      if (!(opts.keepOnCancel && e instanceof CancelledWithResult)) throw e;
      r = { model: e.model, detail: e.detail };
      trained = true;
    }
    current = r.model;
    const t = analyzeModel(current).totals;
    const notes = outcomeNotes(r);
    steps.push({ step: s.step, detail: r.detail, params: t.params, macs: t.macs, ...(notes.length ? { notes } : {}) });
    // A step that trains returns its best weights when cancelled (fit stops between steps).
    if (opts.keepOnCancel && opts.signal?.aborted && trained) return { model: current, steps, cancelled: { step: i + 1, stepId: s.step, detail: r.detail } };
  }
  return { model: current, steps };
}

/**
 * Refuses an output that names a file a recipe's steps read (a distill step's teacher, with
 * its external data): the engine never modifies an input. Checked before any work, by the CLI
 * and the worker alike.
 */
export function assertRecipeOutput(recipe: Recipe, output: string): void {
  for (const s of recipe.steps) {
    for (const v of Object.values(s.options)) {
      if (typeof v !== 'string' || !fs.existsSync(v) || !fs.statSync(v).isFile()) continue;
      let model: Model | undefined;
      try {
        model = openModel(v);
      } catch {
        model = undefined;
      }
      assertOutputNotInput(model ?? ({ path: v, inputFiles: [v] } as unknown as Model), output);
    }
  }
}
