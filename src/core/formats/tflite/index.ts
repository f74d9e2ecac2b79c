import * as fs from 'fs';
import { ModelError } from '../../errors';
import { DataType, storageBytes } from '../../ir/dtype';
import { Graph, Model, Node, type Dim } from '../../ir/graph';
import { Tensor, elementCount } from '../../ir/tensor';
import type { FormatPlugin } from '../format';
import { FlatReader, type Table } from './flat';
import { BUILTIN_OPS } from './ops';
import { maxOf, minOf } from '../../util/arrays';

/**
 * TFLite models (`.tflite`, FlatBuffers with identifier "TFL3"), read-only, for inspection:
 * the main subgraph's operators (builtin names, or the custom code for custom operators;
 * domains `tflite` and `tflite.custom`), tensors with their shapes and dtypes, constant buffers as
 * initializers (views on the file; large models' buffers outside the FlatBuffer are
 * external sources on the same file), quantization parameters (scales and zero points,
 * per tensor or per channel) on each tensor, and sparse tensors (DENSIFY) counted by their
 * stored values. Every offset is bounds-checked: a corrupt file is a ModelError.
 *
 * Field numbers follow tensorflow/lite's schema.fbs (Model, SubGraph, Tensor, Operator,
 * OperatorCode, Buffer, QuantizationParameters, SparsityParameters).
 */

const TYPES: Array<DataType | undefined> = [
  DataType.FLOAT, DataType.FLOAT16, DataType.INT32, DataType.UINT8, DataType.INT64, DataType.STRING, DataType.BOOL, DataType.INT16,
  DataType.COMPLEX64, DataType.INT8, DataType.DOUBLE, DataType.COMPLEX128, DataType.UINT64, undefined, undefined, DataType.UINT32,
  DataType.UINT16, DataType.INT4, DataType.BFLOAT16,
];

/** Where a tensor's quantization parameters are described for reports. */
export interface TfliteQuantization {
  scales: number;
  zeroPoints: number[];
  axis?: number;
}

function quantText(r: FlatReader, q: Table | null): string {
  if (!q) return '';
  const scale = r.floats(q, 2);
  if (!scale.length) return '';
  const zp = r.longs(q, 3);
  const axis = r.int32(q, 6, 0);
  const fmt = (x: number) => Number(x.toPrecision(4));
  if (scale.length === 1) return `quantized: scale ${fmt(scale[0])}, zero point ${zp[0] ?? 0}`;
  const zeros = new Set(zp);
  return `quantized per channel (axis ${axis}, ${scale.length} scales ${fmt(minOf(scale))}…${fmt(maxOf(scale))}, zero point${zeros.size === 1 ? ` ${zp[0] ?? 0}` : 's vary'})`;
}

