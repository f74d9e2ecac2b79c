import { DataType } from '../../ir/dtype';
import { Graph, Model, Node, type Dim } from '../../ir/graph';
import type { Tensor } from '../../ir/tensor';
import { TfjsDocument, type Json } from './document';
import type { ReadWeights } from './manifest';

/**
 * TF.js layers models (Keras Sequential or Functional topology, Keras 2 or Keras 3 style)
 * read into the IR: one node per Keras layer (op type = the layer class, domain `tfjs`,
 * output `<layer>:0`), its weights as initializers named as in the manifest, and every
 * layer's output shape inferred from its config (NHWC) and declared as value info, so
 * analysis sees shapes and MACs. A layer class without a shape rule (a custom layer) is
 * still a node with its weights counted; its output shape is unknown.
 */

export function buildLayersModel(file: string, json: Json, w: ReadWeights, fail: (why: string) => never): Model {
  const doc = new TfjsDocument(withoutManifest(json), w.quantization, w.shardFiles);
  const g = new Graph(String(doc.modelConfig().class_name ?? 'tfjs'));
  const model = new Model(g, 'tfjs-layers');
  model.path = file;
  model.producerName = String(json.generatedBy ?? '');
  model.producerVersion = String(json.convertedBy ?? '');
  model.opsetImports = [{ domain: 'tfjs', version: 1 }];
  model.source = doc;
  buildGraph(g, doc.modelConfig(), w.tensors, fail);
  inferKerasShapes(g);
  return model;
}

export function withoutManifest(json: Json): Json {
  const rest = { ...json };
  delete rest.weightsManifest;
  return rest;
}

/** The layer name a weight belongs to: the manifest name up to its last '/'. */
export function weightLayer(name: string): string {
  const i = name.lastIndexOf('/');
  return i < 0 ? name : name.slice(0, i);
}

function setAttrs(node: Node, c: Json): void {
  for (const [k, v] of Object.entries(c)) {
    if (typeof v === 'string') node.setString(k, v);
    else if (typeof v === 'number' && Number.isInteger(v)) node.setInt(k, v);
    else if (typeof v === 'boolean') node.setInt(k, v ? 1 : 0);
    else if (Array.isArray(v) && v.length && v.every((x) => typeof x === 'number' && Number.isInteger(x))) node.setInts(k, v as number[]);
    else if (v && typeof v === 'object' && k === 'activation') {
      // Keras 3 may nest it: {"class_name": ..., "config": ...}; keep the name.
      const n = (v as Json).class_name ?? (v as Json).config;
      if (typeof n === 'string') node.setString(k, n);
    }
  }
}

