import { closest, distance } from 'fastest-levenshtein';
import { z } from 'zod';
import { dynamicModelRefusal } from '../analysis/dynamic-models';
import { UsageError } from '../errors';
import type { Model } from '../ir/graph';
import type { Dataset } from '../runtime/data/dataset';
import type { TrainProgress } from '../train/api';

/**
 * One shape for every compression step. A step declares its options once, as a zod schema
 * with a description per option (and, in `optionInfo`, how the option appears as a CLI flag
 * and which formats support each value). From that one declaration come the CLI flags and
 * their `--help`, recipe validation (unknown keys are errors naming the nearest valid key),
 * the published JSON Schema for `*.recipe.json`, and the Compress panel's forms.
 */

/** The model formats a step can write. */
export type FormatId = 'onnx' | 'tfjs-layers' | 'tfjs-graph';
export const WRITABLE_FORMATS: FormatId[] = ['onnx', 'tfjs-layers', 'tfjs-graph'];

/** Data a step's option may read besides the model: calibration inputs, training inputs, training labels. */
export type DataNeed = 'calib' | 'train' | 'trainLabels';

/** How one option appears outside the schema. Every field is optional. */
export interface OptionInfo {
  /** CLI flag name (default: the key in kebab-case); `null`: not a CLI flag. */
  flag?: string | null;
  /** A boolean shown as switches: `on` sets true, `off` sets false; `required`: one must be given. */
  switches?: { on?: string; off?: string; required?: boolean };
  /** An enum whose values are switches of their own (`--depthwise | --lowrank`); one is required. */
  valueSwitches?: boolean;
  /** Formats that support each value of an enum; values not listed are supported by all the step's formats. */
  formats?: Record<string, FormatId[]>;
  /** Values the Compress panel does not offer (they need something the panel cannot give). */
  hidden?: string[];
  /** A list option whose CLI flag may be repeated (`--match a=b --match c=d`); values are also comma separated. */
  repeatable?: boolean;
  /** CLI placeholder for the value, e.g. `f` or `n1,n2`. */
  placeholder?: string;
  /** The value is a file path: in a recipe file, a relative one resolves against the recipe's folder (`readRecipe`). */
  file?: boolean;
  /**
   * Data slots a value of this option reads (enum values, or 'true' for a boolean), so the
   * Compress panel can say what to pick before the engine refuses (e.g. recover finetune: train, trainLabels).
   */
  needs?: Record<string, DataNeed[]>;
  /** Form control bounds/step for the Compress panel, when the option is offered there (min/max/step unused for choices and switches). */
  form?: { min: number; max: number; step: number; initial: number | string | boolean; when?: { key: string; values: Array<string | number> } };
}

/** Side information per option schema (not part of the published JSON Schema). */
export const optionInfo = z.registry<OptionInfo>();

/** Declares one option: the schema (with its default or `.optional()`), a description, and how it shows. */
export function option<T extends z.ZodType>(schema: T, description: string, info: OptionInfo = {}): T {
  const s = schema.describe(description) as T;
  optionInfo.add(s, info);
  return s;
}

export interface StepContext {
  calib?: Dataset;
  /** Evaluation data and labels (accuracy-aware steps, sensitivity allocation). */
  eval?: Dataset;
  /** True when `eval` is generated random data (no real samples): fine for agreement, not for choosing between trained models. */
  evalIsRandom?: boolean;
  labels?: Int32Array;
  /** Labels of the calibration samples (the Taylor criterion's cross-entropy; --calib-labels). */
  calibLabels?: Int32Array;
  /** Training inputs and labels (steps that fine-tune or distill: --train, --train-labels). */
  train?: Dataset;
  trainLabels?: Int32Array;
  /** The model the job started from (a recipe's input): the default teacher of `distill`. */
  original?: Model;
  /** Where a step that trains writes its per-epoch checkpoint, and whether it continues from it (`train --resume`). */
  checkpoint?: { path: string; resume?: boolean };
  /** The model's file, when the step runs on the model as opened (latency targets bench it). */
  input?: string;
  signal?: AbortSignal;
  onProgress?: (stage: string, fraction?: number) => void;
  /**
   * Training progress of steps that train (recover finetune/distill, train, distill, early-exit
   * heads): per step and per epoch, with loss, learning rate, speed and the validation metric.
   * The worker streams it to the Compress panel's live chart; the CLI's bar shows it.
   */
  onTrainProgress?: (p: TrainProgress) => void;
}

