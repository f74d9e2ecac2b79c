import { DataType } from '../../ir/dtype';
import { AttrType, type Attribute, type Graph, type Model, type TypeInfo, type ValueInfo } from '../../ir/graph';
import type { Tensor } from '../../ir/tensor';
import { ProtoWriter, WireType } from '../protobuf';

/**
 * IR → ONNX ModelProto. Tensor bytes are appended by reference, so encoding does not
 * copy weights; tensors routed to external data are recorded in `ExternalPlan` and
 * written separately by the caller.
 */

export interface ExternalPlan {
  /** File name written into `location` (relative to the model's folder). */
  location: string;
  /** Tensors at least this large go to the external file. */
  threshold: number;
  /** Filled by the encoder: tensors in file order with their offsets. */
  entries: Array<{ tensor: Tensor; offset: number }>;
  size: number;
}

/** External-data offsets are aligned so the file can be memory-mapped per tensor. */
const EXTERNAL_ALIGN = 64;

export function encodeModel(model: Model, ext?: ExternalPlan): ProtoWriter {
  const w = new ProtoWriter();
  w.varintField(1, model.irVersion);
  if (model.producerName) w.stringField(2, model.producerName);
  if (model.producerVersion) w.stringField(3, model.producerVersion);
  if (model.domain) w.stringField(4, model.domain);
  if (model.modelVersion) w.varintField(5, model.modelVersion);
  if (model.docString) w.stringField(6, model.docString);
  w.messageField(7, encodeGraph(model.graph, ext));
  for (const o of model.opsetImports) {
    const m = new ProtoWriter(32);
    if (o.domain) m.stringField(1, o.domain);
    m.varintField(2, o.version);
    w.messageField(8, m);
  }
  for (const kv of model.metadata) w.messageField(14, entry(kv));
  for (const e of model.extra) w.raw(e);
  return w;
}

function entry([k, v]: [string, string]): ProtoWriter {
  const m = new ProtoWriter(32);
  m.stringField(1, k);
  m.stringField(2, v);
  return m;
}

export function encodeGraph(g: Graph, ext?: ExternalPlan): ProtoWriter {
  const w = new ProtoWriter(1024);
  for (const n of g.nodes) {
    const m = new ProtoWriter(128);
    for (const i of n.inputs) m.stringField(1, i);
    for (const o of n.outputs) m.stringField(2, o);
    if (n.name) m.stringField(3, n.name);
    m.stringField(4, n.opType);
    for (const a of n.attributes.values()) m.messageField(5, encodeAttribute(a, ext));
    if (n.docString) m.stringField(6, n.docString);
    if (n.domain) m.stringField(7, n.domain);
    if (n.overload) m.stringField(8, n.overload);
    for (const kv of n.metadata) m.messageField(9, entry(kv));
    for (const e of n.extra) m.raw(e);
    w.messageField(1, m);
  }
  if (g.name) w.stringField(2, g.name);
  for (const t of g.initializers.values()) w.messageField(5, encodeTensor(t, ext));
  if (g.docString) w.stringField(10, g.docString);
  for (const vi of g.inputs) w.messageField(11, encodeValueInfo(vi));
  for (const vi of g.outputs) w.messageField(12, encodeValueInfo(vi));
  for (const vi of g.valueInfo.values()) w.messageField(13, encodeValueInfo(vi));
  for (const s of g.sparseInitializers) {
    const m = new ProtoWriter(64);
    m.messageField(1, encodeTensor(s.values, ext));
    m.messageField(2, encodeTensor(s.indices, ext));
    m.packedInt64(3, s.dims);
    w.messageField(15, m);
  }
  for (const kv of g.metadata) w.messageField(16, entry(kv));
  for (const e of g.extra) w.raw(e);
  return w;
}

function encodeAttribute(a: Attribute, ext?: ExternalPlan): ProtoWriter {
  const m = new ProtoWriter(64);
  m.stringField(1, a.name);
  switch (a.type) {
    case AttrType.FLOAT:
      m.floatField(2, a.value);
      break;
    case AttrType.INT:
      m.varintField(3, a.value);
      break;
    case AttrType.STRING:
      m.bytesField(4, a.value);
      break;
    case AttrType.TENSOR:
      m.messageField(5, encodeTensor(a.value, ext));
      break;
    case AttrType.GRAPH:
      m.messageField(6, encodeGraph(a.value, ext));
      break;
    case AttrType.FLOATS:
      m.packedFloat(7, a.value);
      break;
    case AttrType.INTS:
      m.packedInt64(8, a.value);
      break;
    case AttrType.STRINGS:
      for (const s of a.value) m.bytesField(9, s);
      break;
    case AttrType.TENSORS:
      for (const t of a.value) m.messageField(10, encodeTensor(t, ext));
      break;
    case AttrType.GRAPHS:
      for (const g of a.value) m.messageField(11, encodeGraph(g, ext));
      break;
    default:
      break; // opaque kinds live in `extra`
  }
  if (a.docString) m.stringField(13, a.docString);
  if (a.type !== AttrType.UNDEFINED) m.varintField(20, a.type);
  if (a.refAttrName) m.stringField(21, a.refAttrName);
  for (const e of a.extra ?? []) m.raw(e);
  return m;
}

export function encodeValueInfo(vi: ValueInfo): ProtoWriter {
  const m = new ProtoWriter(64);
  m.stringField(1, vi.name);
  if (vi.type) m.messageField(2, encodeType(vi.type));
  if (vi.docString) m.stringField(3, vi.docString);
  for (const e of vi.extra ?? []) m.raw(e);
  return m;
}

function encodeType(t: TypeInfo): ProtoWriter {
  const m = new ProtoWriter(64);
  if (t.kind === 'opaque') {
    m.raw(t.encoded);
    return m;
  }
  const tt = new ProtoWriter(64);
  if (t.dtype !== DataType.UNDEFINED) tt.varintField(1, t.dtype);
  if (t.shape) {
    const s = new ProtoWriter(64);
    for (const d of t.shape) {
      const dm = new ProtoWriter(16);
      if (typeof d === 'number') dm.varintField(1, d);
      else if (typeof d === 'string') dm.stringField(2, d);
      s.messageField(1, dm);
    }
    tt.messageField(2, s);
  }
  m.messageField(t.sparse ? 8 : 1, tt);
  return m;
}

export function encodeTensor(t: Tensor, ext?: ExternalPlan): ProtoWriter {
  const m = new ProtoWriter(64);
  m.packedInt64(1, t.dims);
  m.varintField(2, t.dtype);
  if (t.dtype === DataType.STRING) {
    for (const s of t.strings ?? []) m.bytesField(6, s);
  }
  if (t.name) m.stringField(8, t.name);
  if (t.docString) m.stringField(12, t.docString);
  if (t.dtype !== DataType.STRING) {
    const len = t.byteLength;
    if (ext && len >= ext.threshold && len > 0) {
      const offset = Math.ceil(ext.size / EXTERNAL_ALIGN) * EXTERNAL_ALIGN;
      ext.entries.push({ tensor: t, offset });
      ext.size = offset + len;
      m.messageField(13, entry(['location', ext.location]));
      m.messageField(13, entry(['offset', String(offset)]));
      m.messageField(13, entry(['length', String(len)]));
      m.tag(14, WireType.Varint).uint32(1);
    } else {
      m.bytesField(9, t.bytes());
    }
  }
  return m;
}
