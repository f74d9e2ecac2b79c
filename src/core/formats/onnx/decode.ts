import * as fs from 'fs';
import * as path from 'path';
import { DataType, isKnownDataType, dtypeName, dtypeBits, type Int64 } from '../../ir/dtype';
import {
  AttrType,
  Graph,
  Model,
  Node,
  type Attribute,
  type Dim,
  type OpsetId,
  type SparseTensor,
  type TypeInfo,
  type ValueInfo,
} from '../../ir/graph';
import { Tensor, elementCount, type TensorSource } from '../../ir/tensor';
import { ProtoReader, WireError, WireType } from '../protobuf';

/**
 * ONNX ModelProto → IR. Field numbers follow onnx.proto (IR version 10). Fields the IR
 * does not model are kept as encoded bytes and written back unchanged.
 */

const MAX_GRAPH_DEPTH = 32;

/** Raised for semantic problems in an otherwise well-formed protobuf. */
export class OnnxFormatError extends Error {}

export interface DecodeContext {
  /** Absolute folder of the model; external data must stay inside it. */
  dir?: string;
  /** Cache of checked external files → size. */
  externalSizes: Map<string, number>;
}

export function decodeModel(buf: Uint8Array, ctx: DecodeContext): Model {
  const r = new ProtoReader(buf);
  const model = new Model(new Graph());
  let sawGraph = false;
  const opsets: OpsetId[] = [];
  while (!r.done) {
    const start = r.pos;
    const [f, wt] = r.tag();
    switch (f) {
      case 1:
        r.expect(wt, WireType.Varint);
        model.irVersion = r.int64();
        break;
      case 2:
        model.producerName = str(r, wt);
        break;
      case 3:
        model.producerVersion = str(r, wt);
        break;
      case 4:
        model.domain = str(r, wt);
        break;
      case 5:
        r.expect(wt, WireType.Varint);
        model.modelVersion = r.int64();
        break;
      case 6:
        model.docString = str(r, wt);
        break;
      case 7:
        r.expect(wt, WireType.LengthDelimited);
        model.graph = decodeGraph(r.sub(), ctx, 0);
        sawGraph = true;
        break;
      case 8:
        r.expect(wt, WireType.LengthDelimited);
        opsets.push(decodeOpset(r.sub()));
        break;
      case 14:
        r.expect(wt, WireType.LengthDelimited);
        model.metadata.push(decodeEntry(r.sub()));
        break;
      default:
        // functions (25), training_info (20), configuration, unknown: kept verbatim.
        model.extra.push(r.skip(wt, start));
    }
  }
  if (!sawGraph) throw new OnnxFormatError('the model has no graph (the file may be truncated)');
  if (opsets.length === 0) throw new OnnxFormatError('the model declares no opset (opset_import is empty; the file may be truncated)');
  model.opsetImports = opsets;
  return model;
}

function str(r: ProtoReader, wt: number): string {
  r.expect(wt, WireType.LengthDelimited);
  return r.string();
}

function decodeOpset(r: ProtoReader): OpsetId {
  const o: OpsetId = { domain: '', version: 0 };
  while (!r.done) {
    const start = r.pos;
    const [f, wt] = r.tag();
    if (f === 1) o.domain = str(r, wt);
    else if (f === 2) {
      r.expect(wt, WireType.Varint);
      o.version = Number(r.int64());
    } else r.skip(wt, start);
  }
  return o;
}

function decodeEntry(r: ProtoReader): [string, string] {
  let k = '';
  let v = '';
  while (!r.done) {
    const start = r.pos;
    const [f, wt] = r.tag();
    if (f === 1) k = str(r, wt);
    else if (f === 2) v = str(r, wt);
    else r.skip(wt, start);
  }
  return [k, v];
}

