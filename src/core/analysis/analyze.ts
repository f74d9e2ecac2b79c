import { DataType, dtypeName, isFloatType } from '../ir/dtype';
import { allGraphs, AttrType, type Dim, type Graph, type Model, type Node, type TensorTypeInfo } from '../ir/graph';
import { defaultInputShape, inferShapes, type ShapeInfo } from '../ir/shape-inference';
import type { Tensor } from '../ir/tensor';
import { countMacs } from './macs';
import { weightStats, type WeightStats } from './stats';
import { pushAll } from '../util/arrays';

/**
 * Per-node and whole-model analysis: where the parameters, bytes and compute are.
 *
 * Weights are attributed to the first compute node that consumes them, looking through
 * pass-through producers (Constant, Identity, Cast, DequantizeLinear, Transpose, Reshape
 * of constants), so a weight shared by several nodes is counted once.
 *
 * MACs are per sample: a symbolic batch counts as 1. Other symbolic input dims (image
 * height/width, audio length, sequence length) take the defaults of `defaultInputShape`
 * unless `inputShapes` fixes them, and `assumedDims` says which were assumed. A node whose
 * shapes are unknown has `macs: null`, and the total then says it is partial.
 * Weights inside If/Loop/Scan subgraphs are attributed like any other (outer-scope
 * references resolve to the enclosing graphs' constants), each tensor counted once.
 */

export interface TensorSummary {
  name: string;
  dtype: string;
  shape: Dim[] | null;
}

export interface LayerInfo {
  name: string;
  op: string;
  domain: string;
  inputs: string[];
  outputs: string[];
  params: number;
  bytes: number;
  bytesByDtype: Record<string, number>;
  macs: number | null;
  flops: number | null;
  outputShapes: Array<Dim[] | null>;
  /** For nodes inside a subgraph: the control-flow node and branch (`If_0/then_branch`). */
  scope?: string;
  /** An If's MACs per branch (its own `macs` is the largest). */
  branchMacs?: number[];
  /**
   * Weight tensors attributed to this node; stats when `weightStats` was requested. `bytes` is
   * the in-memory size (dequantized, for weights the file stores narrower); `stored` the file's.
   */
  weights: WeightInfo[];
  /** For a node with no weights: why (they belong to another node, live in its branches, or it has no constant input). */
  noWeights?: string;
}

export type WeightInfo = (WeightStats | { name: string; dtype: string; shape: number[]; params: number; bytes: number }) & {
  note?: string;
  /** The stored dtype and bytes, when the file stores the weight narrower than it is used (TF.js uint8/uint16/float16). */
  stored?: { dtype: string; bytes: number };
};

export interface OpTypeSummary {
  op: string;
  count: number;
  params: number;
  macs: number;
}

export interface ModelAnalysis {
  format: string;
  file?: string;
  fileSizeBytes?: number;
  irVersion: number;
  opset: Record<string, number>;
  producer: string;
  inputs: TensorSummary[];
  outputs: TensorSummary[];
  /**
   * `macs` is per sample (a symbolic batch counts as 1) over the main graph, an If counted
   * by its largest branch. `unknownMacsNodes` counts nodes whose MACs are unknown: when it
   * is not 0 the total is a lower bound (see `macsPartial`, `macsTotalLabel`). `bytes` is what
   * the weights take in the file; `dequantizedBytes`, present when the file stores weights
   * narrower than they are used (TF.js uint8/uint16/float16), is their size once dequantized.
   */
  totals: { params: number; bytes: number; macs: number; flops: number; nodes: number; unknownMacsNodes: number; dequantizedBytes?: number };
  /** True when some nodes' MACs are unknown, so `totals.macs` is a lower bound. */
  macsPartial: boolean;
  /** Symbolic input dims given default sizes for the MAC figures, e.g. `x[2]=224 (image height)`. */
  assumedDims: string[];
  bytesByDtype: Record<string, number>;
  layers: LayerInfo[];
  topByParams: Array<{ name: string; op: string; params: number }>;
  topByMacs: Array<{ name: string; op: string; macs: number }>;
  byOpType: OpTypeSummary[];
  /** Ops shape inference has no rule for (their outputs are unknown unless declared). */
  unknownShapeOps: string[];
}

