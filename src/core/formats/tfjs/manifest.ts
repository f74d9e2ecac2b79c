import * as fs from 'fs';
import * as path from 'path';
import { UsageError } from '../../errors';
import { DataType, float32ToFloat16, storageBytes } from '../../ir/dtype';
import { Tensor, elementCount } from '../../ir/tensor';
import { writeFileAtomic } from '../../util/atomic-write';
import { confine } from '../onnx/decode';

/**
 * The TF.js weights manifest, shared by layers and graph models: groups of weights, each
 * group the concatenation of its shard files. Reading is lazy (a weight that lies inside
 * one shard is an external tensor source; one that straddles shards is assembled on first
 * use). Writing shards the weights (4 MiB by default) and can quantize them the way TF.js
 * deploys them: float16, or uint8/uint16 with a per-tensor min and scale.
 */

export interface WeightSpec {
  name: string;
  shape: number[];
  dtype: string;
  quantization?: { dtype: string; min?: number; scale?: number; original_dtype?: string };
}

export interface ManifestGroup {
  paths: string[];
  weights: WeightSpec[];
}

export type WeightQuantization = 'float16' | 'uint8' | 'uint16';
export const WEIGHT_QUANTIZATIONS: WeightQuantization[] = ['float16', 'uint8', 'uint16'];

type Json = Record<string, unknown>;

const STORED: Record<string, DataType> = {
  float32: DataType.FLOAT,
  int32: DataType.INT32,
  bool: DataType.BOOL,
  float16: DataType.FLOAT16,
  uint8: DataType.UINT8,
  uint16: DataType.UINT16,
};

export interface ReadWeights {
  tensors: Map<string, Tensor>;
  /** The quantization each weight had in the file, by name (absent: stored plainly). */
  quantization: Map<string, WeightQuantization>;
  /** Absolute paths of every shard (writers must never overwrite them). */
  shardFiles: string[];
}

interface Piece {
  file: string;
  offset: number;
  length: number;
}

