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
  /** Weight tensors attributed to this node; stats when `weightStats` was requested. */
  weights: Array<(WeightStats | { name: string; dtype: string; shape: number[]; params: number; bytes: number }) & { note?: string }>;
}

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
   * is not 0 the total is a lower bound (see `macsPartial`, `macsTotalLabel`).
   */
  totals: { params: number; bytes: number; macs: number; flops: number; nodes: number; unknownMacsNodes: number };
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

const PASS_THROUGH = new Set(['Constant', 'Identity', 'Cast', 'DequantizeLinear', 'Transpose', 'Reshape', 'Unsqueeze', 'Squeeze']);
/**
 * Narrow integer constants are quantized weights (int8 behind DequantizeLinear, packed int4,
 * int32 biases, cluster indices). int64 constants are shapes and axes, not parameters,
 * except where an op reads them as weights.
 */
const QUANTIZED_WEIGHT_TYPES = new Set([DataType.INT8, DataType.UINT8, DataType.INT4, DataType.UINT4, DataType.INT16, DataType.UINT16, DataType.INT32]);
/** Integer constants are parameters only where an op reads them as weights. */
const INT_WEIGHT_INPUTS: Record<string, number[]> = {
  DequantizeLinear: [0],
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
  const walk = (graph: Graph, outer: ConstantOf | undefined, scope: string | undefined): { macs: number; unknown: number } => {
    const constantOf = constantResolver(graph, graph.index().producer, outer);
    let macs = 0;
    let unknown = 0;
    for (const node of graph.topoOrder()) {
      const layer = analyzeNode(node, shapes, constantOf, claimed, opts);
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
      }
      if (layer.macs === null) unknown++;
      else macs += layer.macs;
    }
    return { macs, unknown };
  };
  const main = walk(g, undefined, undefined);

  // Initializers and Constants no node consumes still occupy the file (in any graph).
  const orphanBytes: Record<string, number> = {};
  let orphanParams = 0;
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
      if (isFloatType(t.dtype)) orphanParams += t.numel;
    }
  }

  const totals = { params: orphanParams, bytes: 0, macs: main.macs, flops: 0, nodes: layers.length, unknownMacsNodes: main.unknown };
  const bytesByDtype: Record<string, number> = { ...orphanBytes };
  const byOp = new Map<string, OpTypeSummary>();
  for (const l of layers) {
    totals.params += l.params;
    const control = l.branchMacs !== undefined || CONTROL_FLOW.has(l.op);
    if (l.flops !== null && !l.scope) totals.flops += l.flops;
    for (const [k, v] of Object.entries(l.bytesByDtype)) bytesByDtype[k] = (bytesByDtype[k] ?? 0) + v;
    const key = l.domain ? `${l.domain}:${l.op}` : l.op;
    const s = byOp.get(key) ?? { op: key, count: 0, params: 0, macs: 0 };
    s.count++;
    s.params += l.params;
    // A control-flow node's MACs are its branches' (listed under their own ops).
    if (!control) s.macs += l.macs ?? 0;
    byOp.set(key, s);
  }
  totals.bytes = Object.values(bytesByDtype).reduce((a, b) => a + b, 0);
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

function addBytes(acc: Record<string, number>, t: Tensor): void {
  const k = dtypeName(t.dtype);
  acc[k] = (acc[k] ?? 0) + t.byteLength;
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
): LayerInfo {
  const weights: LayerInfo['weights'] = [];
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
        const w = s ?? { name: t.name || name, dtype: dtypeName(t.dtype), shape: [...t.dims], params: t.numel, bytes: t.byteLength };
        // What the format says about how the weight is stored (quantization, sparsity).
        if (t.docString) (w as { note?: string }).note = t.docString;
        weights.push(w);
      }
    });
  }
  const type = (name: string) => shapes.types.get(name);
  const { macs, flops } = countMacs(node, type, constantOf);
  return {
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
}
