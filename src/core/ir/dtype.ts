/** int64 values: a number when exactly representable, otherwise a bigint. */
export type Int64 = number | bigint;

/** Element types, numbered as ONNX's TensorProto.DataType so the ONNX codec needs no mapping. */
export enum DataType {
  UNDEFINED = 0,
  FLOAT = 1,
  UINT8 = 2,
  INT8 = 3,
  UINT16 = 4,
  INT16 = 5,
  INT32 = 6,
  INT64 = 7,
  STRING = 8,
  BOOL = 9,
  FLOAT16 = 10,
  DOUBLE = 11,
  UINT32 = 12,
  UINT64 = 13,
  COMPLEX64 = 14,
  COMPLEX128 = 15,
  BFLOAT16 = 16,
  FLOAT8E4M3FN = 17,
  FLOAT8E4M3FNUZ = 18,
  FLOAT8E5M2 = 19,
  FLOAT8E5M2FNUZ = 20,
  UINT4 = 21,
  INT4 = 22,
  FLOAT4E2M1 = 23,
}

interface DTypeInfo {
  name: string;
  /** Storage bits per element (4 for the packed 4-bit types); 0 for variable-size strings. */
  bits: number;
  isFloat: boolean;
}

const INFO: Record<number, DTypeInfo> = {
  [DataType.UNDEFINED]: { name: 'undefined', bits: 0, isFloat: false },
  [DataType.FLOAT]: { name: 'float32', bits: 32, isFloat: true },
  [DataType.UINT8]: { name: 'uint8', bits: 8, isFloat: false },
  [DataType.INT8]: { name: 'int8', bits: 8, isFloat: false },
  [DataType.UINT16]: { name: 'uint16', bits: 16, isFloat: false },
  [DataType.INT16]: { name: 'int16', bits: 16, isFloat: false },
  [DataType.INT32]: { name: 'int32', bits: 32, isFloat: false },
  [DataType.INT64]: { name: 'int64', bits: 64, isFloat: false },
  [DataType.STRING]: { name: 'string', bits: 0, isFloat: false },
  [DataType.BOOL]: { name: 'bool', bits: 8, isFloat: false },
  [DataType.FLOAT16]: { name: 'float16', bits: 16, isFloat: true },
  [DataType.DOUBLE]: { name: 'float64', bits: 64, isFloat: true },
  [DataType.UINT32]: { name: 'uint32', bits: 32, isFloat: false },
  [DataType.UINT64]: { name: 'uint64', bits: 64, isFloat: false },
  [DataType.COMPLEX64]: { name: 'complex64', bits: 64, isFloat: true },
  [DataType.COMPLEX128]: { name: 'complex128', bits: 128, isFloat: true },
  [DataType.BFLOAT16]: { name: 'bfloat16', bits: 16, isFloat: true },
  [DataType.FLOAT8E4M3FN]: { name: 'float8e4m3fn', bits: 8, isFloat: true },
  [DataType.FLOAT8E4M3FNUZ]: { name: 'float8e4m3fnuz', bits: 8, isFloat: true },
  [DataType.FLOAT8E5M2]: { name: 'float8e5m2', bits: 8, isFloat: true },
  [DataType.FLOAT8E5M2FNUZ]: { name: 'float8e5m2fnuz', bits: 8, isFloat: true },
  [DataType.UINT4]: { name: 'uint4', bits: 4, isFloat: false },
  [DataType.INT4]: { name: 'int4', bits: 4, isFloat: false },
  [DataType.FLOAT4E2M1]: { name: 'float4e2m1', bits: 4, isFloat: true },
};

export function isKnownDataType(t: number): t is DataType {
  return Object.prototype.hasOwnProperty.call(INFO, t);
}

export function dtypeName(t: DataType): string {
  return INFO[t]?.name ?? `dtype(${t})`;
}

export function dtypeBits(t: DataType): number {
  return INFO[t]?.bits ?? 0;
}

export function isFloatType(t: DataType): boolean {
  return INFO[t]?.isFloat ?? false;
}

/** Bytes needed to store `count` elements densely (4-bit types pack two per byte). */
export function storageBytes(t: DataType, count: number): number {
  return Math.ceil((count * dtypeBits(t)) / 8);
}

export function dtypeFromName(name: string): DataType | undefined {
  for (const [k, v] of Object.entries(INFO)) if (v.name === name) return Number(k) as DataType;
  return undefined;
}

// ---- float16 / bfloat16 conversion -----------------------------------------------

const f32 = new Float32Array(1);
const u32 = new Uint32Array(f32.buffer);

export function float16ToFloat32(h: number): number {
  const s = h & 0x8000 ? -1 : 1;
  const e = (h >> 10) & 0x1f;
  const m = h & 0x3ff;
  if (e === 0) return s * m * 2 ** -24;
  if (e === 31) return m ? NaN : s * Infinity;
  return s * (1 + m / 1024) * 2 ** (e - 15);
}

let f16Table: Float32Array | undefined;

/**
 * float16 bits → float32 values for a whole array, through a 65536-entry table (256 KiB,
 * built on first use): about 30x faster than mapping `float16ToFloat32` element by element,
 * which matters for activations (tens of millions of values per sample).
 */
export function float16ArrayToFloat32(h: Uint16Array, out = new Float32Array(h.length)): Float32Array {
  if (!f16Table) {
    f16Table = new Float32Array(65536);
    for (let i = 0; i < 65536; i++) f16Table[i] = float16ToFloat32(i);
  }
  const t = f16Table;
  for (let i = 0; i < h.length; i++) out[i] = t[h[i]];
  return out;
}

/** Round-to-nearest-even float32 → float16 bits. */
export function float32ToFloat16(v: number): number {
  f32[0] = v;
  const x = u32[0];
  const sign = (x >>> 16) & 0x8000;
  const exp = (x >>> 23) & 0xff;
  let mant = x & 0x7fffff;
  if (exp === 0xff) return sign | 0x7c00 | (mant ? 0x200 : 0);
  let e = exp - 127 + 15;
  if (e >= 31) return sign | 0x7c00;
  if (e <= 0) {
    if (e < -10) return sign;
    mant |= 0x800000;
    const shift = 14 - e;
    const half = 1 << (shift - 1);
    let r = mant >> shift;
    const rem = mant & ((1 << shift) - 1);
    if (rem > half || (rem === half && r & 1)) r++;
    return sign | r;
  }
  let r = mant >> 13;
  const rem = mant & 0x1fff;
  if (rem > 0x1000 || (rem === 0x1000 && r & 1)) {
    r++;
    if (r === 0x400) {
      r = 0;
      e++;
      if (e >= 31) return sign | 0x7c00;
    }
  }
  return sign | (e << 10) | r;
}

export function bfloat16ToFloat32(b: number): number {
  u32[0] = (b & 0xffff) << 16;
  return f32[0];
}

export function float32ToBfloat16(v: number): number {
  f32[0] = v;
  const x = u32[0];
  if ((x & 0x7f800000) === 0x7f800000 && x & 0x7fffff) return (x >>> 16) | 0x40;
  const rounding = 0x7fff + ((x >>> 16) & 1);
  return ((x + rounding) >>> 16) & 0xffff;
}