/** Reads a weightsManifest lazily. `fail` throws the caller's ModelError. */
export function readManifest(modelFile: string, manifest: unknown, fail: (why: string) => never): ReadWeights {
  if (!Array.isArray(manifest)) fail('no weightsManifest array');
  const dir = fs.realpathSync(path.dirname(path.resolve(modelFile)));
  const out: ReadWeights = { tensors: new Map(), quantization: new Map(), shardFiles: [] };
  for (const [g, group] of (manifest as Json[]).entries()) {
    const paths = group?.paths;
    const specs = group?.weights;
    if (!Array.isArray(paths) || !Array.isArray(specs)) fail(`weightsManifest[${g}] needs "paths" and "weights" arrays`);
    // The group's byte stream is its shards end to end: keep (file, start, size) per shard.
    const shards: Array<{ file: string; start: number; size: number }> = [];
    let total = 0;
    for (const p of paths as unknown[]) {
      if (typeof p !== 'string') fail(`weightsManifest[${g}] has a non-string path`);
      let resolved = '';
      try {
        resolved = confine(dir, p as string, p as string);
      } catch {
        fail(`weight shard path '${p}' points outside the model's folder`);
      }
      let size = 0;
      try {
        const st = fs.statSync(resolved);
        if (!st.isFile()) throw new Error('not a file');
        size = st.size;
      } catch {
        fail(`weight shard '${p}' is missing`);
      }
      shards.push({ file: resolved, start: total, size });
      out.shardFiles.push(resolved);
      total += size;
    }
    const piecesOf = (begin: number, length: number): Piece[] => {
      const pieces: Piece[] = [];
      for (const s of shards) {
        const a = Math.max(begin, s.start);
        const b = Math.min(begin + length, s.start + s.size);
        if (b > a) pieces.push({ file: s.file, offset: a - s.start, length: b - a });
      }
      return pieces;
    };
    let offset = 0;
    for (const s of specs as WeightSpec[]) {
      if (!s || typeof s.name !== 'string' || !Array.isArray(s.shape)) fail(`weightsManifest[${g}] has a malformed weight entry`);
      const q = s.quantization;
      const stored = q ? q.dtype : s.dtype;
      const dtype = STORED[stored];
      const quantizedInt = dtype === DataType.UINT8 || dtype === DataType.UINT16;
      if (dtype === undefined || (!q && quantizedInt) || (q && dtype !== DataType.FLOAT16 && !quantizedInt)) fail(`weight '${s.name}' has unknown dtype '${stored}'`);
      if (q && quantizedInt && (typeof q.min !== 'number' || typeof q.scale !== 'number')) fail(`weight '${s.name}' is ${stored}-quantized without a numeric min and scale`);
      if (q && s.dtype !== 'float32' && s.dtype !== 'int32') fail(`weight '${s.name}' has unsupported dtype '${s.dtype}' for quantization`);
      let n = 0;
      try {
        n = elementCount(s.shape);
      } catch {
        fail(`weight '${s.name}' has an invalid shape [${s.shape.join(', ')}]`);
      }
      const bytes = storageBytes(dtype, n);
      if (offset + bytes > total) fail(`weight shards hold ${total} bytes, fewer than the manifest declares (weight '${s.name}' needs bytes ${offset}…${offset + bytes})`);
      if (out.tensors.has(s.name)) fail(`weight '${s.name}' appears twice in the manifest`);
      const pieces = piecesOf(offset, bytes);
      offset += bytes;
      const raw = (): Uint8Array => {
        const buf = new Uint8Array(bytes);
        let at = 0;
        for (const p of pieces) {
          const fd = fs.openSync(p.file, 'r');
          try {
            fs.readSync(fd, buf, at, p.length, p.offset);
          } finally {
            fs.closeSync(fd);
          }
          at += p.length;
        }
        return buf;
      };
      const outDtype = q ? (s.dtype === 'int32' ? DataType.INT32 : DataType.FLOAT) : dtype;
      if (q) out.quantization.set(s.name, stored as WeightQuantization);
      if (q && quantizedInt) {
        const t = new Tensor(s.name, outDtype, s.shape, { kind: 'lazy', load: () => dequantize(raw(), n, dtype, q.min!, q.scale!, outDtype) });
        t.storedAs = { dtype, bytes };
        out.tensors.set(s.name, t);
      } else if (q) {
        const half = new Tensor(s.name, DataType.FLOAT16, s.shape, { kind: 'lazy', load: raw });
        const t = new Tensor(s.name, DataType.FLOAT, s.shape, { kind: 'lazy', load: () => new Uint8Array(half.toFloat32().buffer) });
        t.storedAs = { dtype, bytes };
        out.tensors.set(s.name, t);
      } else if (pieces.length === 1) {
        out.tensors.set(s.name, new Tensor(s.name, dtype, s.shape, { kind: 'external', ...pieces[0] }));
      } else {
        // Spanning shards: still streamed piece by piece, never held whole.
        out.tensors.set(s.name, new Tensor(s.name, dtype, s.shape, { kind: 'external', ...pieces[0], length: bytes, pieces }));
      }
    }
  }
  return out;
}

function dequantize(raw: Uint8Array, n: number, stored: DataType, min: number, scale: number, to: DataType): Uint8Array {
  const q = stored === DataType.UINT8 ? raw : new Uint16Array(raw.buffer, raw.byteOffset, n);
  if (to === DataType.INT32) {
    const out = new Int32Array(n);
    for (let i = 0; i < n; i++) out[i] = Math.round(q[i] * scale + min);
    return new Uint8Array(out.buffer);
  }
  const out = new Float32Array(n);
  for (let i = 0; i < n; i++) out[i] = q[i] * scale + min;
  return new Uint8Array(out.buffer);
}

/**
 * Affine uint8/uint16 parameters as the TF.js converter chooses them: the range [min, max]
 * in 2^bits - 1 steps, with min nudged so that 0.0 is exactly representable when the range
 * spans it (pruned zeros stay zeros).
 */
export function affineParams(values: Float32Array, bits: 8 | 16): { min: number; scale: number } {
  let lo = Infinity;
  let hi = -Infinity;
  for (const v of values) {
    if (v < lo) lo = v;
    if (v > hi) hi = v;
  }
  if (!Number.isFinite(lo) || !Number.isFinite(hi)) return { min: 0, scale: 1 };
  const levels = 2 ** bits - 1;
  if (hi === lo) return { min: lo, scale: 1 };
  let scale = (hi - lo) / levels;
  if (lo < 0 && hi > 0) {
    const zero = Math.min(levels - 1, Math.max(1, Math.round(-lo / scale)));
    // Re-fit the scale so that both ends stay inside the grid after the nudge.
    scale = Math.max(-lo / zero, hi / (levels - zero));
    return { min: -zero * scale, scale: Math.fround(scale) };
  }
  return { min: lo, scale: Math.fround(scale) };
}