export interface StepResult<O = unknown> {
  model: Model;
  /** One line for a plan or report, e.g. "4 groups pruned". */
  detail: string;
  /** The step's own outcome (groups, quantized nodes, layers…), for reports. */
  outcome: O;
}

/** What a dry run gives a preview: the model's structure after the step, and one line. */
export type StepPlan = Pick<StepResult, 'model' | 'detail'>;

/** A rule message names options as «key»; the CLI renders them as flags, recipes as keys. */
export type RuleMessage = string | undefined;

// eslint-disable-next-line @typescript-eslint/no-explicit-any
export type AnyOptions = z.ZodObject<any>;

/**
 * A kind of job data: calibration inputs (`--calib`) and their labels (`--calib-labels`, the
 * Taylor criterion), training (`--train`, `--train-labels`), evaluation (`--eval`, `--labels`).
 */
export type StepData = 'calib' | 'calibLabels' | 'train' | 'eval';

export interface Step<S extends AnyOptions = AnyOptions, O = unknown> {
  /** The recipe's `step` value and the CLI command name. */
  id: string;
  summary: string;
  /** Formats the step works on. */
  formats: FormatId[];
  /** The options, as a strict object (unknown keys are errors). */
  options: S;
  /** Rules across options (exactly one target…), checked before any work. */
  check?(o: z.output<S>): RuleMessage;
  /** Why the step needs calibration data with these options, if it does. */
  needsCalib?(o: z.output<S>): RuleMessage;
  /** Why the step needs training inputs (`--train`) with these options, if it does. */
  needsTrain?(o: z.output<S>): RuleMessage;
  /** Why the step needs real (not random) evaluation data (`--eval`), if it does. */
  needsEval?(o: z.output<S>): RuleMessage;
  /**
   * The kinds of job data the step reads (default: every kind). The CLI offers only these
   * kinds' flags (`jobFlagsFor`).
   */
  data?: ReadonlyArray<StepData>;
  /**
   * The step checks dynamic-computation models (early-exit, runtime-widths) itself, with its
   * own message; every other step refuses them before any work (`dynamicModelRefusal`).
   */
  checksDynamicModels?: true;
  /** An example command line (after `model-compressor`). */
  example: string;
  /**
   * Dry run for a preview: the model after the step, without evaluation or writing. Steps
   * without a cheaper estimate run `apply` (the default in `planStep`).
   */
  plan?(model: Model, o: z.output<S>, ctx: StepContext): Promise<StepPlan>;
  /** Runs the step on a copy; never modifies `model`. Honours ctx.signal and reports ctx.onProgress. */
  apply(model: Model, o: z.output<S>, ctx: StepContext): Promise<StepResult<O>>;
}

/**
 * Builds a step with its option type inferred from the schema. Its `apply` and `plan` first
 * refuse models the step cannot transform (`assertStepAccepts`), whoever calls them: the CLI,
 * a recipe, the worker.
 */
export function defineStep<S extends AnyOptions, O>(s: Step<S, O>): Step<S, O> {
  const { apply, plan } = s;
  return {
    ...s,
    apply: async (model, o, ctx) => {
      assertStepAccepts(model, s);
      return apply.call(s, model, o, ctx);
    },
    ...(plan
      ? {
          plan: async (model: Model, o: z.output<S>, ctx: StepContext) => {
            assertStepAccepts(model, s);
            return plan.call(s, model, o, ctx);
          },
        }
      : {}),
  };
}

/** Refuses (UsageError) a model the step cannot transform: see `dynamicModelRefusal`. */
export function assertStepAccepts(model: Model, step: Pick<Step, 'id' | 'checksDynamicModels'>): void {
  if (step.checksDynamicModels) return;
  const why = dynamicModelRefusal(model, step.id);
  if (why) throw new UsageError(why);
}

/** The nearest candidate to a misspelt name, if one is close enough to be a likely typo. */

export function nearest(word: string, candidates: readonly string[]): string | undefined {
  if (!candidates.length) return undefined;
  const c = closest(word, candidates as string[]);
  return distance(word.toLowerCase(), c.toLowerCase()) <= Math.max(2, Math.floor(word.length / 3)) ? c : undefined;
}

