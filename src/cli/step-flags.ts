import type { z } from 'zod';
import { UsageError } from '../core/errors';
import { enumValues, optionInfo, renderRule, unwrap, validateOptions, type AnyOptions, type Step } from '../core/transforms/step';
import type { FlagSpec } from './args';

/**
 * A step's CLI flags, derived from its option schema: one flag per option (kebab-case key),
 * booleans as switches, enums whose values are switches (`--depthwise | --lowrank`), lists
 * comma separated. Nested option objects (quantize's `options`) are flattened.
 */

interface Binding {
  key: string;
  path: string[];
  kind: 'value' | 'list' | 'switch' | 'valueSwitch';
  /** A list of numbers (`--widths 0.5,0.75,1`). */
  numeric?: boolean;
  on?: string;
  off?: string;
  required?: boolean;
  values?: string[];
  flag?: string;
}

export interface StepFlags {
  spec: Record<string, FlagSpec>;
  bindings: Binding[];
}

const kebab = (k: string) => k.replace(/[A-Z]/g, (c) => `-${c.toLowerCase()}`);

export function stepFlags(step: Step): StepFlags {
  const spec: Record<string, FlagSpec> = {};
  const bindings: Binding[] = [];
  const visit = (shape: Record<string, z.ZodType>, prefix: string[]) => {
    for (const [key, field] of Object.entries(shape)) {
      const info = optionInfo.get(field) ?? {};
      if (info.flag === null) continue;
      const { base, def } = unwrap(field);
      const type = (base.def as { type: string }).type;
      const path = [...prefix, key];
      const help = field.description ?? '';
      if (type === 'object') {
        visit((base as AnyOptions).shape, path);
        continue;
      }
      const values = enumValues(field)?.map(String);
      if (info.valueSwitches && values) {
        for (const v of values) spec[v] = { type: 'boolean', help: `${help.split('.')[0]}: ${v}` };
        bindings.push({ key, path, kind: 'valueSwitch', values, required: true });
      } else if (type === 'boolean') {
        const on = info.switches ? info.switches.on : info.flag ?? kebab(key);
        const off = info.switches?.off;
        if (on) spec[on] = { type: 'boolean', help: off ? `${help}${def === true && !info.switches?.required ? ' (the default)' : ''}` : help };
        if (off) spec[off] = { type: 'boolean', help: on ? `the opposite of --${on}` : `${help} Turned off by this flag.` };
        bindings.push({ key, path, kind: 'switch', on, off, required: info.switches?.required });
      } else {
        const flag = info.flag ?? kebab(key);
        const list = type === 'array';
        const element = list ? ((base.def as { element?: z.ZodType }).element?.def as { type: string } | undefined)?.type : undefined;
        const numeric = type === 'number' || (values !== undefined && values.every((v) => /^\d+$/.test(v)));
        spec[flag] = {
          type: numeric ? 'number' : 'string',
          multiple: info.repeatable || undefined,
          help: values && numeric ? `${help} One of ${values.join(', ')}.` : help,
          placeholder: info.placeholder,
          choices: values && !numeric ? values : undefined,
          default: def !== undefined && !list ? (def as string | number) : undefined,
        };
        bindings.push({ key, path, kind: list ? 'list' : 'value', flag, numeric: element === 'number' || undefined });
      }
    }
  };
  visit(step.options.shape, []);
  return { spec, bindings };
}

function set(obj: Record<string, unknown>, path: string[], v: unknown) {
  let o = obj;
  for (const p of path.slice(0, -1)) o = (o[p] ??= {}) as Record<string, unknown>;
  o[path[path.length - 1]] = v;
}

/** How an option is named on the command line, for messages. */
function flagName(b: Binding | undefined, key: string): string {
  if (!b) return key;
  if (b.kind === 'valueSwitch') return b.values!.map((v) => `--${v}`).join(' | ');
  if (b.kind === 'switch') return [b.on, b.off].filter(Boolean).map((f) => `--${f}`).join(' | ');
  return `--${b.flag}`;
}

