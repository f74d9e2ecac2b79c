import { UsageError } from '../core/errors';
import { bindData, JOB_DEFAULTS, readLabelsFor, type BoundData, type DataOptions } from '../core/jobs';
import type { ImageOptions } from '../core/runtime/data/images';
import type { IOSpec } from '../core/runtime/session';
import type { FlagSpec } from './args';
import { parseShapeFlags } from './args';
import { bindShapes } from './commands/inspect';

/** Flags every data-consuming command shares. */
export const DATA_FLAGS: Record<string, FlagSpec> = {
  labels: { type: 'string', placeholder: 'y.npy', help: 'Integer class labels for the evaluation data (accuracy).' },
  samples: { type: 'number', placeholder: 'N', help: 'Random samples when no data is given (random:N says it explicitly); with --calib and no --eval, the report checks the first N calibration samples.' },
  seed: { type: 'number', placeholder: 's', help: 'Seed of random data.' },
  shape: { type: 'string', multiple: true, placeholder: 'name=1x3x224x224', help: 'Fix an input’s dynamic dims (repeatable).' },
  layout: { type: 'string', placeholder: 'NCHW|NHWC', help: 'Image folders: tensor layout.' },
  'image-scale': { type: 'number', placeholder: 's', help: 'Image folders: multiply pixel values (0–255) by this.' },
  'image-mean': { type: 'string', placeholder: 'm,m,m', help: 'Image folders: per-channel mean subtracted after scaling.' },
  'image-std': { type: 'string', placeholder: 's,s,s', help: 'Image folders: per-channel std divided after the mean.' },
};

/** Opens a data option (see `bindData`): `random:N` asks explicitly for N random samples. */
export function openData(values: string | string[] | undefined, inputs: IOSpec[], flags: Record<string, unknown>, metadata?: Array<[string, string]>): BoundData | undefined {
  return bindData(values, inputs, { ...dataOptions(flags, inputs.map((i) => i.name)), metadata });
}

/** `metadata`: the model's, whose `shape:<input>` sizes symbolic dims. */
export function randomData(inputs: IOSpec[], flags: Record<string, unknown>, n: number = JOB_DEFAULTS.randomSamples, metadata?: Array<[string, string]>): BoundData {
  return openData(`random:${(flags.samples as number | undefined) ?? n}`, inputs, flags, metadata)!;
}

/** Reads `--labels`, refused when there are fewer than `count` or one is outside `classes`. */
export function labelsFlag(flags: Record<string, unknown>, count?: number, classes?: number): Int32Array | undefined {
  if (!flags.labels) return undefined;
  return readLabelsFor(flags.labels as string, count ?? 0, classes);
}

/** `--shape` values bound to the model's inputs (a nameless one binds to the only input). */
export function shapeFlags(flags: Record<string, unknown>, inputs: IOSpec[]): Record<string, number[]> {
  return bindShapes(parseShapeFlags(flags.shape as string[] | undefined), inputs.map((i) => i.name)) as Record<string, number[]>;
}

/** The job layer's data options, from flags. */
export function dataOptions(flags: Record<string, unknown>, inputs?: string[]): DataOptions {
  const shapes = parseShapeFlags(flags.shape as string[] | undefined);
  return {
    calib: flags.calib as string | undefined,
    eval: flags.eval as string | undefined,
    calibLabels: flags['calib-labels'] as string | undefined,
    labels: flags.labels as string | undefined,
    train: flags.train as string | undefined,
    trainLabels: flags['train-labels'] as string | undefined,
    samples: flags.samples as number | undefined,
    seed: flags.seed as number | undefined,
    shapes: inputs ? (bindShapes(shapes, inputs) as Record<string, number[]>) : shapes,
    image: imageFlags(flags),
  };
}

/** Image-folder options from flags (layout, scale, mean, std). */
export function imageFlags(flags: Record<string, unknown>): Partial<ImageOptions> {
  const list = (name: string) => {
    const v = flags[name] as string | undefined;
    if (v === undefined) return undefined;
    const xs = v.split(',').map(Number);
    if (xs.some((x) => !Number.isFinite(x))) throw new UsageError(`--${name} takes comma-separated numbers, e.g. 0.485,0.456,0.406`);
    return xs;
  };
  const layout = flags.layout as string | undefined;
  if (layout !== undefined && layout !== 'NCHW' && layout !== 'NHWC') throw new UsageError('--layout is NCHW or NHWC');
  return { layout: layout as ImageOptions['layout'] | undefined, scale: flags['image-scale'] as number | undefined, mean: list('image-mean'), std: list('image-std') };
}
