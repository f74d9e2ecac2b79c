import { ModelError, UsageError } from '../../errors';
import { DataType, dtypeName } from '../../ir/dtype';
import type { HostTensor, IOSpec } from '../session';
import { checkSamples, labelsFromValues } from './checks';
import { imageFolderSource, imageOptionsFromShape, type ImageOptions } from './images';
import { extOf, isDir, npySource, randomSource, tensorPbSource, type SampleSource } from './sources';

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
  ) {}

  /** Samples [start, start + n) for every input, each with a leading batch axis of n. */
  batch(start: number, n: number): Record<string, HostTensor> {
    const out: Record<string, HostTensor> = {};
    for (const [name, s] of this.sources) out[name] = { dtype: s.dtype, dims: [n, ...s.sampleShape], data: s.read(start, n) };
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
    return [...this.sources.entries()].map(([n, s]) => `${n} ← ${s.label}`).join(', ');
  }
}

function openSource(spec: DataSpec, input: IOSpec, opts: BindOptions): SampleSource {
  const p = spec.path;
  if (isDir(p)) {
    return imageFolderSource(p, imageOptionsFromShape(withShape(input, opts), opts.image));
  }
  const ext = extOf(p);
  if (ext === '.npy') return npySource(p);
  if (ext === '.pb') return tensorPbSource(p);
  throw new UsageError(`cannot read input data from '${p}': use a .npy file, an ONNX TensorProto .pb file, or a folder of images`);
}

function withShape(input: IOSpec, opts: BindOptions): Array<number | string | null> {
  const fixed = opts.shapes?.[input.name];
  if (!fixed) return input.shape;
  if (fixed.length !== input.shape.length) {
    throw new UsageError(`--shape for '${input.name}' has ${fixed.length} dims, the model input has ${input.shape.length}`);
  }
  return fixed;
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
    checkSamples(s);
    sources.set(name, s);
  }
  const missing = inputs.filter((i) => !sources.has(i.name));
  if (missing.length) {
    if (opts.requireData || opts.randomSamples === undefined) {
      throw new UsageError(`no data for input${missing.length > 1 ? 's' : ''} ${missing.map((m) => `'${m.name}'`).join(', ')}`);
    }
    for (const input of missing) {
      const shape = withShape(input, opts).slice(1);
      const dims = shape.map((d) => {
        if (typeof d !== 'number') {
          throw new UsageError(`input '${input.name}' has dynamic dims ${shapeStr(input.shape)}: fix them with --shape ${input.name}=${input.shape.map((x) => (typeof x === 'number' ? x : 1)).join('x')}`);
        }
        return d;
      });
      sources.set(input.name, randomSource(input.name, input.dtype === DataType.UNDEFINED ? DataType.FLOAT : input.dtype, dims, opts.randomSamples, opts.seed));
    }
  }
  const counts = new Set([...sources.values()].map((s) => s.count));
  if (counts.size > 1) {
    throw new UsageError(`inputs have different sample counts: ${[...sources.entries()].map(([n, s]) => `${n}=${s.count}`).join(', ')}`);
  }
  return new Dataset(sources, [...counts][0] ?? 0);
}

/** The batch size a model allows: a fixed first dim wins over the request. */
export function chooseBatchSize(inputs: IOSpec[], requested: number): number {
  const fixed = inputs.map((i) => i.shape[0]).filter((d): d is number => typeof d === 'number');
  if (fixed.length) return fixed[0];
  return Math.max(1, Math.floor(requested));
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