/** Turns parsed flags into the step's options, validated by the step's schema and rules (UsageError). */
export function stepOptionsFromFlags<S extends AnyOptions>(step: Step<S, unknown>, sf: StepFlags, flags: Record<string, unknown>): z.output<S> {
  const raw: Record<string, unknown> = {};
  for (const b of sf.bindings) {
    if (b.kind === 'valueSwitch') {
      const given = b.values!.filter((v) => flags[v]);
      if (given.length !== 1) throw new UsageError(`choose one of ${b.values!.map((v) => `--${v}`).join(' or ')}`);
      set(raw, b.path, given[0]);
    } else if (b.kind === 'switch') {
      const on = b.on && flags[b.on];
      const off = b.off && flags[b.off];
      if ((on && off) || (b.required && !on && !off)) throw new UsageError(`choose one of --${b.on} or --${b.off}`);
      if (on) set(raw, b.path, true);
      else if (off) set(raw, b.path, false);
    } else {
      const v = flags[b.flag!];
      if (v === undefined) continue;
      if (b.kind !== 'list') set(raw, b.path, v);
      else {
        const items = (Array.isArray(v) ? v : [v]).flatMap((x) => String(x).split(',')).map((x) => x.trim()).filter(Boolean);
        set(raw, b.path, b.numeric ? items.map((x) => (/^[-+.\d]/.test(x) && Number.isFinite(Number(x)) ? Number(x) : x)) : items);
      }
    }
  }
  const byPath = new Map(sf.bindings.map((b) => [b.path.join('.'), b]));
  // A list item's problem names the list's flag (`--widths`, not `widths.0`).
  const key = (p: PropertyKey[]) => p.filter((x) => typeof x !== 'number').map(String).join('.');
  const r = validateOptions(step, raw, (p) => flagName(byPath.get(key(p)), key(p)));
  if (!r.ok) throw new UsageError(r.rule ? renderForCli(sf, r.rule) : r.message);
  return r.value;
}

/** A step rule message («key») rendered with flag names; `«kind» lowrank` becomes `--lowrank`. */
export function renderForCli(sf: StepFlags, message: string): string {
  const byPath = new Map(sf.bindings.map((b) => [b.path.join('.'), b]));
  const switched = message.replace(/«([\w.]+)» (\w+)/g, (m, k: string, v: string) => {
    const b = byPath.get(k);
    return b?.kind === 'valueSwitch' && b.values!.includes(v) ? `--${v}` : b?.kind === 'value' ? `--${b.flag} ${v}` : m;
  });
  return renderRule(switched, (k) => flagName(byPath.get(k), k));
}

/** The calibration-data rule of a step, checked before any file is read. */
export function checkCalib<S extends AnyOptions>(step: Step<S, unknown>, sf: StepFlags, o: z.output<S>, flags: Record<string, unknown>): void {
  const why = step.needsCalib?.(o);
  if (why && !flags.calib) throw new UsageError(`${renderForCli(sf, why)} needs calibration data: --calib data.npy (or, explicitly, --calib random:N)`);
}

/** The training-data rule of a step (`needsTrain`), checked before any file is read. */
export function checkTrain<S extends AnyOptions>(step: Step<S, unknown>, sf: StepFlags, o: z.output<S>, flags: Record<string, unknown>): void {
  const why = step.needsTrain?.(o);
  if (why && !flags.train) throw new UsageError(`${renderForCli(sf, why)} needs training inputs: --train x.npy${flags['train-labels'] ? '' : ' (and --train-labels y.npy for labelled training)'}`);
}

/** `common` without the flags a step declares itself (the step's description wins). */
export function withoutKeys(common: Record<string, FlagSpec>, own: Record<string, FlagSpec>): Record<string, FlagSpec> {
  return Object.fromEntries(Object.entries(common).filter(([k]) => !(k in own)));
}
