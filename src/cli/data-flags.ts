import { UsageError } from '../core/errors';
import { bindDataset, parseDataSpecs, readLabels, type Dataset } from '../core/runtime/data/dataset';
import type { IOSpec } from '../core/runtime/session';
import type { FlagSpec } from './args';
import { imageFlags } from './commands/compare';
import { bindShapes } from './commands/inspect';
import { parseShapeFlags } from './args';

/** Flags every data-consuming command shares. */
export const DATA_FLAGS: Record<string, FlagSpec> = {
  labels: { type: 'string' },
  samples: { type: 'number' },
  seed: { type: 'number' },
  shape: { type: 'string', multiple: true },
  layout: { type: 'string' },
  'image-scale': { type: 'number' },
  'image-mean': { type: 'string' },
  'image-std': { type: 'string' },
};

/**
 * Opens a data option. `random:N` asks explicitly for N random samples (never implied).
 * `values` may bind several inputs (`name=path`), comma separated or repeated.
 */
export function openData(values: string | string[] | undefined, inputs: IOSpec[], flags: Record<string, unknown>): { data: Dataset; label: string; random: boolean } | undefined {
  if (values === undefined) return undefined;
  const list = (Array.isArray(values) ? values : [values]).flatMap((v) => v.split(',')).filter(Boolean);
  const shapes = bindShapes(parseShapeFlags(flags.shape as string[] | undefined), inputs.map((i) => i.name)) as Record<string, number[]>;
  const rnd = list.length === 1 ? /^random(?::(\d+))?$/.exec(list[0]) : null;
  if (rnd) {
    const n = Number(rnd[1] ?? (flags.samples as number | undefined) ?? 32);
    const data = bindDataset(inputs, [], { randomSamples: n, seed: (flags.seed as number | undefined) ?? 0, shapes });
    return { data, label: `${n} random samples${data.assumed.length ? ` (sizes assumed: ${data.assumed.join(', ')})` : ''}`, random: true };
  }
  const data = bindDataset(inputs, parseDataSpecs(list), { shapes, image: imageFlags(flags) });
  return { data, label: data.describe(), random: false };
}

export function randomData(inputs: IOSpec[], flags: Record<string, unknown>, n = 32): { data: Dataset; label: string; random: boolean } {
  return openData(`random:${(flags.samples as number | undefined) ?? n}`, inputs, flags)!;
}

export function labelsFlag(flags: Record<string, unknown>, count?: number): Int32Array | undefined {
  if (!flags.labels) return undefined;
  const l = readLabels(flags.labels as string);
  if (count !== undefined && l.length < count) throw new UsageError(`--labels holds ${l.length} labels for ${count} samples`);
  return l;
}