function buildGraph(g: Graph, topo: Json, weights: Map<string, Tensor>, fail: (why: string) => never): void {
  const cls = topo.class_name as string | undefined;
  const config = (topo.config ?? {}) as Json;
  const layers = (Array.isArray(config) ? config : (config.layers as Json[] | undefined)) ?? [];
  if (!Array.isArray(layers) || layers.length === 0) fail('modelTopology has no layers (expected a Keras Sequential or Functional config)');
  // Weights by owning layer (a layer may be nested, e.g. 'block/conv/kernel': the longest match wins).
  const byLayer = new Map<string, string[]>();
  for (const k of weights.keys()) {
    const l = weightLayer(k);
    if (!byLayer.has(l)) byLayer.set(l, []);
    byLayer.get(l)!.push(k);
  }
  const weightsOf = (name: string) => [...byLayer.entries()].filter(([l]) => l === name || l.startsWith(`${name}/`)).flatMap(([, ks]) => ks);
  const shapeOf = (c: Json): Dim[] | null => {
    const s = (c.batch_input_shape ?? c.batch_shape) as Array<number | null> | undefined;
    return Array.isArray(s) ? s.map((d, i) => (d === null ? (i === 0 ? 'batch' : null) : d)) : null;
  };
  const dtypeOf = (c: Json) => (c.dtype === 'int32' ? DataType.INT32 : DataType.FLOAT);
  const addInput = (name: string, c: Json) => g.inputs.push({ name, type: { kind: 'tensor', dtype: dtypeOf(c), shape: shapeOf(c) } });
  const seen = new Set<string>();
  const addLayer = (l: Json, inputs: string[]) => {
    if (!l || typeof l !== 'object') fail('modelTopology has a malformed layer entry');
    const c = (l.config ?? {}) as Json;
    const name = String(c.name ?? l.name ?? `layer${g.nodes.length}`);
    if (seen.has(name)) fail(`two layers are named '${name}'`);
    seen.add(name);
    const node = new Node(String(l.class_name ?? 'Unknown'), [...inputs, ...weightsOf(name)], [`${name}:0`], name);
    node.domain = 'tfjs';
    setAttrs(node, c);
    g.nodes.push(node);
    return node.outputs[0];
  };
  if (cls === 'Sequential' || Array.isArray(config)) {
    let cur = 'input';
    const first = layers[0] as Json | undefined;
    addInput(cur, (first?.config ?? {}) as Json);
    for (const l of layers) {
      if ((l as Json)?.class_name === 'InputLayer') continue;
      cur = addLayer(l as Json, [cur]);
    }
    g.outputs.push({ name: cur });
  } else {
    // Functional: inbound_nodes in Keras 2 ([[name, node, tensor, kwargs]…]) or Keras 3 ({args: [keras tensors]}) style.
    const refs: InboundRef[] = [];
    for (const l of layers as Json[]) {
      const c = (l?.config ?? {}) as Json;
      const name = String(l?.name ?? c.name);
      if (l?.class_name === 'InputLayer') {
        addInput(`${name}:0`, c);
        continue;
      }
      const inbound = (l?.inbound_nodes as unknown[] | undefined) ?? [];
      const sources: string[] = [];
      const visit = (x: unknown) => {
        if (Array.isArray(x) && typeof x[0] === 'string' && typeof x[1] === 'number') {
          sources.push(`${x[0]}:0`);
          refs.push({ layer: name, source: x[0], node: x[1] });
        } else if (x && typeof x === 'object' && !Array.isArray(x)) {
          const hist = ((x as Json).config as Json | undefined)?.keras_history;
          if (Array.isArray(hist) && typeof hist[0] === 'string') {
            sources.push(`${hist[0]}:0`);
            refs.push({ layer: name, source: hist[0], node: typeof hist[1] === 'number' ? hist[1] : 0 });
          } else Object.values(x as Json).forEach(visit);
        } else if (Array.isArray(x)) x.forEach(visit);
      };
      // Every inbound node is checked (TensorFlow.js builds them all); the IR keeps the first.
      inbound.forEach((node, i) => {
        const before = sources.length;
        visit(node);
        if (i > 0) sources.length = before;
      });
      addLayer({ ...l, config: { ...c, name } }, sources);
    }
    validateFunctional(layers as Json[], refs, config, fail);
    const outs = (config.output_layers as unknown[] | undefined) ?? [];
    const visitOut = (o: unknown) => {
      if (Array.isArray(o) && typeof o[0] === 'string') g.outputs.push({ name: `${o[0]}:0` });
      else if (Array.isArray(o)) o.forEach(visitOut);
    };
    visitOut(outs);
  }
  // All weights are initializers (ones no layer claims still count towards the bytes).
  for (const [k, t] of weights) g.initializers.set(k, t);
}

/** One edge of a functional model: layer `layer` reads node `node` of layer `source`. */
interface InboundRef {
  layer: string;
  source: string;
  node: number;
}

/**
 * Checks a functional model's topology before anything builds it: every inbound node and
 * every model input/output names a layer the model defines, at a node index that layer has,
 * and the layers form no cycle. TensorFlow.js's `modelFromJSON` loops forever when a node's
 * inputs can never be built (a missing layer, a cycle), so this runs first. `fail` throws a
 * ModelError naming the layer.
 */