export interface WriteWeightsOptions {
  /** Folder the shards go to (beside model.json). */
  dir: string;
  /** Shard names: `<prefix>group<g>-shard<i>of<n>.bin`. */
  prefix: string;
  /** Per weight: the storage to use (undefined: float32/int32 as is). */
  quantizationOf: (name: string, t: Tensor) => WeightQuantization | undefined;
  /** Default 4 MiB, as the TF.js converter writes. */
  shardBytes?: number;
  /** Files that must never be overwritten (the source model's shards). */
  protect?: string[];
}

export interface WrittenWeights {
  manifest: ManifestGroup[];
  files: string[];
  bytes: number;
}

/** Encodes one weight (spec + bytes) with the requested storage. */
export function encodeWeight(name: string, t: Tensor, quant: WeightQuantization | undefined): { spec: WeightSpec; bytes: Uint8Array } {
  const shape = [...t.dims];
  if (t.dtype === DataType.INT32 || t.dtype === DataType.BOOL) {
    return { spec: { name, shape, dtype: t.dtype === DataType.INT32 ? 'int32' : 'bool' }, bytes: t.bytes() };
  }
  if (t.dtype !== DataType.FLOAT && t.dtype !== DataType.FLOAT16) throw new UsageError(`weight '${name}' has a dtype TF.js cannot store (${DataType[t.dtype]})`);
  const values = t.toFloat32();
  // Stored float16 weights stay float16 unless told otherwise.
  const q = quant ?? (t.dtype === DataType.FLOAT16 ? 'float16' : undefined);
  if (!q) return { spec: { name, shape, dtype: 'float32' }, bytes: new Uint8Array(values.buffer, values.byteOffset, values.byteLength) };
  if (q === 'float16') {
    const h = new Uint16Array(values.length);
    for (let i = 0; i < values.length; i++) h[i] = float32ToFloat16(values[i]);
    return { spec: { name, shape, dtype: 'float32', quantization: { dtype: 'float16' } }, bytes: new Uint8Array(h.buffer) };
  }
  const bits = q === 'uint8' ? 8 : 16;
  const { min, scale } = affineParams(values, bits);
  const max = 2 ** bits - 1;
  const arr = bits === 8 ? new Uint8Array(values.length) : new Uint16Array(values.length);
  for (let i = 0; i < values.length; i++) arr[i] = Math.min(max, Math.max(0, Math.round((values[i] - min) / scale)));
  return { spec: { name, shape, dtype: 'float32', quantization: { dtype: q, min, scale } }, bytes: new Uint8Array(arr.buffer) };
}

/** Writes all weights as one group of shards (each atomically) and returns the manifest. */
export function writeWeights(weights: Array<[string, Tensor]>, opts: WriteWeightsOptions): WrittenWeights {
  const shardBytes = opts.shardBytes ?? 4 * 1024 * 1024;
  const specs: WeightSpec[] = [];
  const chunks: Uint8Array[] = [];
  let total = 0;
  for (const [name, t] of weights) {
    const { spec, bytes } = encodeWeight(name, t, opts.quantizationOf(name, t));
    specs.push(spec);
    chunks.push(bytes);
    total += bytes.length;
  }
  const count = Math.max(1, Math.ceil(total / shardBytes));
  const names = Array.from({ length: count }, (_, i) => `${opts.prefix}group1-shard${i + 1}of${count}.bin`);
  const files = names.map((n) => path.join(opts.dir, n));
  const protect = new Set((opts.protect ?? []).map((p) => path.resolve(p)));
  for (const f of files) if (protect.has(path.resolve(f))) throw new UsageError(`refusing to overwrite the source model's weight shard ${f}; choose another output name`);
  // Slice the concatenated stream into shards without building it whole.
  let chunk = 0;
  let within = 0;
  const written: string[] = [];
  try {
    for (const f of files) {
      const parts: Uint8Array[] = [];
      let room = shardBytes;
      while (room > 0 && chunk < chunks.length) {
        const c = chunks[chunk];
        const take = Math.min(room, c.length - within);
        parts.push(c.subarray(within, within + take));
        within += take;
        room -= take;
        if (within === c.length) {
          chunk++;
          within = 0;
        }
      }
      writeFileAtomic(f, parts);
      written.push(f);
    }
  } catch (e) {
    for (const f of written) fs.rmSync(f, { force: true });
    throw e;
  }
  return { manifest: [{ paths: names, weights: specs }], files, bytes: total };
}