export interface AnalyzeOptions {
  /** Compute min/max/mean/std/sparsity/histogram/entropy for every weight (streams all data). */
  weightStats?: boolean;
  topN?: number;
  inputShapes?: Record<string, Dim[]>;
}

/** TFLite's DEQUANTIZE (float16/int8 constant → float32) passes its weight to the consumer too. */
const PASS_THROUGH = new Set(['Constant', 'Identity', 'Cast', 'DequantizeLinear', 'DEQUANTIZE', 'Transpose', 'Reshape', 'Unsqueeze', 'Squeeze']);
const DEQUANTIZERS = new Set(['DequantizeLinear', 'DEQUANTIZE']);
/**
 * Narrow integer constants are quantized weights (int8 behind DequantizeLinear, packed int4,
 * int32 biases, cluster indices). int64 constants are shapes and axes, not parameters,
 * except where an op reads them as weights.
 */
const QUANTIZED_WEIGHT_TYPES = new Set([DataType.INT8, DataType.UINT8, DataType.INT4, DataType.UINT4, DataType.INT16, DataType.UINT16, DataType.INT32]);
/** Integer constants are parameters only where an op reads them as weights. */
const INT_WEIGHT_INPUTS: Record<string, number[]> = {
  DequantizeLinear: [0],
  DEQUANTIZE: [0],
  MatMulNBits: [1],
  QLinearConv: [3],
  QLinearMatMul: [3],
  ConvInteger: [1],
  MatMulInteger: [1],
  Gather: [0],
};

