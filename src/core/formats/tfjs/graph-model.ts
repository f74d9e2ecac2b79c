import { DataType } from '../../ir/dtype';
import { Graph, Model, Node, type Dim } from '../../ir/graph';
import { TfjsDocument, type Json } from './document';
import { inferTfGraphShapes } from './graph-shapes';
import { withoutManifest } from './layers';
import type { ReadWeights } from './manifest';

/**
 * TF.js graph models (`"format": "graph-model"`: a TensorFlow GraphDef in JSON plus the
 * weights manifest) read into the IR for inspection: one node per GraphDef op (domain
 * `tfjs-graph`), `Const` nodes that the manifest fills become initializers, `Placeholder`s
 * become graph inputs. Control inputs (`^name`) are dropped; output k of a node is
 * `name:k` (output 0 is plain `name`, as in TensorFlow).
 */

const TF_DTYPES: Record<string, DataType> = {
  DT_FLOAT: DataType.FLOAT,
  DT_INT32: DataType.INT32,
  DT_BOOL: DataType.BOOL,
  DT_HALF: DataType.FLOAT16,
  DT_INT64: DataType.INT64,
  DT_UINT8: DataType.UINT8,
  DT_STRING: DataType.STRING,
};

function valueName(input: string): string {
  return input.endsWith(':0') ? input.slice(0, -2) : input;
}

function attrValue(node: Node, key: string, v: Json): void {
  if (typeof v.i === 'string' || typeof v.i === 'number') node.setInt(key, Number(v.i));
  else if (typeof v.f === 'number') node.setFloat(key, v.f);
  else if (typeof v.b === 'boolean') node.setInt(key, v.b ? 1 : 0);
  else if (typeof v.type === 'string') node.setString(key, v.type);
  else if (typeof v.s === 'string') node.setString(key, Buffer.from(v.s, 'base64').toString('utf8'));
  else if (v.list && typeof v.list === 'object') {
    const l = v.list as Json;
    if (Array.isArray(l.i)) node.setInts(key, l.i.map(Number));
    else if (Array.isArray(l.s)) node.setString(key, l.s.map((x) => Buffer.from(String(x), 'base64').toString('utf8')).join(','));
  }
}

function placeholderShape(attr: Json | undefined): Dim[] | null {
  const shape = ((attr?.shape as Json | undefined)?.shape ?? undefined) as Json | undefined;
  if (!shape || shape.unknownRank) return null;
  const dims = (shape.dim as Json[] | undefined) ?? [];
  return dims.map((d, i) => {
    const n = Number(d.size ?? -1);
    return n >= 0 ? n : i === 0 ? 'batch' : null;
  });
}

export function buildGraphModel(file: string, json: Json, w: ReadWeights, fail: (why: string) => never): Model {
  const topology = json.modelTopology as Json;
  const nodes = topology.node;
  if (!Array.isArray(nodes)) fail('graph model topology has no "node" array');
  const g = new Graph('graph-model');
  const model = new Model(g, 'tfjs-graph');
  model.path = file;
  model.producerName = String(json.generatedBy ?? '');
  model.producerVersion = String(json.convertedBy ?? '');
  model.opsetImports = [{ domain: 'tfjs-graph', version: Number((topology.versions as Json | undefined)?.producer ?? 1) }];
  model.source = new TfjsDocument(withoutManifest(json), w.quantization, w.shardFiles);
  const names = new Set<string>();
  const maxOutput = new Map<string, number>();
  for (const n of nodes as Json[]) {
    if (!n || typeof n.name !== 'string' || typeof n.op !== 'string') fail('graph model has a node without a name or op');
    if (names.has(n.name as string)) fail(`graph model has two nodes named '${n.name}'`);
    names.add(n.name as string);
    for (const i of (n.input as unknown[] | undefined) ?? []) {
      const m = /^([^^:][^:]*):(\d+)$/.exec(String(i));
      if (m) maxOutput.set(m[1], Math.max(maxOutput.get(m[1]) ?? 0, Number(m[2])));
    }
  }
  const consumed = new Set<string>();
  for (const n of nodes as Json[]) {
    const name = n.name as string;
    const op = n.op as string;
    const attr = (n.attr ?? {}) as Record<string, Json>;
    if (op === 'Const' && w.tensors.has(name)) continue;
    if (op === 'Placeholder') {
      g.inputs.push({ name, type: { kind: 'tensor', dtype: TF_DTYPES[String(attr.dtype?.type)] ?? DataType.FLOAT, shape: placeholderShape(attr) } });
      continue;
    }
    const inputs = ((n.input as unknown[] | undefined) ?? []).map(String).filter((i) => !i.startsWith('^')).map(valueName);
    inputs.forEach((i) => consumed.add(i));
    const outs = Array.from({ length: (maxOutput.get(name) ?? 0) + 1 }, (_, k) => (k === 0 ? name : `${name}:${k}`));
    const node = new Node(op, inputs, outs, name);
    node.domain = 'tfjs-graph';
    for (const [k, v] of Object.entries(attr)) if (v && typeof v === 'object' && k !== 'value') attrValue(node, k, v);
    g.nodes.push(node);
  }
  for (const [k, t] of w.tensors) g.initializers.set(k, t);
  const known = new Set([...g.nodes.flatMap((n) => n.outputs), ...g.inputs.map((i) => i.name), ...g.initializers.keys()]);
  for (const n of g.nodes) {
    for (const i of n.inputs) if (!known.has(i)) fail(`node '${n.name}' reads '${i}', which no node produces`);
  }
  // Outputs: the signature's when present, otherwise every op output nobody reads.
  const sigOut = ((json.signature as Json | undefined)?.outputs ?? undefined) as Record<string, Json> | undefined;
  const fromSig = sigOut ? Object.values(sigOut).map((o) => valueName(String(o.name ?? ''))).filter((n) => known.has(n)) : [];
  const outputs = fromSig.length ? fromSig : g.nodes.filter((n) => n.opType !== 'Const' && n.opType !== 'NoOp').map((n) => n.outputs[0]).filter((o) => !consumed.has(o));
  for (const o of outputs) g.outputs.push({ name: o });
  inferTfGraphShapes(g);
  return model;
}
