import { ModelError, UsageError } from '../../errors';
import { DataType, dtypeName } from '../../ir/dtype';
import { defaultInputShape } from '../../ir/shape-inference';
import type { HostTensor, IOSpec } from '../session';
import { checkSamples, labelsFromValues } from './checks';
import { imageFolderSource, imageOptionsFromShape, type ImageOptions } from './images';
import { batchAxisOf, extOf, isDir, npySource, randomSource, tensorPbSource, type SampleSource } from './sources';

/**
 * Binds data files to a model's inputs, validates dtypes and shapes up front, and serves
 * aligned batches across all inputs.
 */

export interface DataSpec {
  /** Input name; omitted for a single-input model. */
  name?: string;
  path: string;
}

export interface BindOptions {
  /** Samples to generate for inputs without data (random data). */
  randomSamples?: number;
  seed?: number;
  /** Fixed dims for dynamic inputs (the batch axis included, which is ignored). */
  shapes?: Record<string, number[]>;
  image?: Partial<ImageOptions>;
  /** Refuse random data (e.g. static quantization must be calibrated on real data). */
  requireData?: boolean;
  /** Model metadata (`shape:<input>` = `1x3x48x320` declares a nominal input size). */
  metadata?: Array<[string, string]>;
  /** What the data is for (e.g. 'training'), named in errors; default: calibration and evaluation. */
  role?: string;
}

/** Parses `--data` values: `x.npy` or `name=x.npy`. */
export function parseDataSpecs(values: string[] | undefined): DataSpec[] {
  return (values ?? []).map((v) => {
    const eq = v.indexOf('=');
    // A path may contain '=' itself; treat the part before '=' as a name only if it has no path separators.
    if (eq > 0 && !/[\\/]/.test(v.slice(0, eq))) return { name: v.slice(0, eq), path: v.slice(eq + 1) };
    return { path: v };
  });
}

function shapeStr(s: Array<number | string | null>): string {
  return `[${s.map((d) => (d === null ? '?' : d)).join(', ')}]`;
}

export class Dataset {
  constructor(
    readonly sources: Map<string, SampleSource>,
    readonly count: number,
    /** Symbolic input dims given default sizes for random data, e.g. `x[2]=224 (image height)`. */
    readonly assumed: string[] = [],
  ) {}

  /** Samples [start, start + n) for every input, each with a leading batch axis of n. */
  batch(start: number, n: number): Record<string, HostTensor> {
    const out: Record<string, HostTensor> = {};
    for (const [name, s] of this.sources) {
      const ax = s.batchAxis ?? 0;
      out[name] = { dtype: s.dtype, dims: [...s.sampleShape.slice(0, ax), n, ...s.sampleShape.slice(ax)], data: s.read(start, n) };
    }
    return out;
  }

  *batches(batchSize: number, limit = this.count): Generator<{ start: number; size: number; feeds: Record<string, HostTensor> }> {
    const end = Math.min(limit, this.count);
    for (let start = 0; start < end; start += batchSize) {
      const size = Math.min(batchSize, end - start);
      yield { start, size, feeds: this.batch(start, size) };
    }
  }

  describe(): string {
    const d = [...this.sources.entries()].map(([n, s]) => `${n} ← ${s.label}`).join(', ');
    return this.assumed.length ? `${d} (assumed ${this.assumed.join(', ')})` : d;
  }
}

function openSource(spec: DataSpec, input: IOSpec, opts: BindOptions): SampleSource {
  const p = spec.path;
  if (isDir(p)) {
    // Images are resized to the input's size; a symbolic height/width takes the default (224).
    const shape = defaultInputShape(input.name, withShape(input, opts), input.dtype, { metadata: opts.metadata }).shape;
    return imageFolderSource(p, imageOptionsFromShape(shape, opts.image));
  }
  const ext = extOf(p);
  if (ext === '.npy') return npySource(p);
  if (ext === '.pb') return tensorPbSource(p);
  throw new UsageError(`cannot read input data from '${p}': use a .npy file, an ONNX TensorProto .pb file, or a folder of images`);
}

