import * as fs from 'fs';
import { ModelError } from '../../errors';
import { DataType, storageBytes } from '../../ir/dtype';
import { Graph, Model, Node } from '../../ir/graph';
import { Tensor, elementCount } from '../../ir/tensor';
import type { FormatPlugin } from '../format';

/**
 * safetensors, read-only: an 8-byte little-endian header length, a JSON header mapping
 * tensor names to {dtype, shape, data_offsets}, then the data. Only the header is read;
 * every tensor is an external source on the same file, read when something asks for its
 * values (statistics, histograms). There is no graph: tensors are grouped into "layers" by
 * name prefix (`encoder.layer.0.attention.query.weight` → `encoder.layer.0.attention.query`),
 * each a node whose op type is guessed from its tensors (Linear, Conv, Embedding, Norm).
 */

const MAX_HEADER = 100 * 2 ** 20;

const DTYPES: Record<string, DataType> = {
  BOOL: DataType.BOOL, U8: DataType.UINT8, I8: DataType.INT8, I16: DataType.INT16, U16: DataType.UINT16, F16: DataType.FLOAT16,
  BF16: DataType.BFLOAT16, I32: DataType.INT32, U32: DataType.UINT32, F32: DataType.FLOAT, F64: DataType.DOUBLE, I64: DataType.INT64,
  U64: DataType.UINT64, F8_E4M3: DataType.FLOAT8E4M3FN, F8_E5M2: DataType.FLOAT8E5M2,
};

function headerLength(head: Uint8Array): bigint {
  return new DataView(head.buffer, head.byteOffset, 8).getBigUint64(0, true);
}

/** The layer a tensor belongs to: its name without the last dotted component. */
export function layerOf(name: string): string {
  const i = name.lastIndexOf('.');
  return i < 0 ? name : name.slice(0, i);
}

function guessOp(layer: string, tensors: Array<{ leaf: string; dims: number[] }>): string {
  const w = tensors.find((t) => t.leaf === 'weight');
  if (tensors.some((t) => t.leaf === 'running_mean')) return 'BatchNorm';
  if (!w) return 'Tensors';
  if (/embed|wte|wpe|tok/i.test(layer) && w.dims.length === 2) return 'Embedding';
  if (w.dims.length === 2) return 'Linear';
  if (w.dims.length >= 3) return `Conv${w.dims.length - 2}d`;
  if (w.dims.length === 1) return 'Norm';
  return 'Tensors';
}

export function readSafetensors(file: string): Model {
  const fail = (why: string): never => {
    throw new ModelError(file, why);
  };
  const size = fs.statSync(file).size;
  if (size < 8) fail('too short for a safetensors header');
  const fd = fs.openSync(file, 'r');
  let header: Record<string, unknown>;
  let dataStart: number;
  try {
    const lenBuf = new Uint8Array(8);
    fs.readSync(fd, lenBuf, 0, 8, 0);
    const n = headerLength(lenBuf);
    if (n > BigInt(Math.min(MAX_HEADER, size - 8))) fail(`the header claims ${n} bytes, more than the file (${size} bytes) or the ${MAX_HEADER}-byte limit`);
    const text = Buffer.alloc(Number(n));
    fs.readSync(fd, text, 0, text.length, 8);
    try {
      header = JSON.parse(text.toString('utf8')) as Record<string, unknown>;
    } catch (e) {
      return fail(`the header is not valid JSON (${(e as Error).message})`);
    }
    if (!header || typeof header !== 'object' || Array.isArray(header)) fail('the header is not a JSON object');
    dataStart = 8 + Number(n);
  } finally {
    fs.closeSync(fd);
  }
  const dataSize = size - dataStart;
  const g = new Graph('safetensors');
  const model = new Model(g, 'safetensors');
  model.path = file;
  model.opsetImports = [{ domain: 'safetensors', version: 1 }];
  const meta = header.__metadata__;
  if (meta && typeof meta === 'object') for (const [k, v] of Object.entries(meta)) model.metadata.push([k, String(v)]);
  const layers = new Map<string, Array<{ name: string; leaf: string; dims: number[] }>>();
  const ranges: Array<[number, number, string]> = [];
  for (const [name, raw] of Object.entries(header)) {
    if (name === '__metadata__') continue;
    const info = raw as { dtype?: unknown; shape?: unknown; data_offsets?: unknown };
    if (!info || typeof info !== 'object') fail(`tensor '${name}' has no description`);
    const dtype = DTYPES[String(info.dtype)];
    if (dtype === undefined) fail(`tensor '${name}' has unknown dtype '${String(info.dtype)}'`);
    const shape = info.shape;
    const offs = info.data_offsets;
    if (!Array.isArray(shape) || !shape.every((d) => Number.isSafeInteger(d) && d >= 0)) fail(`tensor '${name}' has an invalid shape`);
    if (!Array.isArray(offs) || offs.length !== 2 || !offs.every((d) => Number.isSafeInteger(d) && d >= 0) || offs[1] < offs[0]) fail(`tensor '${name}' has invalid data_offsets`);
    const [begin, end] = offs as [number, number];
    let want = 0;
    try {
      want = storageBytes(dtype, elementCount(shape as number[]));
    } catch {
      fail(`tensor '${name}' has an invalid shape [${(shape as number[]).join(', ')}]`);
    }
    if (end - begin !== want) fail(`tensor '${name}' is ${(shape as number[]).join('×')} ${String(info.dtype)} (${want} bytes) but its data_offsets span ${end - begin} bytes`);
    if (end > dataSize) fail(`tensor '${name}' ends at byte ${end} of the data, but the file holds ${dataSize} data bytes`);
    ranges.push([begin, end, name]);
    g.initializers.set(name, new Tensor(name, dtype, shape as number[], { kind: 'external', file, offset: dataStart + begin, length: end - begin }));
    const layer = layerOf(name);
    if (!layers.has(layer)) layers.set(layer, []);
    layers.get(layer)!.push({ name, leaf: name.slice(layer.length + 1), dims: shape as number[] });
  }
  ranges.sort((a, b) => a[0] - b[0]);
  for (let i = 1; i < ranges.length; i++) {
    if (ranges[i][0] < ranges[i - 1][1]) fail(`tensors '${ranges[i - 1][2]}' and '${ranges[i][2]}' overlap in the data`);
  }
  for (const [layer, ts] of layers) {
    const node = new Node(guessOp(layer, ts), ts.map((t) => t.name), [layer], layer);
    node.domain = 'safetensors';
    g.nodes.push(node);
  }
  return model;
}

export const safetensorsFormat: FormatPlugin = {
  id: 'safetensors',
  extensions: ['.safetensors'],
  match: (head, size) => {
    if (head.length < 10) return false;
    const n = headerLength(head);
    return n > 1n && n + 8n <= BigInt(size) && head[8] === 0x7b /* { */;
  },
  open: readSafetensors,
};