export function decodeGraph(r: ProtoReader, ctx: DecodeContext, depth: number): Graph {
  if (depth > MAX_GRAPH_DEPTH) throw new OnnxFormatError(`subgraphs nested deeper than ${MAX_GRAPH_DEPTH} levels`);
  const g = new Graph();
  while (!r.done) {
    const start = r.pos;
    const [f, wt] = r.tag();
    switch (f) {
      case 1:
        r.expect(wt, WireType.LengthDelimited);
        g.nodes.push(decodeNode(r.sub(), ctx, depth));
        break;
      case 2:
        g.name = str(r, wt);
        break;
      case 5: {
        r.expect(wt, WireType.LengthDelimited);
        const t = decodeTensor(r.sub(), ctx);
        if (g.initializers.has(t.name)) throw new OnnxFormatError(`duplicate initializer '${t.name}'`);
        g.initializers.set(t.name, t);
        break;
      }
      case 10:
        g.docString = str(r, wt);
        break;
      case 11:
        r.expect(wt, WireType.LengthDelimited);
        g.inputs.push(decodeValueInfo(r.sub()));
        break;
      case 12:
        r.expect(wt, WireType.LengthDelimited);
        g.outputs.push(decodeValueInfo(r.sub()));
        break;
      case 13: {
        r.expect(wt, WireType.LengthDelimited);
        const vi = decodeValueInfo(r.sub());
        g.valueInfo.set(vi.name, vi);
        break;
      }
      case 15:
        r.expect(wt, WireType.LengthDelimited);
        g.sparseInitializers.push(decodeSparse(r.sub(), ctx));
        break;
      case 16:
        r.expect(wt, WireType.LengthDelimited);
        g.metadata.push(decodeEntry(r.sub()));
        break;
      default:
        // quantization_annotation (14) and unknown fields.
        g.extra.push(r.skip(wt, start));
    }
  }
  return g;
}

function decodeNode(r: ProtoReader, ctx: DecodeContext, depth: number): Node {
  const n = new Node('', [], []);
  while (!r.done) {
    const start = r.pos;
    const [f, wt] = r.tag();
    switch (f) {
      case 1:
        n.inputs.push(str(r, wt));
        break;
      case 2:
        n.outputs.push(str(r, wt));
        break;
      case 3:
        n.name = str(r, wt);
        break;
      case 4:
        n.opType = str(r, wt);
        break;
      case 5: {
        r.expect(wt, WireType.LengthDelimited);
        const a = decodeAttribute(r.sub(), ctx, depth);
        n.attributes.set(a.name, a);
        break;
      }
      case 6:
        n.docString = str(r, wt);
        break;
      case 7:
        n.domain = str(r, wt);
        break;
      case 8:
        n.overload = str(r, wt);
        break;
      case 9:
        r.expect(wt, WireType.LengthDelimited);
        n.metadata.push(decodeEntry(r.sub()));
        break;
      default:
        n.extra.push(r.skip(wt, start));
    }
  }
  if (!n.opType) throw new OnnxFormatError(`node '${n.name}' has no op_type`);
  return n;
}

