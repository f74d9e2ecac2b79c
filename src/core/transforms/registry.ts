import { z } from 'zod';
import { pruneStep } from './prune/step';
import { quantizeStep } from './quantize/step';
import { enumValues, optionInfo, unwrap, type AnyOptions, type DataNeed, type FormatId, type Step } from './step';
import { substituteStep } from './substitute/step';
import { distillStep } from './distill/step';
import { earlyExitStep } from './early-exit/step';
import { trainStep } from './train/step';

/**
 * Every compression step, in the order a recipe runs them by convention. Adding a step is
 * one folder with a `step.ts` (see ARCHITECTURE.md, "How to add a step") and one line here.
 */
export const STEPS: readonly Step[] = [pruneStep, substituteStep, trainStep, distillStep, quantizeStep, earlyExitStep] as unknown as Step[];

export const STEP_IDS = STEPS.map((s) => s.id);

export function stepById(id: string): Step | undefined {
  return STEPS.find((s) => s.id === id);
}

/**
 * Steps that must run last, and why: quantization (the steps before it need float weights)
 * and early exits or runtime widths (their `If` model has subgraphs and a new interface that
 * the other steps do not handle).
 */
export const LAST_STEPS: Readonly<Record<string, string>> = {
  quantize: 'the other steps need float weights',
  'early-exit': 'its If model has subgraphs and an exit_index output (or a width input) that the other steps do not handle',
};

/** The largest recipe accepted (a recipe is written by hand or by the panel). */
export const MAX_RECIPE_STEPS = 32;

/** The zod schema of a recipe file: the published JSON Schema is generated from it. */
export function recipeSchema() {
  const steps = STEPS.map((s) => z.strictObject({ step: z.literal(s.id).describe(s.summary), ...s.options.shape }));
  return z
    .strictObject({
      $schema: z.string().optional().describe('The JSON Schema of this file (for editors).'),
      steps: z
        .array(z.discriminatedUnion('step', steps as unknown as [AnyOptions, ...AnyOptions[]]))
        .min(1)
        .max(MAX_RECIPE_STEPS)
        .describe('Steps run in order; each starts from the previous result. Quantization or early-exit comes last.'),
    })
    .describe('A Model Compressor recipe: compression steps run in order (model-compressor compress --recipe, or the Compress panel).');
}

/** The JSON Schema for `*.recipe.json` (draft 2020-12), contributed to VS Code through `jsonValidation`. */
export function recipeJsonSchema(): Record<string, unknown> {
  return z.toJSONSchema(recipeSchema(), { io: 'input', unrepresentable: 'any' }) as Record<string, unknown>;
}

/** Whether an option value is offered for a format (from the option's `formats`). */
export function supports(step: Step, key: string, value: string | number, format: FormatId): boolean {
  const field = step.options.shape[key] as z.ZodType | undefined;
  const info = field && optionInfo.get(field);
  const only = info?.formats?.[String(value)];
  return only ? only.includes(format) : step.formats.includes(format);
}

/** One control of a step's form in the Compress panel. */
export interface FormField {
  /** Option key; nested options are dotted (`options.method`). */
  key: string;
  label: string;
  description: string;
  /** A number input, a choice among `values`, or a switch (boolean). */
  kind: 'number' | 'choice' | 'boolean';
  /** Choice: the values this format supports; number: min/max/step. */
  values?: Array<string | number>;
  min?: number;
  max?: number;
  step?: number;
  initial: string | number | boolean;
  /** Show only when another option has one of these values (e.g. multiplier with kind depthwise). */
  when?: { key: string; values: Array<string | number> };
  /** Data slots a value reads (keyed by the value as a string, 'true' for a switch), from the option's `needs`. */
  needs?: Record<string, DataNeed[]>;
}

export interface StepForm {
  step: string;
  summary: string;
  fields: FormField[];
  /** The step runs after all others (quantization: it needs float weights from the steps before). */
  last?: boolean;
}

/**
 * The Compress panel's forms for a format: the steps the format supports, and for each the
 * options the panel offers (those with a `form` entry, plus the step's required choice),
 * with only the values this format supports.
 */
export function stepForms(format: FormatId | string): StepForm[] {
  const out: StepForm[] = [];
  for (const s of STEPS) {
    if (!s.formats.includes(format as FormatId)) continue;
    const fields: FormField[] = [];
    const visit = (shape: Record<string, z.ZodType>, prefix: string) => {
      for (const [k, f] of Object.entries(shape)) {
        const key = prefix + k;
        const info = optionInfo.get(f) ?? {};
        const { base, optional } = unwrap(f);
        if ((base.def as { type: string }).type === 'object') {
          visit((base as AnyOptions).shape, `${key}.`);
          continue;
        }
        if (!info.form && optional) continue;
        const isBoolean = (base.def as { type: string }).type === 'boolean';
        const values = enumValues(f)?.filter((v) => supports(s, k, v, format as FormatId) && !info.hidden?.includes(String(v)));
        const label = k.replace(/[A-Z]/g, (c) => ` ${c.toLowerCase()}`);
        const field: FormField = values
          ? { key, label, description: f.description ?? '', kind: 'choice', values, initial: info.form?.initial ?? values[0] }
          : isBoolean
            ? { key, label, description: f.description ?? '', kind: 'boolean', initial: info.form?.initial ?? false }
            : { key, label, description: f.description ?? '', kind: 'number', min: info.form!.min, max: info.form!.max, step: info.form!.step, initial: info.form!.initial };
        if (info.form?.when) field.when = info.form.when;
        if (info.needs) field.needs = info.needs;
        if (field.kind === 'choice' && field.values!.length === 0) continue;
        fields.push(field);
      }
    };
    visit(s.options.shape, '');
    out.push({ step: s.id, summary: s.summary, fields, ...(s.id in LAST_STEPS ? { last: true } : {}) });
  }
  return out;
}