function withShape(input: IOSpec, opts: BindOptions): Array<number | string | null> {
  const fixed = opts.shapes?.[input.name];
  if (!fixed) return input.shape;
  checkShapeFlag(input, fixed);
  return fixed;
}

/**
 * Checks a `--shape` against the model input: same rank, positive sizes, and the model's
 * fixed dims kept (the batch may differ only when it is symbolic). A UsageError otherwise.
 */
export function checkShapeFlag(input: IOSpec, fixed: number[]): void {
  const want = shapeStr(input.shape);
  if (fixed.length !== input.shape.length) {
    throw new UsageError(`--shape ${input.name}=${fixed.join('x')} has ${fixed.length} dims, but input '${input.name}' has ${input.shape.length}: ${want}`);
  }
  fixed.forEach((d, i) => {
    if (!Number.isInteger(d) || d < 1) throw new UsageError(`--shape ${input.name}=${fixed.join('x')}: dim ${i} must be a positive integer`);
    const m = input.shape[i];
    if (typeof m === 'number' && m > 0 && m !== d) {
      throw new UsageError(`--shape ${input.name}=${fixed.join('x')}: dim ${i} of input '${input.name}' is fixed at ${m} ${want}`);
    }
  });
}

export function checkSource(input: IOSpec, s: SampleSource, opts: BindOptions = {}): void {
  const want = withShape(input, opts).slice(1);
  const expected = `${dtypeName(input.dtype)}${shapeStr(input.shape)}`;
  const given = `${dtypeName(s.dtype)}[${[s.count, ...s.sampleShape].join(', ')}] from ${s.label}`;
  const mismatch = (why: string) => new ModelError(s.label, `input '${input.name}' expects ${expected}, got ${given} (${why})`);
  if (s.dtype !== input.dtype) throw mismatch('element type differs');
  if (s.sampleShape.length !== want.length) throw mismatch(`rank differs; the first axis of the data is the sample axis`);
  want.forEach((d, i) => {
    if (typeof d === 'number' && d !== s.sampleShape[i]) throw mismatch(`dimension ${i + 1} should be ${d}`);
  });
}

/**
 * Binds data to every model input. Inputs without data get random samples when
 * `randomSamples` is set; otherwise missing data is a usage error naming the input.
 */
export function bindDataset(inputs: IOSpec[], specs: DataSpec[], opts: BindOptions = {}): Dataset {
  const sources = new Map<string, SampleSource>();
  const names = inputs.map((i) => i.name);
  for (const input of inputs) {
    const fixed = opts.shapes?.[input.name];
    if (fixed) checkShapeFlag(input, fixed);
  }
  const assumed: string[] = [];
  for (const spec of specs) {
    let name = spec.name;
    if (name === undefined) {
      if (inputs.length !== 1) {
        throw new UsageError(`the model has ${inputs.length} inputs (${names.join(', ')}); bind each one: --data name=file`);
      }
      name = inputs[0].name;
    }
    const input = inputs.find((i) => i.name === name);
    if (!input) throw new UsageError(`--data names '${name}', which is not a model input (inputs: ${names.join(', ')})`);
    if (sources.has(name)) throw new UsageError(`input '${name}' is given data twice`);
    const s = openSource(spec, input, opts);
    checkSource(input, s, opts);
    checkSamples(s, opts.role);
    sources.set(name, s);
  }
  const missing = inputs.filter((i) => !sources.has(i.name));
  if (missing.length) {
    if (opts.requireData || opts.randomSamples === undefined) {
      throw new UsageError(`no data for input${missing.length > 1 ? 's' : ''} ${missing.map((m) => `'${m.name}'`).join(', ')}`);
    }
    for (const input of missing) {
      const dtype = input.dtype === DataType.UNDEFINED ? DataType.FLOAT : input.dtype;
      // Symbolic sizes take documented defaults (224×224 images, 16000 audio samples, …).
      const d = defaultInputShape(input.name, withShape(input, opts), dtype, { metadata: opts.metadata });
      // Random samples follow the declared batch axis (a state [2, batch, 128] batches on axis 1).
      const ax = batchAxisOf(input.shape);
      d.open = d.open.filter((i) => i !== ax);
      if (d.open.length) {
        const hint = d.shape.map((x, i) => (typeof x === 'number' && x > 0 ? String(x) : i === 0 ? '1' : `<${typeof input.shape[i] === 'string' ? input.shape[i] : `dim${i}`}>`)).join('x');
        throw new UsageError(
          `input '${input.name}' has dynamic dims ${shapeStr(input.shape)} with no default size for dim${d.open.length > 1 ? 's' : ''} ${d.open.join(', ')}: give real data, or fix them with --shape ${input.name}=${hint}`,
        );
      }
      assumed.push(...d.assumed);
      const dims = d.shape.filter((_, i) => i !== ax) as number[];
      sources.set(input.name, randomSource(input.name, dtype, dims, opts.randomSamples, opts.seed, ax));
    }
  }
  const counts = new Set([...sources.values()].map((s) => s.count));
  if (counts.size > 1) {
    throw new UsageError(`inputs have different sample counts: ${[...sources.entries()].map(([n, s]) => `${n}=${s.count}`).join(', ')}`);
  }
  return new Dataset(sources, [...counts][0] ?? 0, assumed);
}