function decodeAttribute(r: ProtoReader, ctx: DecodeContext, depth: number): Attribute {
  let name = '';
  let type = AttrType.UNDEFINED as number;
  let docString: string | undefined;
  let refAttrName: string | undefined;
  let f_: number | undefined;
  let i_: Int64 | undefined;
  let s_: Uint8Array | undefined;
  let t_: Tensor | undefined;
  let g_: Graph | undefined;
  const floats: number[] = [];
  const ints: Int64[] = [];
  const strings: Uint8Array[] = [];
  const tensors: Tensor[] = [];
  const graphs: Graph[] = [];
  const extra: Uint8Array[] = [];
  while (!r.done) {
    const start = r.pos;
    const [f, wt] = r.tag();
    switch (f) {
      case 1:
        name = str(r, wt);
        break;
      case 2:
        r.expect(wt, WireType.Fixed32);
        f_ = r.float();
        break;
      case 3:
        r.expect(wt, WireType.Varint);
        i_ = r.int64();
        break;
      case 4:
        r.expect(wt, WireType.LengthDelimited);
        s_ = r.bytes();
        break;
      case 5:
        r.expect(wt, WireType.LengthDelimited);
        t_ = decodeTensor(r.sub(), ctx);
        break;
      case 6:
        r.expect(wt, WireType.LengthDelimited);
        g_ = decodeGraph(r.sub(), ctx, depth + 1);
        break;
      case 7:
        r.repeatedFloat(wt, floats);
        break;
      case 8:
        r.repeatedInt64(wt, ints);
        break;
      case 9:
        r.expect(wt, WireType.LengthDelimited);
        strings.push(r.bytes());
        break;
      case 10:
        r.expect(wt, WireType.LengthDelimited);
        tensors.push(decodeTensor(r.sub(), ctx));
        break;
      case 11:
        r.expect(wt, WireType.LengthDelimited);
        graphs.push(decodeGraph(r.sub(), ctx, depth + 1));
        break;
      case 13:
        docString = str(r, wt);
        break;
      case 20:
        r.expect(wt, WireType.Varint);
        type = r.uint32();
        break;
      case 21:
        refAttrName = str(r, wt);
        break;
      default:
        // sparse tensors (22, 23), type protos (14, 15) and unknown fields: verbatim.
        extra.push(r.skip(wt, start));
    }
  }
  // Very old models omit `type`; infer it from the field that is present.
  if (type === AttrType.UNDEFINED) {
    if (f_ !== undefined) type = AttrType.FLOAT;
    else if (i_ !== undefined) type = AttrType.INT;
    else if (s_ !== undefined) type = AttrType.STRING;
    else if (t_) type = AttrType.TENSOR;
    else if (g_) type = AttrType.GRAPH;
    else if (floats.length) type = AttrType.FLOATS;
    else if (ints.length) type = AttrType.INTS;
    else if (strings.length) type = AttrType.STRINGS;
    else if (tensors.length) type = AttrType.TENSORS;
    else if (graphs.length) type = AttrType.GRAPHS;
  }
  const base = { name, docString, refAttrName, extra: extra.length ? extra : undefined };
  switch (type) {
    case AttrType.FLOAT:
      return { ...base, type, value: f_ ?? 0 };
    case AttrType.INT:
      return { ...base, type, value: i_ ?? 0 };
    case AttrType.STRING:
      return { ...base, type, value: s_ ?? new Uint8Array(0) };
    case AttrType.TENSOR:
      if (!t_) throw new OnnxFormatError(`attribute '${name}' of type TENSOR has no tensor`);
      return { ...base, type, value: t_ };
    case AttrType.GRAPH:
      if (!g_) throw new OnnxFormatError(`attribute '${name}' of type GRAPH has no graph`);
      return { ...base, type, value: g_ };
    case AttrType.FLOATS:
      return { ...base, type, value: floats };
    case AttrType.INTS:
      return { ...base, type, value: ints };
    case AttrType.STRINGS:
      return { ...base, type, value: strings };
    case AttrType.TENSORS:
      return { ...base, type, value: tensors };
    case AttrType.GRAPHS:
      return { ...base, type, value: graphs };
    case AttrType.UNDEFINED:
    case AttrType.SPARSE_TENSOR:
    case AttrType.SPARSE_TENSORS:
    case AttrType.TYPE_PROTO:
    case AttrType.TYPE_PROTOS:
      return { ...base, type, value: undefined };
    default:
      throw new OnnxFormatError(`attribute '${name}' has unknown type ${type}`);
  }
}

function decodeValueInfo(r: ProtoReader): ValueInfo {
  const vi: ValueInfo = { name: '' };
  while (!r.done) {
    const start = r.pos;
    const [f, wt] = r.tag();
    if (f === 1) vi.name = str(r, wt);
    else if (f === 2) {
      r.expect(wt, WireType.LengthDelimited);
      vi.type = decodeType(r.sub());
    } else if (f === 3) vi.docString = str(r, wt);
    else (vi.extra ??= []).push(r.skip(wt, start));
  }
  return vi;
}