export function readTflite(file: string): Model {
  const buf = fs.readFileSync(file);
  const r = new FlatReader(buf, (why) => {
    throw new ModelError(file, why);
  });
  const fail = (why: string): never => {
    throw new ModelError(file, why);
  };
  if (buf.length < 8 || buf.toString('latin1', 4, 8) !== 'TFL3') fail('not a TFLite model (no "TFL3" identifier)');
  const root = r.root();
  const version = r.uint32(root, 0, 0);
  const codes = r.tables(root, 1).map((c) => {
    const dep = r.int8(c, 0, 0);
    const ext = r.int32(c, 3, 0);
    const code = Math.max(dep, ext);
    const custom = r.string(c, 1);
    return code === 32 || custom ? { name: custom ?? 'CUSTOM', custom: true } : { name: BUILTIN_OPS[code] ?? `BUILTIN_${code}`, custom: false };
  });
  const buffers = r.tables(root, 4);
  const subgraphs = r.tables(root, 2);
  if (!subgraphs.length) fail('the model has no subgraphs');
  const sg = subgraphs[0];
  const g = new Graph(r.string(sg, 4) ?? 'main');
  const model = new Model(g, 'tflite');
  model.path = file;
  model.producerName = 'TFLite';
  model.producerVersion = `schema ${version}`;
  model.docString = r.string(root, 3) ?? '';
  model.opsetImports = [{ domain: 'tflite', version }];

  const tensors = r.tables(sg, 0);
  const names: string[] = [];
  const seen = new Map<string, number>();
  tensors.forEach((t, i) => {
    let n = r.string(t, 3) || `tensor_${i}`;
    const k = seen.get(n) ?? 0;
    seen.set(n, k + 1);
    if (k) n = `${n}#${i}`;
    names.push(n);
  });
  const name = (i: number) => {
    if (i < 0) return '';
    if (i >= names.length) fail(`an operator refers to tensor ${i}, but the subgraph has ${names.length}`);
    return names[i];
  };
  tensors.forEach((t, i) => {
    const typeCode = r.int8(t, 1, 0);
    const dtype = TYPES[typeCode];
    const shape = r.ints(t, 0);
    const sig = r.ints(t, 7);
    const dims: Dim[] = (sig.length === shape.length ? sig : shape).map((d, k) => (d >= 0 ? d : k === 0 ? 'batch' : null));
    const doc = quantText(r, r.table(t, 4));
    const vi = { name: names[i], type: { kind: 'tensor' as const, dtype: dtype ?? DataType.UNDEFINED, shape: dims }, docString: doc || undefined };
    g.valueInfo.set(names[i], vi);
    const bi = r.uint32(t, 2, 0);
    if (bi === 0) return;
    if (bi >= buffers.length) fail(`tensor '${names[i]}' refers to buffer ${bi}, but the model has ${buffers.length}`);
    const b = buffers[bi];
    let view: { offset: number; length: number } | null = r.bytesAt(b, 0);
    const off = r.uint64(b, 1);
    if ((!view || view.length === 0) && off > 1) {
      const size = r.uint64(b, 2);
      if (off + size > buf.length) fail(`buffer ${bi} (offset ${off}, ${size} bytes) runs past the end of the file`);
      view = { offset: off, length: size };
    }
    if (!view || view.length === 0) return;
    if (dtype === undefined || dtype === DataType.STRING) {
      g.initializers.set(names[i], new Tensor(names[i], DataType.UINT8, [view.length], { kind: 'bytes', bytes: buf.subarray(view.offset, view.offset + view.length) }, `${TYPE_NAMES[typeCode] ?? `type ${typeCode}`} data, kept as bytes`));
      return;
    }
    const sparsity = r.table(t, 6);
    let tdims = shape;
    let note = doc;
    if (sparsity) {
      // Stored compressed: count the values actually stored (DENSIFY rebuilds the dense tensor at run time).
      const stored = Math.floor(view.length / Math.max(1, storageBytes(dtype, 1)));
      tdims = [stored];
      note = [`sparse (dense shape [${shape.join(', ')}], ${stored} stored values; DENSIFY expands it)`, doc].filter(Boolean).join('; ');
    }
    let want: number;
    try {
      want = storageBytes(dtype, elementCount(tdims));
    } catch {
      return fail(`tensor '${names[i]}' has an invalid shape [${shape.join(', ')}]`);
    }
    if (view.length !== want) fail(`tensor '${names[i]}' declares ${want} bytes of data, but its buffer holds ${view.length}`);
    g.initializers.set(names[i], new Tensor(names[i], dtype, tdims, { kind: 'bytes', bytes: buf.subarray(view.offset, view.offset + view.length) }, note));
  });
  for (const i of r.ints(sg, 1)) {
    const n = name(i);
    if (!g.initializers.has(n)) g.inputs.push({ ...g.valueInfo.get(n)! });
  }
  for (const i of r.ints(sg, 2)) g.outputs.push({ ...g.valueInfo.get(name(i))! });
  r.tables(sg, 3).forEach((op, k) => {
    const ci = r.uint32(op, 0, 0);
    const code = codes[ci] ?? fail(`operator ${k} uses operator code ${ci}, but the model has ${codes.length}`);
    const outs = r.ints(op, 2).map(name);
    const node = new Node(code.name, r.ints(op, 1).map(name), outs, `${code.name.toLowerCase()}_${k}`);
    node.domain = code.custom ? 'tflite.custom' : 'tflite';
    g.nodes.push(node);
  });
  if (subgraphs.length > 1) model.metadata.push(['subgraphs', String(subgraphs.length)]);
  return model;
}

const TYPE_NAMES = ['FLOAT32', 'FLOAT16', 'INT32', 'UINT8', 'INT64', 'STRING', 'BOOL', 'INT16', 'COMPLEX64', 'INT8', 'FLOAT64', 'COMPLEX128', 'UINT64', 'RESOURCE', 'VARIANT', 'UINT32', 'UINT16', 'INT4', 'BFLOAT16'];

export const tfliteFormat: FormatPlugin = {
  id: 'tflite',
  extensions: ['.tflite'],
  match: (head) => head.length >= 8 && new TextDecoder('latin1').decode(head.subarray(4, 8)) === 'TFL3',
  open: readTflite,
};