function validateFunctional(layers: Json[], refs: InboundRef[], config: Json, fail: (msg: string) => never): void {
  const nodesOf = new Map<string, number>();
  for (const l of layers) {
    const name = String(l?.name ?? (l?.config as Json | undefined)?.name);
    const inbound = Array.isArray(l?.inbound_nodes) ? (l.inbound_nodes as unknown[]).length : 0;
    nodesOf.set(name, Math.max(1, inbound));
  }
  for (const r of refs) {
    const count = nodesOf.get(r.source);
    if (count === undefined) fail(`layer '${r.layer}' takes its input from layer '${r.source}', which the model does not define`);
    if (!Number.isInteger(r.node) || r.node < 0 || r.node >= count) fail(`layer '${r.layer}' reads node ${r.node} of layer '${r.source}', which has ${count}`);
  }
  for (const key of ['input_layers', 'output_layers']) {
    const list = config[key];
    if (list === undefined) continue;
    const names: string[] = [];
    const collect = (o: unknown) => {
      if (Array.isArray(o) && typeof o[0] === 'string') names.push(o[0]);
      else if (Array.isArray(o)) o.forEach(collect);
    };
    collect(list);
    for (const n of names) if (!nodesOf.has(n)) fail(`the model's ${key === 'input_layers' ? 'input' : 'output'} names layer '${n}', which the model does not define`);
  }
  // Kahn's algorithm over layer → consumer edges: whatever is left is on a cycle.
  const consumers = new Map<string, string[]>();
  const indegree = new Map<string, number>([...nodesOf.keys()].map((n) => [n, 0]));
  for (const r of refs) {
    if (r.source === r.layer) fail(`layer '${r.layer}' takes its own output as input`);
    const list = consumers.get(r.source);
    if (list) list.push(r.layer);
    else consumers.set(r.source, [r.layer]);
    indegree.set(r.layer, (indegree.get(r.layer) ?? 0) + 1);
  }
  const ready = [...indegree].filter(([, d]) => d === 0).map(([n]) => n);
  let done = 0;
  while (ready.length) {
    const n = ready.pop()!;
    done++;
    for (const c of consumers.get(n) ?? []) {
      const d = indegree.get(c)! - 1;
      indegree.set(c, d);
      if (d === 0) ready.push(c);
    }
  }
  if (done < indegree.size) {
    const stuck = [...indegree].find(([, d]) => d > 0)![0];
    fail(`layer '${stuck}' is on a cycle of layers (a functional model must be acyclic)`);
  }
}

// ---- Keras output shapes (channels_last) ---------------------------------------------

const IDENTITY = new Set([
  'Activation', 'ReLU', 'LeakyReLU', 'ELU', 'PReLU', 'ThresholdedReLU', 'Softmax', 'Dropout', 'SpatialDropout1D',
  'SpatialDropout2D', 'AlphaDropout', 'GaussianDropout', 'GaussianNoise', 'BatchNormalization', 'LayerNormalization',
  'Masking', 'Rescaling',
]);
const MERGE = new Set(['Add', 'Subtract', 'Multiply', 'Average', 'Maximum', 'Minimum']);

const pair = (v: unknown, dflt: number): [number, number] =>
  typeof v === 'number' ? [v, v] : Array.isArray(v) && v.length >= 2 ? [Number(v[0]), Number(v[1])] : Array.isArray(v) && v.length === 1 ? [Number(v[0]), Number(v[0])] : [dflt, dflt];

function convDim(d: Dim, k: number, s: number, dil: number, same: boolean): Dim {
  if (typeof d !== 'number') return d === null ? null : null;
  return same ? Math.ceil(d / s) : Math.floor((d - (k - 1) * dil - 1) / s) + 1;
}

function attrs(n: Node): Json {
  const o: Json = {};
  for (const [name, a] of n.attributes) {
    const v = a.value as unknown;
    o[name] = v instanceof Uint8Array ? new TextDecoder().decode(v) : Array.isArray(v) ? v.map(Number) : typeof v === 'bigint' ? Number(v) : v;
  }
  return o;
}