function decodeType(r: ProtoReader): TypeInfo {
  const whole = r.buf.subarray(r.pos, r.end);
  let result: TypeInfo | undefined;
  let opaque = 'unknown type';
  let denotation = false;
  while (!r.done) {
    const start = r.pos;
    const [f, wt] = r.tag();
    if ((f === 1 || f === 8) && wt === WireType.LengthDelimited) {
      result = decodeTensorType(r.sub(), f === 8);
    } else {
      if (f === 4) opaque = 'sequence';
      else if (f === 5) opaque = 'map';
      else if (f === 9) opaque = 'optional';
      else if (f === 6) denotation = true;
      r.skip(wt, start);
    }
  }
  // Types with denotations or non-tensor types are kept whole so they round-trip exactly.
  if (result && !denotation) return result;
  return { kind: 'opaque', description: result ? 'tensor' : opaque, encoded: whole };
}

function decodeTensorType(r: ProtoReader, sparse: boolean): TypeInfo {
  let dtype = DataType.UNDEFINED as number;
  let shape: Dim[] | null = null;
  while (!r.done) {
    const start = r.pos;
    const [f, wt] = r.tag();
    if (f === 1) {
      r.expect(wt, WireType.Varint);
      dtype = r.uint32();
    } else if (f === 2) {
      r.expect(wt, WireType.LengthDelimited);
      shape = decodeShape(r.sub());
    } else r.skip(wt, start);
  }
  return { kind: 'tensor', dtype: dtype as DataType, shape, sparse: sparse || undefined };
}

function decodeShape(r: ProtoReader): Dim[] {
  const dims: Dim[] = [];
  while (!r.done) {
    const start = r.pos;
    const [f, wt] = r.tag();
    if (f !== 1) {
      r.skip(wt, start);
      continue;
    }
    r.expect(wt, WireType.LengthDelimited);
    const d = r.sub();
    let dim: Dim = null;
    while (!d.done) {
      const s2 = d.pos;
      const [f2, wt2] = d.tag();
      if (f2 === 1) {
        d.expect(wt2, WireType.Varint);
        const v = d.int64();
        dim = typeof v === 'number' && v >= 0 ? v : null;
      } else if (f2 === 2) {
        dim = str(d, wt2) || null;
      } else d.skip(wt2, s2);
    }
    dims.push(dim);
  }
  return dims;
}

function decodeSparse(r: ProtoReader, ctx: DecodeContext): SparseTensor {
  let values: Tensor | undefined;
  let indices: Tensor | undefined;
  const dims: Int64[] = [];
  while (!r.done) {
    const start = r.pos;
    const [f, wt] = r.tag();
    if (f === 1) {
      r.expect(wt, WireType.LengthDelimited);
      values = decodeTensor(r.sub(), ctx);
    } else if (f === 2) {
      r.expect(wt, WireType.LengthDelimited);
      indices = decodeTensor(r.sub(), ctx);
    } else if (f === 3) r.repeatedInt64(wt, dims);
    else r.skip(wt, start);
  }
  if (!values || !indices) throw new OnnxFormatError('sparse tensor without values or indices');
  return { values, indices, dims: dims.map((d) => checkDim(d, values!.name)) };
}

function checkDim(d: Int64, name: string): number {
  if (typeof d !== 'number' || d < 0) throw new OnnxFormatError(`tensor '${name}' has invalid dimension ${d}`);
  return d;
}

interface PackedField {
  field: number;
  wt: number;
  view: Uint8Array;
}