export function analyzeModel(model: Model, opts: AnalyzeOptions = {}): ModelAnalysis {
  const g = model.graph;
  const graphInputs = g.inputs.filter((i) => !g.initializers.has(i.name));
  // Symbolic sizes other than the batch take documented defaults, so MACs are figures for a
  // nominal input rather than for a 1-pixel one; the batch stays symbolic (per-sample MACs).
  const assumedDims: string[] = [];
  let inputShapes = opts.inputShapes;
  if (!inputShapes) {
    const fixed: Record<string, Dim[]> = {};
    for (const vi of graphInputs) {
      if (vi.type?.kind !== 'tensor' || !vi.type.shape) continue;
      const d = defaultInputShape(vi.name, vi.type.shape, vi.type.dtype, { keepBatch: true, metadata: model.metadata });
      if (d.assumed.length || vi.type.shape[0] === null) {
        fixed[vi.name] = d.shape;
        assumedDims.push(...d.assumed);
      }
    }
    if (Object.keys(fixed).length) inputShapes = fixed;
  }
  const shapes = inferShapes(model, { inputShapes });
  const layers: LayerInfo[] = [];
  const claimed = new Set<Tensor>();

  /**
   * Analyses one graph's nodes (subgraph nodes follow their control-flow node, marked with
   * `scope`) and returns the graph's MACs: the sum over its nodes, where an If counts its
   * largest branch and a Loop/Scan is unknown (its trip count is data).
   */
  const claimedBy = new Map<Tensor, string>();
  const walk = (graph: Graph, outer: ConstantOf | undefined, scope: string | undefined): { macs: number; unknown: number } => {
    const { producer, consumers } = graph.index();
    const constantOf = constantResolver(graph, producer, outer);
    let macs = 0;
    let unknown = 0;
    for (const node of graph.topoOrder()) {
      const layer = analyzeNode(node, shapes, constantOf, claimed, opts, producer);
      for (const t of tensorsOf.get(layer) ?? []) claimedBy.set(t, layer.name);
      if (scope) layer.scope = scope;
      layers.push(layer);
      const subs = node.subgraphs();
      if (subs.length) {
        const branchMacs: number[] = [];
        let branchUnknown = 0;
        for (const [k, sg] of subs.entries()) {
          const name = `${node.label}/${sg.name || `body${k}`}`;
          const r = walk(sg, constantOf, scope ? `${scope}/${name}` : name);
          branchMacs.push(r.macs);
          branchUnknown += r.unknown;
        }
        if (node.opType === 'If') {
          layer.macs = Math.max(0, ...branchMacs);
          layer.branchMacs = branchMacs;
          layer.flops = null;
        } else {
          layer.macs = null;
          layer.flops = null;
        }
        unknown += branchUnknown;
        if (!layer.params) layer.noWeights = `its weights are in its ${subs.length === 1 ? 'body' : 'branches'}: the layers under ${node.label}/ below`;
      }
      if (!layer.params && !layer.noWeights) layer.noWeights = whyNoWeights(node, constantOf, claimedBy, consumers);
      if (layer.macs === null) unknown++;
      else macs += layer.macs;
    }
    return { macs, unknown };
  };
  const main = walk(g, undefined, undefined);

  // Initializers and Constants no node consumes still occupy the file (in any graph).
  const orphanBytes: Record<string, number> = {};
  let orphanParams = 0;
  let orphanDequantized = 0;
  for (const sg of allGraphs(g)) {
    const tensors = [...sg.initializers.values()];
    for (const n of sg.nodes) {
      const a = n.opType === 'Constant' && !n.domain ? n.attr('value') : undefined;
      if (a?.type === AttrType.TENSOR) tensors.push(a.value);
    }
    for (const t of tensors) {
      if (claimed.has(t)) continue;
      claimed.add(t);
      addBytes(orphanBytes, t);
      orphanDequantized += t.byteLength;
      if (isFloatType(t.dtype)) orphanParams += t.numel;
    }
  }

  const totals: ModelAnalysis['totals'] = { params: orphanParams, bytes: 0, macs: main.macs, flops: 0, nodes: layers.length, unknownMacsNodes: main.unknown };
  let dequantized = 0;
  let narrower = false;
  const bytesByDtype: Record<string, number> = { ...orphanBytes };
  const byOp = new Map<string, OpTypeSummary>();
  for (const l of layers) {
    totals.params += l.params;
    const control = l.branchMacs !== undefined || CONTROL_FLOW.has(l.op);
    if (l.flops !== null && !l.scope) totals.flops += l.flops;
    for (const [k, v] of Object.entries(l.bytesByDtype)) bytesByDtype[k] = (bytesByDtype[k] ?? 0) + v;
    for (const w of l.weights) {
      dequantized += w.bytes;
      narrower ||= w.stored !== undefined;
    }
    dequantized += l.bytes - l.weights.reduce((a, w) => a + (w.stored?.bytes ?? w.bytes), 0);
    const key = l.domain ? `${l.domain}:${l.op}` : l.op;
    const s = byOp.get(key) ?? { op: key, count: 0, params: 0, macs: 0 };
    s.count++;
    s.params += l.params;
    // A control-flow node's MACs are its branches' (listed under their own ops).
    if (!control) s.macs += l.macs ?? 0;
    byOp.set(key, s);
  }
  totals.bytes = Object.values(bytesByDtype).reduce((a, b) => a + b, 0);
  narrower ||= [...claimed].some((t) => t.storedAs !== undefined);
  if (narrower) totals.dequantizedBytes = dequantized + orphanDequantized;
  const topN = opts.topN ?? 10;
  const opset: Record<string, number> = {};
  for (const o of model.opsetImports) opset[o.domain || 'ai.onnx'] = o.version;

  return {
    format: model.format,
    file: model.path,
    irVersion: Number(model.irVersion),
    opset,
    producer: [model.producerName, model.producerVersion].filter(Boolean).join(' '),
    inputs: graphInputs.map((i) => summarize(i.name, i.type?.kind === 'tensor' ? i.type : undefined, opts.inputShapes)),
    outputs: g.outputs.map((o) => summarize(o.name, shapes.types.get(o.name) ?? (o.type?.kind === 'tensor' ? o.type : undefined))),
    totals,
    macsPartial: totals.unknownMacsNodes > 0,
    assumedDims,
    bytesByDtype,
    layers,
    topByParams: [...layers].filter((l) => l.params > 0).sort((a, b) => b.params - a.params).slice(0, topN).map((l) => ({ name: l.name, op: l.op, params: l.params })),
    topByMacs: [...layers]
      .filter((l) => (l.macs ?? 0) > 0 && l.branchMacs === undefined)
      .sort((a, b) => b.macs! - a.macs!)
      .slice(0, topN)
      .map((l) => ({ name: l.name, op: l.op, macs: l.macs! })),
    byOpType: [...byOp.values()].sort((a, b) => b.macs - a.macs || b.params - a.params || b.count - a.count),
    unknownShapeOps: [...shapes.unsupportedOps].sort(),
  };
}

