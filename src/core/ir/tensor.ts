import * as fs from 'fs';
import {
  DataType,
  bfloat16ToFloat32,
  dtypeName,
  float16ToFloat32,
  isFloatType,
  storageBytes,
} from './dtype';

/**
 * Where a tensor's bytes live. Data is always dense little-endian in the layout ONNX's
 * `raw_data` uses; 4-bit types pack two elements per byte, low nibble first.
 */
export type TensorSource =
  /** A view onto bytes already in memory (usually the model file itself: no copy). */
  | { kind: 'bytes'; bytes: Uint8Array }
  /**
   * Bytes in another file, read on demand. `file` is absolute and already confined. With
   * `pieces`, the bytes are those pieces end to end (a TF.js weight spanning shards).
   */
  | { kind: 'external'; file: string; offset: number; length: number; pieces?: Array<{ file: string; offset: number; length: number }> }
  /** Decoded on first use (e.g. ONNX typed fields such as float_data). */
  | { kind: 'lazy'; load: () => Uint8Array };

function readFully(file: string, position: number, target: Uint8Array): void {
  const fd = fs.openSync(file, 'r');
  try {
    let done = 0;
    while (done < target.length) {
      const n = fs.readSync(fd, target, done, target.length - done, position + done);
      if (n === 0) throw new Error(`data file ${file} ended early`);
      done += n;
    }
  } finally {
    fs.closeSync(fd);
  }
}

export type NumericArray =
  | Float32Array
  | Float64Array
  | Int8Array
  | Uint8Array
  | Int16Array
  | Uint16Array
  | Int32Array
  | Uint32Array
  | BigInt64Array
  | BigUint64Array;

/** Product of dims, or throws when it is not an exact, safe element count. */
export function elementCount(dims: readonly number[]): number {
  let n = 1;
  for (const d of dims) {
    if (!Number.isSafeInteger(d) || d < 0) throw new RangeError(`invalid dimension ${d}`);
    n *= d;
    if (!Number.isSafeInteger(n)) throw new RangeError(`element count of [${dims.join(', ')}] overflows`);
  }
  return n;
}

export class Tensor {
  /** Set when the data was replaced after loading (writers must not reuse the original bytes). */
  modified = false;
  /**
   * How the file stores the values when that differs from `dtype` (TF.js manifests' uint8/uint16/
   * float16 quantization, dequantized to float32 on read): the stored dtype and byte count.
   */
  storedAs?: { dtype: DataType; bytes: number };
  private cache: Uint8Array | undefined;

  constructor(
    public name: string,
    public dtype: DataType,
    public dims: number[],
    private source: TensorSource,
    public docString = '',
    /** String tensors hold their elements here instead of `source`. */
    public strings?: Uint8Array[],
  ) {}

  static fromArray(name: string, dtype: DataType, dims: number[], data: NumericArray | Uint8Array): Tensor {
    const bytes = new Uint8Array(data.buffer, data.byteOffset, data.byteLength);
    const t = new Tensor(name, dtype, dims, { kind: 'bytes', bytes });
    t.checkLength(bytes.length);
    return t;
  }

  get numel(): number {
    return elementCount(this.dims);
  }

  get byteLength(): number {
    return this.dtype === DataType.STRING
      ? (this.strings ?? []).reduce((a, s) => a + s.length, 0)
      : storageBytes(this.dtype, this.numel);
  }

  get sourceKind(): TensorSource['kind'] {
    return this.source.kind;
  }

  /** Where the bytes of an external tensor live (for diagnostics and reports). */
  get externalFile(): string | undefined {
    return this.source.kind === 'external' ? this.source.file : undefined;
  }

  /** Dense little-endian bytes. A view for in-memory sources; reads the file for external ones. */
  bytes(): Uint8Array {
    switch (this.source.kind) {
      case 'bytes':
        return this.source.bytes;
      case 'lazy':
        this.cache ??= this.source.load();
        return this.cache;
      case 'external': {
        const out = new Uint8Array(this.source.length);
        this.readInto(0, out);
        return out;
      }
    }
  }