export function decodeTensor(r: ProtoReader, ctx: DecodeContext): Tensor {
  const rawDims: Int64[] = [];
  let dtype = DataType.UNDEFINED as number;
  let name = '';
  let doc = '';
  let raw: Uint8Array | undefined;
  let external = false;
  const externalInfo = new Map<string, string>();
  const typed: PackedField[] = [];
  const strings: Uint8Array[] = [];
  while (!r.done) {
    const start = r.pos;
    const [f, wt] = r.tag();
    switch (f) {
      case 1:
        r.repeatedInt64(wt, rawDims);
        break;
      case 2:
        r.expect(wt, WireType.Varint);
        dtype = r.uint32();
        break;
      case 3:
        throw new OnnxFormatError('segmented tensors are not supported');
      case 6:
        r.expect(wt, WireType.LengthDelimited);
        strings.push(r.bytes());
        break;
      case 8:
        name = str(r, wt);
        break;
      case 9:
        r.expect(wt, WireType.LengthDelimited);
        raw = r.bytes();
        break;
      case 12:
        doc = str(r, wt);
        break;
      case 13: {
        r.expect(wt, WireType.LengthDelimited);
        const [k, v] = decodeEntry(r.sub());
        externalInfo.set(k, v);
        break;
      }
      case 14:
        r.expect(wt, WireType.Varint);
        external = r.uint32() === 1;
        break;
      case 4:
      case 5:
      case 7:
      case 10:
      case 11: {
        const view = r.skip(wt, start);
        typed.push({ field: f, wt, view });
        break;
      }
      default:
        r.skip(wt, start); // metadata_props and unknown fields
    }
  }
  const label = name || '(unnamed)';
  if (!isKnownDataType(dtype) || dtype === DataType.UNDEFINED) {
    throw new OnnxFormatError(`tensor '${label}' has unknown data type ${dtype}`);
  }
  const dims = rawDims.map((d) => checkDim(d, label));
  let numel: number;
  try {
    numel = elementCount(dims);
  } catch {
    throw new OnnxFormatError(`tensor '${label}' has an impossible shape [${dims.join(', ')}]`);
  }
  if (dtype === DataType.STRING) {
    if (strings.length !== numel) {
      throw new OnnxFormatError(`string tensor '${label}' declares ${numel} elements but holds ${strings.length}`);
    }
    return new Tensor(name, dtype, dims, { kind: 'bytes', bytes: new Uint8Array(0) }, doc, strings);
  }
  const want = Math.ceil((numel * dtypeBits(dtype)) / 8);
  let source: TensorSource;
  if (external) {
    source = externalSource(label, externalInfo, want, ctx);
  } else if (raw) {
    if (raw.length !== want) {
      throw new OnnxFormatError(
        `tensor '${label}' declares ${dtypeName(dtype)}[${dims.join(', ')}] (${want} bytes) but holds ${raw.length} bytes`,
      );
    }
    source = { kind: 'bytes', bytes: raw };
  } else if (typed.length) {
    const bytes = decodeTypedFields(typed, dtype, numel, label);
    source = { kind: 'bytes', bytes };
  } else if (numel === 0) {
    source = { kind: 'bytes', bytes: new Uint8Array(0) };
  } else {
    throw new OnnxFormatError(`tensor '${label}' has no data`);
  }
  return new Tensor(name, dtype, dims, source, doc);
}

function externalSource(label: string, info: Map<string, string>, want: number, ctx: DecodeContext): TensorSource {
  const location = info.get('location');
  if (!location) throw new OnnxFormatError(`tensor '${label}' is marked external but has no location`);
  if (!ctx.dir) throw new OnnxFormatError(`tensor '${label}' uses external data, which needs the model's folder`);
  const offset = info.has('offset') ? Number(info.get('offset')) : 0;
  const length = info.has('length') ? Number(info.get('length')) : want;
  if (!Number.isSafeInteger(offset) || offset < 0 || !Number.isSafeInteger(length) || length < 0) {
    throw new OnnxFormatError(`tensor '${label}' has an invalid external offset or length`);
  }
  if (length !== want) {
    throw new OnnxFormatError(`tensor '${label}' needs ${want} bytes but its external data declares ${length}`);
  }
  const file = confine(ctx.dir, location, label);
  let size = ctx.externalSizes.get(file);
  if (size === undefined) {
    let st: fs.Stats;
    try {
      st = fs.statSync(file);
    } catch {
      throw new OnnxFormatError(`external data file '${location}' for tensor '${label}' is missing`);
    }
    if (!st.isFile()) throw new OnnxFormatError(`external data '${location}' for tensor '${label}' is not a file`);
    size = st.size;
    ctx.externalSizes.set(file, size);
  }
  if (offset + length > size) {
    throw new OnnxFormatError(
      `external data for tensor '${label}' runs past the end of '${location}' (needs ${offset + length} bytes, file has ${size})`,
    );
  }
  return { kind: 'external', file, offset, length };
}