const CONTROL_FLOW = new Set(['If', 'Loop', 'Scan']);

/** The total MACs as text: "≥" marks a partial total (some nodes' MACs are unknown). */
export function macsTotalLabel(a: Pick<ModelAnalysis, 'totals'>, format: (n: number) => string): string {
  return `${a.totals.unknownMacsNodes ? '≥' : ''}${format(a.totals.macs)}`;
}

function summarize(name: string, t: TensorTypeInfo | undefined, overrides?: Record<string, Dim[]>): TensorSummary {
  return { name, dtype: t ? dtypeName(t.dtype) : 'unknown', shape: overrides?.[name] ?? t?.shape ?? null };
}

/** Adds a tensor's bytes as the file stores them (its stored dtype when narrower than its own). */
function addBytes(acc: Record<string, number>, t: Tensor): void {
  const k = dtypeName(t.storedAs?.dtype ?? t.dtype);
  acc[k] = (acc[k] ?? 0) + (t.storedAs?.bytes ?? t.byteLength);
}

/** The weight tensors each layer holds, for `layerWeightStats` (the DTOs carry names only). */
const tensorsOf = new WeakMap<LayerInfo, Tensor[]>();

/**
 * Statistics and a histogram (`weightStats`) of each weight a layer of `analyzeModel`'s result
 * holds, whatever keeps it: an initializer, a `Constant` node, a constant behind a dequantizer,
 * or an enclosing graph's constant used inside an If/Loop/Scan body. Streams every value once
 * or twice (see `weightStats`); the layer's own `weights` entries where stats do not apply.
 */
export function layerWeightStats(layer: LayerInfo): WeightInfo[] {
  const ts = tensorsOf.get(layer) ?? [];
  return layer.weights.map((w, k) => {
    const s = ts[k] ? weightStats(ts[k]) : undefined;
    return s ? { ...s, name: w.name, ...(w.note ? { note: w.note } : {}), ...(w.stored ? { stored: w.stored } : {}) } : w;
  });
}

/** Why a node that is not control flow holds no weights, in words for the detail panel. */
function whyNoWeights(node: Node, constantOf: ConstantOf, claimedBy: Map<Tensor, string>, consumers: Map<string, Node[]>): string {
  if (PASS_THROUGH.has(node.opType) && node.outputs.every((o) => constantOf(o) !== undefined)) {
    const users = node.outputs.flatMap((o) => consumers.get(o) ?? []).map((n) => n.label);
    return users.length ? `it produces a constant that ${users.slice(0, 3).join(', ')}${users.length > 3 ? ', …' : ''} ${users.length > 1 ? 'use' : 'uses'}, where it is listed` : 'its constant output is not used by any node';
  }
  const shared: string[] = [];
  let constants = 0;
  for (const name of node.inputs) {
    const ts = name ? constantOf(name) : undefined;
    if (!ts) continue;
    constants += ts.length;
    for (const t of ts) {
      const owner = claimedBy.get(t);
      if (owner && owner !== node.label && !shared.includes(owner)) shared.push(owner);
    }
  }
  if (shared.length) return `its constant inputs are shared with ${shared.slice(0, 3).join(', ')}, where they are listed (each weight is counted once)`;
  if (constants) return 'its constant inputs are shapes, axes or indices, not weights';
  return 'all its inputs are activations computed by other layers';
}

type ConstantOf = (name: string) => Tensor[] | undefined;

/**
 * Maps a value name to the constant tensors it is computed from, if it is constant. A
 * subgraph's resolver falls back to its enclosing graph's (outer-scope references).
 */
