import { checkLabels } from '../core/runtime/data/checks';
import { randomSpec } from '../core/runtime/data/sources';
import { bindDataset, parseDataSpecs, readLabels, type Dataset } from '../core/runtime/data/dataset';
import type { IOSpec } from '../core/runtime/session';
import type { FlagSpec } from './args';
import { imageFlags } from './commands/compare';
import { bindShapes } from './commands/inspect';
import { parseShapeFlags } from './args';

/** Flags every data-consuming command shares. */
export const DATA_FLAGS: Record<string, FlagSpec> = {
  labels: { type: 'string', placeholder: 'y.npy', help: 'Integer class labels for the evaluation data (accuracy).' },
  samples: { type: 'number', placeholder: 'N', help: 'Random samples when no data is given (random:N says it explicitly).' },
  seed: { type: 'number', placeholder: 's', help: 'Seed of random data.' },
  shape: { type: 'string', multiple: true, placeholder: 'name=1x3x224x224', help: 'Fix an input’s dynamic dims (repeatable).' },
  layout: { type: 'string', placeholder: 'NCHW|NHWC', help: 'Image folders: tensor layout.' },
  'image-scale': { type: 'number', placeholder: 's', help: 'Image folders: multiply pixel values (0–255) by this.' },
  'image-mean': { type: 'string', placeholder: 'm,m,m', help: 'Image folders: per-channel mean subtracted after scaling.' },
  'image-std': { type: 'string', placeholder: 's,s,s', help: 'Image folders: per-channel std divided after the mean.' },
};

/**
 * Opens a data option. `random:N` asks explicitly for N random samples (never implied).
 * `values` may bind several inputs (`name=path`), comma separated or repeated.
 */
export function openData(values: string | string[] | undefined, inputs: IOSpec[], flags: Record<string, unknown>): { data: Dataset; label: string; random: boolean } | undefined {
  if (values === undefined) return undefined;
  const list = (Array.isArray(values) ? values : [values]).flatMap((v) => v.split(',')).filter(Boolean);
  const shapes = shapeFlags(flags, inputs);
  const n = randomSpec(list, (flags.samples as number | undefined) ?? 32);
  if (n !== undefined) {
    const data = bindDataset(inputs, [], { randomSamples: n, seed: (flags.seed as number | undefined) ?? 0, shapes });
    return { data, label: `${n} random samples${data.assumed.length ? ` (sizes assumed: ${data.assumed.join(', ')})` : ''}`, random: true };
  }
  const data = bindDataset(inputs, parseDataSpecs(list), { shapes, image: imageFlags(flags) });
  return { data, label: data.describe(), random: false };
}

/** `--shape` values bound to the model's inputs (a nameless one binds to the only input). */
export function shapeFlags(flags: Record<string, unknown>, inputs: IOSpec[]): Record<string, number[]> {
  return bindShapes(parseShapeFlags(flags.shape as string[] | undefined), inputs.map((i) => i.name)) as Record<string, number[]>;
}

export function randomData(inputs: IOSpec[], flags: Record<string, unknown>, n = 32): { data: Dataset; label: string; random: boolean } {
  return openData(`random:${(flags.samples as number | undefined) ?? n}`, inputs, flags)!;
}

/** Reads `--labels`, refused when there are fewer than `count` or one is outside `classes`. */
export function labelsFlag(flags: Record<string, unknown>, count?: number, classes?: number): Int32Array | undefined {
  if (!flags.labels) return undefined;
  const l = readLabels(flags.labels as string);
  checkLabels(l, flags.labels as string, count, classes);
  return l;
}