export function didYouMean(word: string, candidates: readonly string[]): string {
  const n = nearest(word, candidates);
  return n ? `; did you mean '${n}'?` : ` (valid: ${candidates.join(', ')})`;
}

/** Unwraps optional/default wrappers: the base schema, its default and whether it may be absent. */
export function unwrap(schema: z.ZodType): { base: z.ZodType; def?: unknown; optional: boolean } {
  let s = schema;
  let def: unknown;
  let optional = false;
  for (;;) {
    const d = s.def as { type: string; innerType?: z.ZodType; defaultValue?: unknown };
    if (d.type === 'optional') optional = true;
    else if (d.type === 'default') def = d.defaultValue;
    else break;
    s = d.innerType!;
  }
  return { base: s, def, optional: optional || def !== undefined };
}

/** The values of an enum or literal-union option, or undefined. */
export function enumValues(schema: z.ZodType): Array<string | number> | undefined {
  const { base } = unwrap(schema);
  const d = base.def as { type: string; entries?: Record<string, string>; values?: unknown[] };
  if (d.type === 'enum') return Object.values(d.entries!);
  if (d.type === 'literal') return d.values as Array<string | number>;
  return undefined;
}

function describeIssue(issue: z.core.$ZodIssue, name: (path: PropertyKey[]) => string, schema: z.ZodType): string {
  const n = name(issue.path);
  switch (issue.code) {
    case 'too_small':
      return `${n} must be ${issue.inclusive ? '≥' : '>'} ${String(issue.minimum)}`;
    case 'too_big':
      return `${n} must be ${issue.inclusive ? '≤' : '<'} ${String(issue.maximum)}`;
    case 'invalid_value':
      return `${n} is one of ${issue.values.map(String).join(', ')}`;
    case 'invalid_type': {
      const values = optionAt(schema, issue.path);
      const e = values && enumValues(values);
      if (e) return `${n} is one of ${e.join(', ')}`;
      return `${n} must be ${issue.expected === 'int' ? 'a whole number' : `a ${issue.expected}`}`;
    }
    case 'not_multiple_of':
      return `${n} must be a multiple of ${String(issue.divisor)}`;
    default:
      return `${n}: ${issue.message}`;
  }
}

function optionAt(schema: z.ZodType, path: PropertyKey[]): z.ZodType | undefined {
  let s: z.ZodType | undefined = schema;
  for (const p of path) {
    const b: { shape?: Record<string, z.ZodType> } | undefined = s && (unwrap(s).base as { shape?: Record<string, z.ZodType> });
    s = b?.shape?.[p as string];
  }
  return s;
}

/**
 * Validates untrusted options against a step's schema and its cross-option rules. Returns
 * the parsed options (defaults filled in) or the first problem, with keys rendered by `name`
 * (dotted keys for recipes, flags for the CLI) — `unknown` for unknown keys (with the
 * nearest valid one).
 */
export function validateOptions<S extends AnyOptions>(
  step: Step<S, unknown>,
  raw: unknown,
  name: (path: PropertyKey[]) => string,
): { ok: true; value: z.output<S> } | { ok: false; unknownKey?: { key: string; hint: string }; rule?: string; message: string } {
  const r = step.options.safeParse(raw);
  if (!r.success) {
    const unknown = r.error.issues.find((i) => i.code === 'unrecognized_keys');
    if (unknown && unknown.code === 'unrecognized_keys') {
      const at = optionAt(step.options, unknown.path);
      const keys = Object.keys((unwrap(at ?? step.options).base as AnyOptions).shape ?? {});
      const key = [...unknown.path.map(String), unknown.keys[0]].join('.');
      return { ok: false, unknownKey: { key, hint: didYouMean(unknown.keys[0], keys) }, message: `unknown key '${key}'${didYouMean(unknown.keys[0], keys)}` };
    }
    return { ok: false, message: describeIssue(r.error.issues[0], name, step.options) };
  }
  const rule = step.check?.(r.data);
  if (rule) return { ok: false, rule, message: renderRule(rule, (k) => name(k.split('.'))) };
  return { ok: true, value: r.data };
}

/** Replaces «key» in a rule message by the option's outside name. */
export function renderRule(message: string, name: (key: string) => string): string {
  return message.replace(/«([\w.]+)»/g, (_, k: string) => name(k));
}