function constantResolver(g: Graph, producer: Map<string, Node>, outer?: ConstantOf): ConstantOf {
  const memo = new Map<string, Tensor[] | undefined>();
  const resolve = (name: string, depth: number): Tensor[] | undefined => {
    if (memo.has(name)) return memo.get(name);
    let r: Tensor[] | undefined;
    const init = g.initializers.get(name);
    if (init) r = [init];
    else {
      const p = producer.get(name);
      if (p && depth < 16 && PASS_THROUGH.has(p.opType)) {
        if (p.opType === 'Constant') {
          const a = p.attr('value');
          r = a?.type === AttrType.TENSOR ? [a.value] : [];
        } else {
          const parts: Tensor[] = [];
          let ok = true;
          for (const i of p.inputs) {
            if (!i) continue;
            const s = resolve(i, depth + 1);
            if (!s) {
              ok = false;
              break;
            }
            pushAll(parts, s);
          }
          r = ok ? parts : undefined;
        }
      } else if (!p && outer && !g.inputs.some((i) => i.name === name)) {
        r = outer(name);
      }
    }
    memo.set(name, r);
    return r;
  };
  return (name) => resolve(name, 0);
}

function analyzeNode(
  node: Node,
  shapes: ShapeInfo,
  constantOf: ConstantOf,
  claimed: Set<Tensor>,
  opts: AnalyzeOptions,
  producer: Map<string, Node>,
): LayerInfo {
  const weights: LayerInfo['weights'] = [];
  const held: Tensor[] = [];
  const bytesByDtype: Record<string, number> = {};
  let params = 0;
  // Pass-through producers of constants hand their weights to the consumer.
  const passes = PASS_THROUGH.has(node.opType) && node.outputs.every((o) => constantOf(o) !== undefined);
  if (!passes) {
    node.inputs.forEach((name, pos) => {
      if (!name) return;
      const ts = constantOf(name);
      if (!ts) return;
      for (const t of ts) {
        if (claimed.has(t)) continue;
        claimed.add(t);
        addBytes(bytesByDtype, t);
        // In TensorFlow graphs (TF.js graph models) integer constants are shapes, axes and paddings.
        const intWeights = node.domain !== 'tfjs-graph';
        const isParam = isFloatType(t.dtype) || (intWeights && (QUANTIZED_WEIGHT_TYPES.has(t.dtype) || (INT_WEIGHT_INPUTS[node.opType]?.includes(pos) ?? false)));
        if (!isParam || t.dtype === DataType.STRING) continue;
        params += t.numel;
        const s = opts.weightStats ? weightStats(t) : undefined;
        const w: WeightInfo = s ? { ...s, name: t.name || name } : { name: t.name || name, dtype: dtypeName(t.dtype), shape: [...t.dims], params: t.numel, bytes: t.byteLength };
        // What the format says about how the weight is stored (quantization, sparsity, a dequantizer).
        const notes = t.docString ? [t.docString] : [];
        const p = producer.get(name);
        if (p && DEQUANTIZERS.has(p.opType)) notes.push(`${dtypeName(t.dtype)} dequantized by ${p.label}`);
        if (t.storedAs) {
          w.stored = { dtype: dtypeName(t.storedAs.dtype), bytes: t.storedAs.bytes };
          notes.push(`stored as ${w.stored.dtype}, dequantized to ${w.dtype} on load`);
        }
        if (notes.length) w.note = notes.join('; ');
        weights.push(w);
        held.push(t);
      }
    });
  }
  const type = (name: string) => shapes.types.get(name);
  const { macs, flops } = countMacs(node, type, constantOf);
  const layer: LayerInfo = {
    name: node.label,
    op: node.opType,
    domain: node.domain,
    inputs: [...node.inputs],
    outputs: [...node.outputs],
    params,
    bytes: Object.values(bytesByDtype).reduce((a, b) => a + b, 0),
    bytesByDtype,
    macs: passes ? 0 : macs,
    flops: passes ? 0 : flops,
    outputShapes: node.outputs.map((o) => type(o)?.shape ?? null),
    weights,
  };
  tensorsOf.set(layer, held);
  return layer;
}
