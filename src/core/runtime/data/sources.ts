import * as fs from 'fs';
import * as path from 'path';
import { ModelError, UsageError, fileError } from '../../errors';
import { ProtoReader, WireError } from '../../formats/protobuf';
import { decodeTensor, describeDecodeError } from '../../formats/onnx/decode';
import { DataType, dtypeName, float32ToFloat16, storageBytes } from '../../ir/dtype';
import type { NumericArray } from '../../ir/tensor';
import { parseNpy, parseNpyHeader } from './npy';

/**
 * A source of samples for one model input. Samples are read on demand, a batch at a time,
 * so large data sets never have to fit in memory.
 */
export interface SampleSource {
  /** The file or folder, for error messages. */
  label: string;
  dtype: DataType;
  /** Shape of one sample (the batch axis removed). */
  sampleShape: number[];
  count: number;
  /**
   * Where the samples go in a batch (default 0): a recurrent state shaped [2, batch, 128]
   * batches on axis 1, so a batch of n is [2, n, 128] and `sampleShape` is [2, 128].
   */
  batchAxis?: number;
  /** Samples [start, start + n) as one dense array, laid out with n at `batchAxis`. */
  read(start: number, n: number): NumericArray;
}

/**
 * The batch axis a model input declares: 0 unless its first dim is a fixed size and a later
 * dim is symbolic (a recurrent state [2, batch, 128] → 1).
 */
export function batchAxisOf(shape: ReadonlyArray<number | string | null> | null | undefined): number {
  if (!shape || shape.length === 0 || typeof shape[0] !== 'number') return 0;
  const named = shape.findIndex((d) => typeof d === 'string' && /batch|^[nb]$/i.test(d));
  if (named > 0) return named;
  const symbolic = shape.findIndex((d) => typeof d === 'string');
  return symbolic > 0 ? symbolic : 0;
}

/** Moves the sample axis of `data` ([n, ...sample]) to `axis` of the batch. */
function moveSampleAxis(data: NumericArray, n: number, sampleShape: number[], axis: number): NumericArray {
  if (axis === 0 || n === 1) return data;
  const outer = sampleShape.slice(0, axis).reduce((a, b) => a * b, 1);
  const inner = sampleShape.slice(axis).reduce((a, b) => a * b, 1);
  const out = new (data.constructor as new (len: number) => NumericArray)(data.length);
  for (let s = 0; s < n; s++) {
    for (let p = 0; p < outer; p++) {
      const from = (s * outer + p) * inner;
      const to = (p * n + s) * inner;
      for (let q = 0; q < inner; q++) out[to + q] = data[from + q];
    }
  }
  return out;
}

/** Wraps little-endian bytes as a typed array of the right kind (copying to align). */
export function typedFromBytes(dtype: DataType, bytes: Uint8Array): NumericArray {
  const aligned = new Uint8Array(bytes.length);
  aligned.set(bytes);
  const b = aligned.buffer;
  switch (dtype) {
    case DataType.FLOAT:
      return new Float32Array(b);
    case DataType.DOUBLE:
      return new Float64Array(b);
    case DataType.FLOAT16:
    case DataType.UINT16:
      return new Uint16Array(b);
    case DataType.INT16:
      return new Int16Array(b);
    case DataType.INT8:
      return new Int8Array(b);
    case DataType.UINT8:
    case DataType.BOOL:
      return aligned;
    case DataType.INT32:
      return new Int32Array(b);
    case DataType.UINT32:
      return new Uint32Array(b);
    case DataType.INT64:
      return new BigInt64Array(b);
    case DataType.UINT64:
      return new BigUint64Array(b);
    default:
      throw new UsageError(`${dtypeName(dtype)} data is not supported as model input`);
  }
}

export function allocTyped(dtype: DataType, n: number): NumericArray {
  return typedFromBytes(dtype, new Uint8Array(storageBytes(dtype, n)));
}

/** `.npy` read lazily by byte range; Fortran-order and big-endian files are loaded whole. */
export function npySource(file: string): SampleSource {
  let fd: number;
  try {
    fd = fs.openSync(file, 'r');
  } catch (e) {
    throw fileError(file, e);
  }
  try {
    const size = fs.fstatSync(fd).size;
    const head = new Uint8Array(Math.min(size, 1 << 16));
    fs.readSync(fd, head, 0, head.length, 0);
    const h = parseNpyHeader(head, file, size);
    if (h.shape.length === 0) throw new ModelError(file, 'a 0-d array has no sample axis');
    const sampleShape = h.shape.slice(1);
    const sampleElems = sampleShape.reduce((a, b) => a * b, 1);
    const sampleBytes = storageBytes(h.dtype, sampleElems);
    if (h.fortran || h.bigEndian) {
      const all = parseNpy(fs.readFileSync(file), file);
      return memorySource(file, all.dtype, all.shape, all.data);
    }
    return {
      label: file,
      dtype: h.dtype,
      sampleShape,
      count: h.shape[0],
      read(start, n) {
        const bytes = new Uint8Array(n * sampleBytes);
        const rfd = fs.openSync(file, 'r');
        try {
          let done = 0;
          while (done < bytes.length) {
            const got = fs.readSync(rfd, bytes, done, bytes.length - done, h.dataOffset + start * sampleBytes + done);
            if (got === 0) throw new ModelError(file, 'the file ended early (was it changed while reading?)');
            done += got;
          }
        } finally {
          fs.closeSync(rfd);
        }
        return typedFromBytes(h.dtype, bytes);
      },
    };
  } finally {
    fs.closeSync(fd);
  }
}

