import * as fs from 'fs';
import { ModelError, fileError } from '../../errors';
import { DataType, dtypeName, storageBytes } from '../../ir/dtype';
import { elementCount } from '../../ir/tensor';
import { writeFileAtomic } from '../../util/atomic-write';

/**
 * NumPy `.npy` files (format versions 1.0, 2.0 and 3.0). Every numeric dtype, float16 and
 * bool are supported, little- or big-endian; Fortran-ordered arrays are transposed to C order.
 */

export interface NdArray {
  dtype: DataType;
  shape: number[];
  /** Dense little-endian C-order bytes. */
  data: Uint8Array;
}

const DESCR: Record<string, DataType> = {
  f4: DataType.FLOAT,
  f8: DataType.DOUBLE,
  f2: DataType.FLOAT16,
  i1: DataType.INT8,
  u1: DataType.UINT8,
  i2: DataType.INT16,
  u2: DataType.UINT16,
  i4: DataType.INT32,
  u4: DataType.UINT32,
  i8: DataType.INT64,
  u8: DataType.UINT64,
  b1: DataType.BOOL,
};

const MAGIC = [0x93, 0x4e, 0x55, 0x4d, 0x50, 0x59]; // \x93NUMPY

export interface NpyHeader {
  dtype: DataType;
  shape: number[];
  fortran: boolean;
  bigEndian: boolean;
  /** Byte offset of the data in the file. */
  dataOffset: number;
  dataBytes: number;
}

/** Parses the header from the first bytes of a .npy file (at least the whole header). */
export function parseNpyHeader(buf: Uint8Array, file: string, fileSize = buf.length): NpyHeader {
  const fail = (why: string) => new ModelError(file, why);
  if (buf.length < 10 || MAGIC.some((b, i) => buf[i] !== b)) throw fail('not a .npy file (missing the \\x93NUMPY signature)');
  const major = buf[6];
  const dv = new DataView(buf.buffer, buf.byteOffset, buf.byteLength);
  let headerLen: number;
  let start: number;
  if (major === 1) {
    headerLen = dv.getUint16(8, true);
    start = 10;
  } else if (major === 2 || major === 3) {
    if (buf.length < 12) throw fail('truncated .npy header');
    headerLen = dv.getUint32(8, true);
    start = 12;
  } else throw fail(`unsupported .npy format version ${major}`);
  if (start + headerLen > buf.length) throw fail('truncated .npy header');
  const header = new TextDecoder(major === 3 ? 'utf-8' : 'latin1').decode(buf.subarray(start, start + headerLen));
  const descr = /'descr'\s*:\s*'([^']*)'/.exec(header)?.[1];
  const fortran = /'fortran_order'\s*:\s*(True|False)/.exec(header)?.[1];
  const shapeStr = /'shape'\s*:\s*\(([^)]*)\)/.exec(header)?.[1];
  if (descr === undefined || fortran === undefined || shapeStr === undefined) throw fail('malformed .npy header');
  const m = /^([<>|=]?)([a-z]\d+)$/.exec(descr);
  const dtype = m ? DESCR[m[2]] : undefined;
  if (!m || dtype === undefined) throw fail(`unsupported .npy dtype '${descr}' (structured, string and object arrays are not numeric)`);
  const shape = shapeStr
    .split(',')
    .map((s) => s.trim())
    .filter((s) => s.length)
    .map(Number);
  let n: number;
  try {
    n = elementCount(shape);
  } catch {
    throw fail(`invalid .npy shape (${shapeStr})`);
  }
  const bytes = storageBytes(dtype, n);
  const dataStart = start + headerLen;
  if (fileSize - dataStart < bytes) {
    throw fail(`truncated .npy data: shape (${shape.join(', ')}) of ${dtypeName(dtype)} needs ${bytes} bytes, file has ${fileSize - dataStart}`);
  }
  return { dtype, shape, fortran: fortran === 'True' && shape.length > 1, bigEndian: m[1] === '>', dataOffset: dataStart, dataBytes: bytes };
}

export function parseNpy(buf: Uint8Array, file: string): NdArray {
  const h = parseNpyHeader(buf, file);
  let data = buf.subarray(h.dataOffset, h.dataOffset + h.dataBytes);
  const n = h.shape.reduce((a, b) => a * b, 1);
  const size = h.dataBytes / Math.max(n, 1);
  if (h.bigEndian && size > 1) data = byteSwap(data, size);
  if (h.fortran) data = fortranToC(data, h.shape, size);
  return { dtype: h.dtype, shape: h.shape, data };
}

export function readNpy(file: string): NdArray {
  let buf: Buffer;
  try {
    buf = fs.readFileSync(file);
  } catch (e) {
    throw fileError(file, e);
  }
  return parseNpy(buf, file);
}

export function encodeNpy(a: NdArray): Uint8Array {
  const code = Object.entries(DESCR).find(([, t]) => t === a.dtype)?.[0];
  if (!code) throw new TypeError(`cannot write ${dtypeName(a.dtype)} to .npy`);
  const order = code.endsWith('1') ? '|' : '<';
  const shape = a.shape.length === 1 ? `(${a.shape[0]},)` : `(${a.shape.join(', ')})`;
  let header = `{'descr': '${order}${code}', 'fortran_order': False, 'shape': ${shape}, }`;
  // Pad so that the data starts on a 64-byte boundary; the header ends with a newline.
  const total = Math.ceil((10 + header.length + 1) / 64) * 64;
  header = header.padEnd(total - 10 - 1, ' ') + '\n';
  const out = new Uint8Array(total + a.data.length);
  out.set(MAGIC, 0);
  out[6] = 1;
  out[7] = 0;
  new DataView(out.buffer).setUint16(8, header.length, true);
  for (let i = 0; i < header.length; i++) out[10 + i] = header.charCodeAt(i);
  out.set(a.data, total);
  return out;
}

export function writeNpy(file: string, a: NdArray): void {
  writeFileAtomic(file, [encodeNpy(a)]);
}

export function byteSwap(data: Uint8Array, size: number): Uint8Array {
  const out = new Uint8Array(data.length);
  for (let i = 0; i < data.length; i += size) for (let j = 0; j < size; j++) out[i + j] = data[i + size - 1 - j];
  return out;
}

/** Fortran order is C order of the reversed shape; transpose it back. */
function fortranToC(data: Uint8Array, shape: number[], size: number): Uint8Array {
  const rank = shape.length;
  const out = new Uint8Array(data.length);
  const n = data.length / size;
  // strides of the Fortran layout (first axis fastest)
  const fStride: number[] = [];
  let s = 1;
  for (let i = 0; i < rank; i++) {
    fStride.push(s);
    s *= shape[i];
  }
  const idx = new Array<number>(rank).fill(0);
  for (let c = 0; c < n; c++) {
    let f = 0;
    for (let i = 0; i < rank; i++) f += idx[i] * fStride[i];
    out.set(data.subarray(f * size, f * size + size), c * size);
    for (let i = rank - 1; i >= 0; i--) {
      if (++idx[i] < shape[i]) break;
      idx[i] = 0;
    }
  }
  return out;
}

/** Views or converts an NdArray as float32 values. */
export function npyToFloat32(a: NdArray): Float32Array {
  if (a.dtype === DataType.FLOAT) {
    const out = new Float32Array(a.data.length / 4);
    new Uint8Array(out.buffer).set(a.data);
    return out;
  }
  throw new TypeError(`expected float32 data, got ${dtypeName(a.dtype)}`);
}
