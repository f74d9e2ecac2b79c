import { DataType, dtypeName, isFloatType } from '../ir/dtype';
import { AttrType, type Dim, type Graph, type Model, type Node, type TensorTypeInfo } from '../ir/graph';
import { inferShapes, type ShapeInfo } from '../ir/shape-inference';
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
 * MACs count symbolic dimensions (such as the batch) as 1 unless `inputShapes` fixes
 * them; a node whose shapes are unknown has `macs: null`.
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
  totals: { params: number; bytes: number; macs: number; flops: number; nodes: number; unknownMacsNodes: number };
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
  const shapes = inferShapes(model, { inputShapes: opts.inputShapes });
  const g = model.graph;
  const layers: LayerInfo[] = [];
  const claimed = new Set<Tensor>();
  const order = g.topoOrder();
  const { producer } = g.index();
  const constantOf = constantResolver(g, producer);

  for (const node of order) {
    layers.push(analyzeNode(node, shapes, constantOf, claimed, opts));
  }
  // Subgraph nodes are listed too (after the main graph), so their weights count.
  for (const n of order) {
    for (const sg of n.subgraphs()) {
      const { producer: p2 } = sg.index();
      const c2 = constantResolver(sg, p2);
      for (const sn of sg.topoOrder()) layers.push(analyzeNode(sn, shapes, c2, claimed, opts));
    }
  }
  // Initializers no node consumes still occupy the file.
  const orphanBytes: Record<string, number> = {};
  let orphanParams = 0;
  for (const t of g.initializers.values()) {
    if (claimed.has(t)) continue;
    addBytes(orphanBytes, t);
    if (isFloatType(t.dtype)) orphanParams += t.numel;
  }

  const totals = { params: orphanParams, bytes: 0, macs: 0, flops: 0, nodes: layers.length, unknownMacsNodes: 0 };
  const bytesByDtype: Record<string, number> = { ...orphanBytes };
  const byOp = new Map<string, OpTypeSummary>();
  for (const l of layers) {
    totals.params += l.params;
    if (l.macs === null) totals.unknownMacsNodes++;
    else totals.macs += l.macs;
    if (l.flops !== null) totals.flops += l.flops;
    for (const [k, v] of Object.entries(l.bytesByDtype)) bytesByDtype[k] = (bytesByDtype[k] ?? 0) + v;
    const key = l.domain ? `${l.domain}:${l.op}` : l.op;
    const s = byOp.get(key) ?? { op: key, count: 0, params: 0, macs: 0 };
    s.count++;
    s.params += l.params;
    s.macs += l.macs ?? 0;
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
    inputs: g.inputs.filter((i) => !g.initializers.has(i.name)).map((i) => summarize(i.name, i.type?.kind === 'tensor' ? i.type : undefined, opts.inputShapes)),
    outputs: g.outputs.map((o) => summarize(o.name, shapes.types.get(o.name) ?? (o.type?.kind === 'tensor' ? o.type : undefined))),
    totals,
    bytesByDtype,
    layers,
    topByParams: [...layers].filter((l) => l.params > 0).sort((a, b) => b.params - a.params).slice(0, topN).map((l) => ({ name: l.name, op: l.op, params: l.params })),
    topByMacs: [...layers].filter((l) => (l.macs ?? 0) > 0).sort((a, b) => b.macs! - a.macs!).slice(0, topN).map((l) => ({ name: l.name, op: l.op, macs: l.macs! })),
    byOpType: [...byOp.values()].sort((a, b) => b.macs - a.macs || b.params - a.params || b.count - a.count),
    unknownShapeOps: [...shapes.unsupportedOps].sort(),
  };
}

function summarize(name: string, t: TensorTypeInfo | undefined, overrides?: Record<string, Dim[]>): TensorSummary {
  return { name, dtype: t ? dtypeName(t.dtype) : 'unknown', shape: overrides?.[name] ?? t?.shape ?? null };
}

function addBytes(acc: Record<string, number>, t: Tensor): void {
  const k = dtypeName(t.dtype);
  acc[k] = (acc[k] ?? 0) + t.byteLength;
}

/** Maps a value name to the constant tensors it is computed from, if it is constant. */
function constantResolver(g: Graph, producer: Map<string, Node>): (name: string) => Tensor[] | undefined {
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
  constantOf: (name: string) => Tensor[] | undefined,
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