/** A source over bytes already in memory; `shape[0]` is the sample axis. */
export function memorySource(label: string, dtype: DataType, shape: number[], data: Uint8Array): SampleSource {
  const sampleShape = shape.slice(1);
  const sampleBytes = storageBytes(dtype, sampleShape.reduce((a, b) => a * b, 1));
  return {
    label,
    dtype,
    sampleShape,
    count: shape[0] ?? 1,
    read: (start, n) => typedFromBytes(dtype, data.subarray(start * sampleBytes, (start + n) * sampleBytes)),
  };
}

/** An ONNX `TensorProto` file (as in ONNX's own test data: `input_0.pb`). */
export function tensorPbSource(file: string): SampleSource {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    throw fileError(file, e);
  }
  try {
    const t = decodeTensor(new ProtoReader(buf), { externalSizes: new Map() });
    if (t.dims.length === 0) throw new ModelError(file, 'a scalar tensor has no sample axis');
    if (t.dtype === DataType.STRING) throw new ModelError(file, 'string tensors are not supported as model input');
    const bytes = t.bytes();
    return memorySource(file, t.dtype, t.dims, bytes);
  } catch (e) {
    if (e instanceof ModelError) throw e;
    const msg = describeDecodeError(e) ?? (e instanceof WireError ? e.message : undefined);
    if (msg) throw new ModelError(file, `not a valid TensorProto file (${msg})`);
    throw e;
  }
}

/** The most random samples one run may ask for (`random:N`, `--samples`). */
export const MAX_RANDOM_SAMPLES = 10_000;

/**
 * Reads a data option's list: the sample count when it asks for random data (`random` or
 * `random:N`; `fallback` when N is omitted), undefined when it names files. `random` stands
 * alone (it feeds every input); N must be an integer in 1…MAX_RANDOM_SAMPLES. UsageError otherwise.
 */
export function randomSpec(list: string[], fallback: number): number | undefined {
  const isRandom = (v: string) => /^(?:[^=/\\]+=)?random(?::|$)/.test(v);
  if (!list.some(isRandom)) return undefined;
  if (list.length > 1) throw new UsageError(`'random:N' gives every input random data and cannot be combined with other data (got '${list.join(',')}')`);
  const m = /^random(?::(.*))?$/.exec(list[0]);
  if (!m) throw new UsageError(`'random:N' gives every input random data and takes no input name (got '${list[0]}')`);
  const n = m[1] === undefined ? fallback : /^\d+$/.test(m[1]) ? Number(m[1]) : NaN;
  checkRandomCount(n, m[1] === undefined ? '--samples' : list[0]);
  return n;
}

/** Refuses a random sample count outside 1…MAX_RANDOM_SAMPLES (UsageError naming `what`). */
export function checkRandomCount(n: number, what: string): void {
  if (!Number.isSafeInteger(n) || n < 1 || n > MAX_RANDOM_SAMPLES) {
    throw new UsageError(`${what}: the random sample count must be an integer from 1 to ${MAX_RANDOM_SAMPLES.toLocaleString('en-US')}`);
  }
}

/** Deterministic uniform random samples: sample i is the same whatever the batch size. */
export function randomSource(name: string, dtype: DataType, sampleShape: number[], count: number, seed = 0, batchAxis = 0): SampleSource {
  if (batchAxis > 0) {
    const flat = randomSource(name, dtype, sampleShape, count, seed);
    return { ...flat, batchAxis, read: (start, n) => moveSampleAxis(flat.read(start, n), n, sampleShape, batchAxis) };
  }
  const per = sampleShape.reduce((a, b) => a * b, 1);
  if (!Number.isSafeInteger(per) || per > 2 ** 28) {
    throw new UsageError(`input '${name}': a sample of shape [${sampleShape.join(', ')}] is too large to generate`);
  }
  return {
    label: `random data for '${name}'`,
    dtype,
    sampleShape,
    count,
    read(start, n) {
      const out = allocTyped(dtype, n * per);
      for (let s = 0; s < n; s++) {
        let a = (seed * 2654435761 + (start + s) * 40503 + 1) >>> 0;
        const next = () => {
          a = (a + 0x6d2b79f5) >>> 0;
          let t = a;
          t = Math.imul(t ^ (t >>> 15), t | 1);
          t ^= t + Math.imul(t ^ (t >>> 7), t | 61);
          return ((t ^ (t >>> 14)) >>> 0) / 4294967296;
        };
        const o = s * per;
        for (let i = 0; i < per; i++) {
          const r = next();
          if (out instanceof BigInt64Array || out instanceof BigUint64Array) out[o + i] = BigInt(Math.floor(r * 100));
          else if (dtype === DataType.BOOL) out[o + i] = r < 0.5 ? 0 : 1;
          else if (dtype === DataType.FLOAT16) out[o + i] = float32ToFloat16(r);
          else if (dtype === DataType.FLOAT || dtype === DataType.DOUBLE) out[o + i] = r;
          else out[o + i] = Math.floor(r * 100);
        }
      }
      return out;
    },
  };
}


export function isDir(p: string): boolean {
  try {
    return fs.statSync(p).isDirectory();
  } catch {
    return false;
  }
}

export function extOf(p: string): string {
  return path.extname(p).toLowerCase();
}
