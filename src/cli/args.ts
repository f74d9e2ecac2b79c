import { Command as Commander, CommanderError, Option } from 'commander';
import { UsageError } from '../core/errors';

/**
 * One CLI flag. `help` is the description shown by `--help`; `default` is shown there only
 * (commands and step schemas fill defaults themselves, so an absent flag stays absent).
 */
export type FlagSpec = {
  type: 'string' | 'boolean' | 'number';
  multiple?: boolean;
  alias?: string;
  help?: string;
  default?: string | number | boolean;
  /** Placeholder of the value in `--help`, e.g. `r` or `data`. */
  placeholder?: string;
  choices?: readonly string[];
};

export interface Parsed {
  positional: string[];
  flags: Record<string, string | number | boolean | string[] | undefined>;
}

/** Builds the commander program for a flag table (parsing and `--help` come from the same table). */
export function program(name: string, spec: Record<string, FlagSpec>, summary = '', usage?: string): Commander {
  const c = new Commander(name)
    .description(summary)
    .exitOverride()
    .configureOutput({ writeOut: () => {}, writeErr: () => {} })
    .showSuggestionAfterError(true)
    .allowExcessArguments(true)
    .helpOption('-h, --help', 'show this help');
  if (usage) c.usage(usage);
  for (const [flag, s] of Object.entries(spec)) {
    const value = s.type === 'boolean' ? '' : ` <${s.placeholder ?? (s.type === 'number' ? 'n' : 'value')}>`;
    const o = new Option(`${s.alias ? `-${s.alias}, ` : ''}--${flag}${value}`, [s.help ?? '', s.default !== undefined ? `(default: ${String(s.default)})` : ''].filter(Boolean).join(' '));
    if (s.choices) o.choices(s.choices);
    if (s.type === 'number') {
      o.argParser((v: string, prev: unknown) => {
        const x = Number(v);
        if (v.trim() === '' || !Number.isFinite(x)) throw new UsageError(`option --${flag} needs a number, got '${v}'`);
        return s.multiple ? [...((prev as number[] | undefined) ?? []), x] : x;
      });
    } else if (s.multiple) o.argParser((v: string, prev: unknown) => [...((prev as string[] | undefined) ?? []), v]);
    c.addOption(o);
  }
  return c;
}

/** A strict argv parser (commander): unknown flags, missing values and bad numbers are usage errors. */
export function parseArgs(argv: string[], spec: Record<string, FlagSpec>): Parsed {
  const c = program('model-compressor', spec);
  try {
    c.parse(argv, { from: 'user' });
  } catch (e) {
    if (e instanceof CommanderError) throw new UsageError(e.message.replace(/^error: /, '').split('\n').filter(Boolean).join(' '));
    throw e;
  }
  const flags: Parsed['flags'] = {};
  const values = c.opts();
  for (const o of c.options) {
    const flag = o.long!.slice(2);
    if (!(flag in spec)) continue;
    const v = values[o.attributeName()] as Parsed['flags'][string];
    // commander reads `--no-x` as x = false (default true); the table names the flag `no-x`.
    if (o.negate) flags[flag] = v === false ? true : undefined;
    else if (v !== undefined) flags[flag] = spec[flag].multiple && spec[flag].type === 'number' ? (v as unknown as number[]).map(String) : v;
  }
  for (const k of Object.keys(flags)) if (flags[k] === undefined) delete flags[k];
  return { positional: c.args, flags };
}

/** Parses `name=1x3x224x224` (or `1x3x224x224` for a single-input model). */
export function parseShapeFlags(values: string[] | undefined): Record<string, number[]> {
  const out: Record<string, number[]> = {};
  for (const v of values ?? []) {
    const eq = v.lastIndexOf('=');
    const name = eq >= 0 ? v.slice(0, eq) : '';
    const dims = (eq >= 0 ? v.slice(eq + 1) : v).split(/[x,]/).map((d) => Number(d));
    if (!dims.length || dims.some((d) => !Number.isSafeInteger(d) || d < 0)) {
      throw new UsageError(`--shape expects name=1x3x224x224, got '${v}'`);
    }
    out[name] = dims;
  }
  return out;
}