/** The batch size a model allows: a fixed first dim wins over the request. */
export function chooseBatchSize(inputs: Array<Pick<IOSpec, 'shape'>>, requested: number): number {
  const fixed = fixedBatch(inputs);
  if (fixed !== undefined) return fixed;
  return Math.max(1, Math.floor(requested));
}

/** The model's fixed batch (a numeric first dim of any input), if it has one. */
export function fixedBatch(inputs: Array<Pick<IOSpec, 'shape'>>): number | undefined {
  for (const i of inputs) {
    const d = i.shape?.[0];
    if (typeof d === 'number' && d > 0 && i.shape.length > 0 && batchAxisOf(i.shape) === 0) return d;
  }
  return undefined;
}

/**
 * Batches a model accepts: its fixed batch when it has one (then only whole batches are fed,
 * so the sample count is rounded down to a multiple of it), else the requested size.
 * Throws a UsageError when the data holds fewer samples than one fixed batch.
 */
export function batchPlan(inputs: Array<Pick<IOSpec, 'shape'>>, requested: number, available: number): { batchSize: number; samples: number; note?: string } {
  const fixed = fixedBatch(inputs);
  if (fixed === undefined) return { batchSize: Math.max(1, Math.floor(requested)), samples: available };
  if (available < fixed) throw new UsageError(`the model takes batches of exactly ${fixed} samples, but the data holds ${available}`);
  const samples = available - (available % fixed);
  return { batchSize: fixed, samples, note: samples < available ? `the model's fixed batch is ${fixed}: ${available - samples} trailing sample(s) left out` : undefined };
}

/** Reads a labels file (.npy of integers, one per sample). */
export function readLabels(file: string): Int32Array {
  const s = extOf(file) === '.pb' ? tensorPbSource(file) : npySource(file);
  if (![DataType.INT64, DataType.INT32, DataType.UINT8, DataType.INT8, DataType.INT16, DataType.UINT16].includes(s.dtype)) {
    throw new ModelError(file, `labels must be integers, got ${dtypeName(s.dtype)}`);
  }
  if (s.sampleShape.length > 1 || (s.sampleShape.length === 1 && s.sampleShape[0] !== 1)) {
    throw new ModelError(file, `labels must be one integer per sample, got shape [${[s.count, ...s.sampleShape].join(', ')}]`);
  }
  return labelsFromValues(file, s.read(0, s.count) as ArrayLike<number | bigint>);
}