  /** Copies `target.length` bytes starting at `byteOffset` into `target`. */
  readInto(byteOffset: number, target: Uint8Array): void {
    if (byteOffset + target.length > this.byteLength) throw new RangeError('read past the end of tensor data');
    if (this.source.kind === 'external' && this.source.pieces) {
      // Walk the pieces that overlap [byteOffset, byteOffset + length).
      let at = 0;
      let done = 0;
      for (const p of this.source.pieces) {
        const lo = Math.max(byteOffset + done, at);
        const hi = Math.min(byteOffset + target.length, at + p.length);
        if (hi > lo) {
          readFully(p.file, p.offset + (lo - at), target.subarray(done, done + hi - lo));
          done += hi - lo;
        }
        at += p.length;
        if (done === target.length) break;
      }
      return;
    }
    if (this.source.kind === 'external') {
      const fd = fs.openSync(this.source.file, 'r');
      try {
        let done = 0;
        while (done < target.length) {
          const n = fs.readSync(fd, target, done, target.length - done, this.source.offset + byteOffset + done);
          if (n === 0) throw new Error(`external data file ${this.source.file} ended early`);
          done += n;
        }
      } finally {
        fs.closeSync(fd);
      }
      return;
    }
    const b = this.bytes();
    target.set(b.subarray(byteOffset, byteOffset + target.length));
  }

  /** Replaces the data (dims and dtype may change). */
  setData(dtype: DataType, dims: number[], data: NumericArray | Uint8Array): void {
    this.dtype = dtype;
    this.dims = dims;
    this.source = { kind: 'bytes', bytes: new Uint8Array(data.buffer, data.byteOffset, data.byteLength) };
    this.cache = undefined;
    this.strings = undefined;
    this.modified = true;
    this.checkLength(this.source.kind === 'bytes' ? this.source.bytes.length : 0);
  }

  /** Verifies that the stored byte count matches dims × dtype. */
  checkLength(actual: number): void {
    const want = this.byteLength;
    if (actual !== want) {
      throw new RangeError(
        `tensor '${this.name}' declares ${dtypeName(this.dtype)}[${this.dims.join(', ')}] (${want} bytes) but holds ${actual} bytes`,
      );
    }
  }

  /**
   * Streams the values as float64 numbers, `chunkElems` at a time, without materialising
   * the whole tensor (external data is read piecewise). Non-numeric types are rejected.
   */
  forEachChunk(chunkElems: number, cb: (values: Float64Array, count: number) => void): void {
    const conv = converterFor(this.dtype);
    const bits = conv.bits;
    const n = this.numel;
    // Keep chunks on a byte boundary for 4-bit types.
    const step = bits === 4 ? chunkElems - (chunkElems % 2) : chunkElems;
    const scratch = new Uint8Array(Math.ceil((step * bits) / 8) + 8);
    const out = new Float64Array(step);
    const inMemory = this.source.kind !== 'external' ? this.bytes() : undefined;
    for (let start = 0; start < n; start += step) {
      const count = Math.min(step, n - start);
      const byteStart = (start * bits) / 8;
      const byteLen = Math.ceil((count * bits) / 8);
      let view: Uint8Array;
      if (inMemory) view = inMemory.subarray(byteStart, byteStart + byteLen);
      else {
        view = scratch.subarray(0, byteLen);
        this.readInto(byteStart, view);
      }
      conv.decode(view, count, out, scratch);
      cb(out, count);
    }
  }

  /** All values as float32 (allocates numel × 4 bytes). */
  toFloat32(): Float32Array {
    const out = new Float32Array(this.numel);
    if (this.dtype === DataType.FLOAT) {
      const b = this.bytes();
      new Uint8Array(out.buffer).set(b);
      return out;
    }
    let o = 0;
    this.forEachChunk(65536, (v, c) => {
      for (let i = 0; i < c; i++) out[o++] = v[i];
    });
    return out;
  }

