import { UsageError } from '../core/errors';

export type FlagSpec = { type: 'string' | 'boolean' | 'number'; multiple?: boolean; alias?: string; help?: string };

export interface Parsed {
  positional: string[];
  flags: Record<string, string | number | boolean | string[] | undefined>;
}

/** A small strict argv parser: unknown flags and missing values are usage errors. */
export function parseArgs(argv: string[], spec: Record<string, FlagSpec>): Parsed {
  const positional: string[] = [];
  const flags: Parsed['flags'] = {};
  const byAlias = new Map<string, string>();
  for (const [k, v] of Object.entries(spec)) if (v.alias) byAlias.set(v.alias, k);
  for (let i = 0; i < argv.length; i++) {
    const a = argv[i];
    if (a === '--') {
      positional.push(...argv.slice(i + 1));
      break;
    }
    if (!a.startsWith('-') || a === '-') {
      positional.push(a);
      continue;
    }
    let name: string;
    let inline: string | undefined;
    if (a.startsWith('--')) {
      const eq = a.indexOf('=');
      name = eq >= 0 ? a.slice(2, eq) : a.slice(2);
      inline = eq >= 0 ? a.slice(eq + 1) : undefined;
    } else {
      name = byAlias.get(a.slice(1)) ?? a.slice(1);
    }
    const s = spec[name];
    if (!s) throw new UsageError(`unknown option ${a}`);
    if (s.type === 'boolean') {
      if (inline !== undefined) throw new UsageError(`option --${name} takes no value`);
      flags[name] = true;
      continue;
    }
    const value = inline ?? argv[++i];
    if (value === undefined) throw new UsageError(`option --${name} needs a value`);
    let v: string | number = value;
    if (s.type === 'number') {
      v = Number(value);
      if (!Number.isFinite(v)) throw new UsageError(`option --${name} needs a number, got '${value}'`);
    }
    if (s.multiple) ((flags[name] as string[] | undefined) ?? (flags[name] = [] as string[]) as string[]).push(String(v));
    else flags[name] = v;
  }
  return { positional, flags };
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