/** Resolves an external-data location, refusing anything outside the model's folder. */
export function confine(dir: string, location: string, label: string): string {
  const escape = () =>
    new OnnxFormatError(`external data location '${location}' for tensor '${label}' points outside the model's folder`);
  if (path.isAbsolute(location) || location.includes('\0')) throw escape();
  const resolved = path.resolve(dir, location);
  const rel = path.relative(dir, resolved);
  if (rel.startsWith('..') || path.isAbsolute(rel)) throw escape();
  // A symlink inside the folder may still point out of it.
  try {
    const real = fs.realpathSync(resolved);
    const realRel = path.relative(fs.realpathSync(dir), real);
    if (realRel.startsWith('..') || path.isAbsolute(realRel)) throw escape();
    return real;
  } catch (e) {
    if (e instanceof OnnxFormatError) throw e;
    return resolved; // missing: reported by the caller
  }
}

function decodeTypedFields(fields: PackedField[], dtype: DataType, numel: number, label: string): Uint8Array {
  const values: number[] = [];
  const bigs: Int64[] = [];
  for (const { field, wt, view } of fields) {
    const r = new ProtoReader(view);
    r.tag();
    if (field === 4) r.repeatedFloat(wt, values);
    else if (field === 10) {
      if (wt === WireType.LengthDelimited) {
        const s = r.sub();
        while (!s.done) values.push(s.double());
      } else values.push(r.double());
    } else r.repeatedInt64(wt, bigs);
  }
  const fieldOf = fields[0].field;
  if (fields.some((f) => f.field !== fieldOf)) {
    throw new OnnxFormatError(`tensor '${label}' stores data in more than one typed field`);
  }
  const bits = dtypeBits(dtype);
  const perEntry = fieldOf === 5 && bits === 4 ? 2 : 1;
  const count = (fieldOf === 4 || fieldOf === 10 ? values.length : bigs.length) * perEntry;
  // 4-bit tensors with an odd count pad the last int32 entry.
  if (!(count === numel || (perEntry === 2 && count === numel + 1))) {
    throw new OnnxFormatError(`tensor '${label}' declares ${numel} elements but holds ${count}`);
  }
  const out = new Uint8Array(Math.ceil((numel * bits) / 8));
  const dv = new DataView(out.buffer);
  const expectField = (ok: boolean) => {
    if (!ok) throw new OnnxFormatError(`tensor '${label}' of type ${dtypeName(dtype)} uses typed field ${fieldOf}`);
  };
  switch (dtype) {
    case DataType.FLOAT:
    case DataType.COMPLEX64:
      expectField(fieldOf === 4);
      values.forEach((v, i) => dv.setFloat32(i * 4, v, true));
      break;
    case DataType.DOUBLE:
    case DataType.COMPLEX128:
      expectField(fieldOf === 10);
      values.forEach((v, i) => dv.setFloat64(i * 8, v, true));
      break;
    case DataType.INT64:
      expectField(fieldOf === 7);
      bigs.forEach((v, i) => dv.setBigInt64(i * 8, BigInt(v), true));
      break;
    case DataType.UINT64:
    case DataType.UINT32:
      expectField(fieldOf === 11);
      bigs.forEach((v, i) =>
        bits === 64 ? dv.setBigUint64(i * 8, BigInt.asUintN(64, BigInt(v)), true) : dv.setUint32(i * 4, Number(v), true),
      );
      break;
    default: {
      expectField(fieldOf === 5);
      if (bits === 4) {
        bigs.forEach((v, i) => (out[i] = Number(v) & 0xff));
      } else {
        const bytes = bits / 8;
        bigs.forEach((v, i) => {
          const n = Number(v);
          if (bytes === 1) out[i] = n & 0xff;
          else if (bytes === 2) dv.setUint16(i * 2, n & 0xffff, true);
          else dv.setInt32(i * 4, n, true);
        });
      }
    }
  }
  return out;
}

/** Wraps wire errors as format errors (for the format plugin to attach the file name). */
export function describeDecodeError(e: unknown): string | undefined {
  if (e instanceof WireError) return `not a valid ONNX protobuf (${e.message})`;
  if (e instanceof OnnxFormatError) return e.message;
  return undefined;
}