  /** Integer values (for shape-like int64/int32 tensors). Throws on huge tensors. */
  toNumbers(limit = 1 << 20): number[] {
    if (this.numel > limit) throw new RangeError(`tensor '${this.name}' is too large to read as a list`);
    const r: number[] = [];
    this.forEachChunk(4096, (v, c) => {
      for (let i = 0; i < c; i++) r.push(v[i]);
    });
    return r;
  }

  isFloat(): boolean {
    return isFloatType(this.dtype);
  }
}

// ---- per-dtype decoders into float64 ------------------------------------------------

interface Converter {
  bits: number;
  /** Decodes `count` values from little-endian `src` into `out`. `scratch` is free for alignment. */
  decode(src: Uint8Array, count: number, out: Float64Array, scratch: Uint8Array): void;
}

function aligned<T extends NumericArray>(
  src: Uint8Array,
  count: number,
  size: number,
  scratch: Uint8Array,
  make: (buf: ArrayBufferLike, off: number, len: number) => T,
): T {
  if ((src.byteOffset % size) === 0) return make(src.buffer, src.byteOffset, count);
  // Unaligned view: copy into an aligned scratch region first (bounded by chunk size).
  const tmp = scratch.byteOffset % size === 0 ? scratch : new Uint8Array(count * size);
  tmp.set(src.subarray(0, count * size));
  return make(tmp.buffer, tmp.byteOffset, count);
}

function typedConverter<T extends NumericArray>(
  size: number,
  make: (buf: ArrayBufferLike, off: number, len: number) => T,
): Converter {
  return {
    bits: size * 8,
    decode(src, count, out, scratch) {
      const a = aligned(src, count, size, scratch, make);
      for (let i = 0; i < count; i++) out[i] = Number(a[i]);
    },
  };
}

function converterFor(t: DataType): Converter {
  switch (t) {
    case DataType.FLOAT:
      return typedConverter(4, (b, o, l) => new Float32Array(b, o, l));
    case DataType.DOUBLE:
      return typedConverter(8, (b, o, l) => new Float64Array(b, o, l));
    case DataType.INT8:
      return typedConverter(1, (b, o, l) => new Int8Array(b, o, l));
    case DataType.UINT8:
    case DataType.BOOL:
      return typedConverter(1, (b, o, l) => new Uint8Array(b, o, l));
    case DataType.INT16:
      return typedConverter(2, (b, o, l) => new Int16Array(b, o, l));
    case DataType.UINT16:
      return typedConverter(2, (b, o, l) => new Uint16Array(b, o, l));
    case DataType.INT32:
      return typedConverter(4, (b, o, l) => new Int32Array(b, o, l));
    case DataType.UINT32:
      return typedConverter(4, (b, o, l) => new Uint32Array(b, o, l));
    case DataType.INT64:
      return typedConverter(8, (b, o, l) => new BigInt64Array(b, o, l));
    case DataType.UINT64:
      return typedConverter(8, (b, o, l) => new BigUint64Array(b, o, l));
    case DataType.FLOAT16:
    case DataType.BFLOAT16: {
      const f = t === DataType.FLOAT16 ? float16ToFloat32 : bfloat16ToFloat32;
      return {
        bits: 16,
        decode(src, count, out) {
          for (let i = 0; i < count; i++) out[i] = f(src[2 * i] | (src[2 * i + 1] << 8));
        },
      };
    }
    case DataType.INT4:
    case DataType.UINT4: {
      const signed = t === DataType.INT4;
      return {
        bits: 4,
        decode(src, count, out) {
          for (let i = 0; i < count; i++) {
            const byte = src[i >> 1];
            let v = i & 1 ? byte >> 4 : byte & 0x0f;
            if (signed && v > 7) v -= 16;
            out[i] = v;
          }
        },
      };
    }
    default:
      throw new TypeError(`values of type ${dtypeName(t)} cannot be read as numbers`);
  }
}