/** Output shape of one Keras layer, or null when unknown. Exported for the transforms. */
export function kerasOutputShape(op: string, c: Json, ins: Array<Dim[] | null>, kernelDims?: number[]): Dim[] | null {
  const x = ins[0];
  if (IDENTITY.has(op)) return x;
  if (!x) return null;
  const last = x[x.length - 1];
  switch (op) {
    case 'Dense':
      return [...x.slice(0, -1), Number(c.units)];
    case 'Conv2D':
    case 'SeparableConv2D':
    case 'DepthwiseConv2D':
    case 'MaxPooling2D':
    case 'AveragePooling2D': {
      if (x.length !== 4 || c.data_format === 'channels_first') return null;
      const pool = op.endsWith('Pooling2D');
      const k = pool ? pair(c.pool_size, 2) : pair(c.kernel_size, kernelDims ? kernelDims[0] : 1);
      const s = pair(c.strides, pool ? k[0] : 1);
      const d = pool ? [1, 1] : pair(c.dilation_rate, 1);
      const same = c.padding === 'same';
      const ch = op === 'DepthwiseConv2D' ? (typeof last === 'number' ? last * Number(c.depth_multiplier ?? 1) : null) : pool ? last : Number(c.filters);
      return [x[0], convDim(x[1], k[0], s[0], d[0], same), convDim(x[2], k[1], s[1], d[1], same), ch];
    }
    case 'Conv1D':
    case 'MaxPooling1D':
    case 'AveragePooling1D': {
      if (x.length !== 3) return null;
      const pool = op !== 'Conv1D';
      const k = Number((pool ? ([] as unknown[]).concat(c.pool_size ?? 2) : ([] as unknown[]).concat(c.kernel_size ?? 1))[0]);
      const s = Number(([] as unknown[]).concat(c.strides ?? (pool ? k : 1))[0]);
      const d = pool ? 1 : Number(([] as unknown[]).concat(c.dilation_rate ?? 1)[0]);
      return [x[0], convDim(x[1], k, s, d, c.padding === 'same'), pool ? last : Number(c.filters)];
    }
    case 'GlobalAveragePooling2D':
    case 'GlobalMaxPooling2D':
    case 'GlobalAveragePooling1D':
    case 'GlobalMaxPooling1D':
      return c.keepdims ? [x[0], ...x.slice(1, -1).map(() => 1), last] : [x[0], last];
    case 'Flatten': {
      let n: number | null = 1;
      for (const d of x.slice(1)) n = typeof d === 'number' && n !== null ? n * d : null;
      return [x[0], n];
    }
    case 'Reshape': {
      const t = (c.target_shape as number[] | undefined) ?? [];
      let total: number | null = 1;
      for (const d of x.slice(1)) total = typeof d === 'number' && total !== null ? total * d : null;
      const known = t.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
      return [x[0], ...t.map((d) => (d === -1 ? (total === null ? null : total / known) : d))];
    }
    case 'ZeroPadding2D': {
      const p = c.padding;
      const [[t, b], [l, r]] = typeof p === 'number' ? [[p, p], [p, p]] : Array.isArray(p) && Array.isArray(p[0]) ? (p as [[number, number], [number, number]]) : Array.isArray(p) ? [[p[0], p[0]], [p[1], p[1]]] : [[1, 1], [1, 1]];
      const add = (d: Dim, n: number) => (typeof d === 'number' ? d + n : null);
      return [x[0], add(x[1], t + b), add(x[2], l + r), last];
    }
    case 'UpSampling2D': {
      const [a, b] = pair(c.size, 2);
      const mul = (d: Dim, n: number) => (typeof d === 'number' ? d * n : null);
      return [x[0], mul(x[1], a), mul(x[2], b), last];
    }
    case 'Concatenate': {
      if (ins.some((s) => !s || s.length !== x.length)) return null;
      const axis = ((Number(c.axis ?? -1) % x.length) + x.length) % x.length;
      let sum: number | null = 0;
      for (const s of ins) sum = typeof s![axis] === 'number' && sum !== null ? sum + (s![axis] as number) : null;
      return x.map((d, i) => (i === axis ? sum : d));
    }
    case 'Embedding':
      return [...x, Number(c.output_dim)];
    case 'LSTM':
    case 'GRU':
    case 'SimpleRNN':
      return c.return_sequences ? [x[0], x[1], Number(c.units)] : [x[0], Number(c.units)];
    default:
      return MERGE.has(op) ? x : null;
  }
}

/** Declares every layer's output shape (where known) as value info. */
export function inferKerasShapes(g: Graph): void {
  const shapes = new Map<string, Dim[] | null>();
  for (const i of g.inputs) shapes.set(i.name, i.type?.kind === 'tensor' ? i.type.shape : null);
  for (const n of g.topoOrder()) {
    const data = n.inputs.filter((i) => !g.initializers.has(i));
    const kernel = n.inputs.find((i) => g.initializers.has(i) && /kernel$/.test(i));
    const s = kerasOutputShape(n.opType, attrs(n), data.map((i) => shapes.get(i) ?? null), kernel ? g.initializers.get(kernel)!.dims : undefined);
    shapes.set(n.outputs[0], s);
    g.valueInfo.set(n.outputs[0], { name: n.outputs[0], type: { kind: 'tensor', dtype: DataType.FLOAT, shape: s } });
  }
}

export { attrs as kerasAttrs };
