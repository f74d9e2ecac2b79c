import { DataType, isFloatType } from '../../ir/dtype';
import type { Model, Node } from '../../ir/graph';
import { inferShapes } from '../../ir/shape-inference';
import { GraphEditor, cloneModel } from '../graph-edit';
import type { Ranges } from './calibrate';
import { activationParams, minMax, quantizeBias, quantizeWeightsInt8, quantizeWithParams, type QParams } from './params';
import { FUSIBLE_ACTIVATIONS, STATIC_RULES, constantResolver } from './registry';

/**
 * Static int8 quantization in QDQ form: QuantizeLinear→DequantizeLinear pairs on
 * activations (calibrated ranges), DequantizeLinear on int8 weights (symmetric, per
 * channel) and int32 biases. ORT fuses DQ→op→Q into its integer kernels (QLinearConv …).
 *
 * `planStatic` decides what to quantize; `applyStatic` builds a new model from the plan and
 * the calibrated ranges. The input model is never modified.
 */

export interface StaticOptions {
  perChannel?: boolean;
  /** int8 symmetric activations instead of uint8 asymmetric. */
  symmetricActivations?: boolean;
  /** 7-bit weights, avoiding u8s8 saturation on CPUs without VNNI. */
  reduceRange?: boolean;
  /** Node names to keep in float. */
  exclude?: Set<string>;
}

export interface SkippedNode {
  name: string;
  op: string;
  reason: string;
}

export interface StaticPlan {
  covered: Node[];
  skipped: SkippedNode[];
  /** Activation tensors that get a QDQ pair, in graph order. */
  tensors: string[];
  /** Tensors whose params come from another tensor (shared-range ops). */
  sharedFrom: Map<string, string>;
  /** Tensors that need a calibrated range. */
  calibrate: string[];
}

export function planStatic(model: Model, opts: StaticOptions = {}): StaticPlan {
  const g = model.graph;
  const constOf = constantResolver(g);
  const isConst = (n: string) => constOf(n) !== undefined;
  const { consumers, producer } = g.index();
  const graphOutputs = new Set(g.outputs.map((o) => o.name));
  const covered: Node[] = [];
  const skipped: SkippedNode[] = [];
  const order = g.topoOrder();
  const isCovered = new Set<Node>();
  const elemType = floatTensorTest(model);
  for (const n of order) {
    if (n.opType === 'Constant' || n.opType === 'Identity' && isConst(n.outputs[0])) continue;
    const rule = n.domain ? undefined : STATIC_RULES[n.opType];
    let reason: string | undefined;
    if (opts.exclude?.has(n.name) || opts.exclude?.has(n.label)) reason = 'excluded';
    else if (n.subgraphs().length) reason = 'nodes with subgraphs stay in float';
    else if (!rule) reason = `no static int8 rule for ${n.domain ? `${n.domain}:` : ''}${n.opType}`;
    else reason = rule.unsupported?.(n) ?? nonFloatReason(n, rule, isConst, elemType);
    if (reason) {
      skipped.push({ name: n.label, op: n.opType, reason });
      continue;
    }
    covered.push(n);
    isCovered.add(n);
  }
  const tensors: string[] = [];
  const seen = new Set<string>();
  const sharedFrom = new Map<string, string>();
  const add = (t: string) => {
    if (t && !seen.has(t) && !isConst(t)) {
      seen.add(t);
      tensors.push(t);
    }
  };
  /** A covered op whose output feeds only a Relu/Clip: quantize after the activation instead. */
  const fusesIntoActivation = (n: Node) => {
    const out = n.outputs[0];
    const cs = consumers.get(out) ?? [];
    return !graphOutputs.has(out) && cs.length === 1 && FUSIBLE_ACTIVATIONS.has(cs[0].opType) && isCovered.has(cs[0]) && cs[0].inputs[0] === out;
  };
  for (const n of covered) {
    const rule = STATIC_RULES[n.opType];
    for (const i of rule.activations(n, isConst)) {
      const t = n.inputs[i];
      if (!t) continue;
      if (FUSIBLE_ACTIVATIONS.has(n.opType)) {
        const p = producer.get(t);
        if (p && isCovered.has(p) && STATIC_RULES[p.opType].output === 'own' && fusesIntoActivation(p)) continue;
      }
      add(t);
    }
    const out = n.outputs[0];
    if (rule.output === 'none' || graphOutputs.has(out)) continue;
    if (rule.output === 'own' && fusesIntoActivation(n)) continue;
    add(out);
    if (rule.output === 'shared' && n.inputs[0] && seen.has(n.inputs[0])) sharedFrom.set(out, n.inputs[0]);
  }
  const calibrate = tensors.filter((t) => !sharedFrom.has(t));
  return { covered, skipped, tensors, sharedFrom, calibrate };
}

/**
 * The element type of each value (declared, or from shape inference): QuantizeLinear takes
 * float tensors only, so a value that is not known to be float32 never gets a Q/DQ pair.
 */
function floatTensorTest(model: Model): (name: string) => DataType | undefined {
  const g = model.graph;
  let inferred: Map<string, { dtype: DataType }> | undefined;
  return (name) => {
    const declared = [...g.inputs, ...g.outputs].find((v) => v.name === name) ?? g.valueInfo.get(name);
    if (declared?.type?.kind === 'tensor' && declared.type.dtype !== DataType.UNDEFINED) return declared.type.dtype;
    const init = g.initializers.get(name);
    if (init) return init.dtype;
    inferred ??= inferShapes(model).types;
    const t = inferred.get(name)?.dtype;
    return t === undefined || t === DataType.UNDEFINED ? undefined : t;
  };
}

/** Why a node with a static rule still stays in float: an activation or its output is not float32. */
function nonFloatReason(n: Node, rule: (typeof STATIC_RULES)[string], isConst: (n: string) => boolean, elemType: (name: string) => DataType | undefined): string | undefined {
  const names = [...rule.activations(n, isConst).map((i) => n.inputs[i]).filter((t) => t && !isConst(t)), ...(rule.output === 'none' ? [] : [n.outputs[0]])];
  for (const t of names) {
    const dt = elemType(t);
    if (dt === DataType.FLOAT) continue;
    return dt === undefined ? `the element type of '${t}' is unknown (only float32 tensors are quantized)` : `'${t}' is ${DataType[dt].toLowerCase()}, not float32 (only float tensors are quantized)`;
  }
  return undefined;
}

function rootOf(t: string, shared: Map<string, string>): string {
  let r = t;
  for (let i = 0; i < 64 && shared.has(r); i++) r = shared.get(r)!;
  return r;
}

export function applyStatic(model: Model, plan: StaticPlan, ranges: Ranges, opts: StaticOptions = {}): Model {
  const out = cloneModel(model);
  const g = out.graph;
  const ed = new GraphEditor(g);
  const constOf = constantResolver(g);
  const opset = model.opset('') ?? 13;
  const perChannel = (opts.perChannel ?? true) && opset >= 13;
  const qmax = opts.reduceRange ? 63 : 127;
  const coveredNames = new Set(plan.covered.map((n) => n.outputs.join('|')));
  const covered = g.nodes.filter((n) => coveredNames.has(n.outputs.join('|')));
  /** DQ output name → the activation it dequantizes. */
  const dqOf = new Map<string, string>();

  // Activation parameters (shared-range tensors take their source's parameters).
  const params = new Map<string, QParams>();
  for (const t of plan.tensors) {
    const r = ranges.get(rootOf(t, plan.sharedFrom)) ?? { min: 0, max: 1 };
    params.set(t, activationParams(r.min, r.max, !!opts.symmetricActivations));
  }

  // QDQ pairs on activations: every consumer reads the dequantized value.
  for (const t of plan.tensors) {
    const p = params.get(t)!;
    const s = ed.scalar(`${t}_scale`, p.scale);
    const zp = ed.scalar(`${t}_zero_point`, p.zeroPoint, p.dtype);
    const q = ed.node('QuantizeLinear', [t, s, zp], [`${t}_quantized`]);
    const dq = ed.node('DequantizeLinear', [q.outputs[0], s, zp], [`${t}_dequantized`]);
    ed.rewire(t, dq.outputs[0]);
    ed.append(q, dq);
    dqOf.set(dq.outputs[0], t);
  }

  // Weights, biases, and constant inputs of covered ops.
  const weightCache = new Map<string, { dq: string; scales: Float32Array }>();
  for (const n of covered) {
    const rule = STATIC_RULES[n.opType];
    const w = rule.weight?.(n, (x) => constOf(x) !== undefined);
    let wScales: Float32Array | undefined;
    if (w) {
      const name = n.inputs[w.index];
      const t = constOf(name);
      if (t && isFloatType(t.dtype)) {
        const axis = !perChannel || w.axis === null ? null : w.axis < 0 ? t.dims.length + w.axis : w.axis;
        const key = `${name}|${axis}`;
        let cached = weightCache.get(key);
        if (!cached) {
          const wq = quantizeWeightsInt8(t.toFloat32(), t.dims, t.dims.length ? axis : null, qmax);
          const per = axis !== null && t.dims.length > 0;
          const sDims = per ? [wq.scales.length] : [];
          const qn = ed.initializer(`${name}_quantized`, DataType.INT8, t.dims, wq.q);
          const sn = ed.initializer(`${name}_scale`, DataType.FLOAT, sDims, per ? wq.scales : Float32Array.of(wq.scales[0]));
          const zn = ed.initializer(`${name}_zero_point`, DataType.INT8, sDims, new Int8Array(per ? wq.scales.length : 1));
          const dq = ed.node('DequantizeLinear', [qn, sn, zn], [`${name}_dequantized`]);
          if (per) dq.setInt('axis', axis!);
          ed.append(dq);
          cached = { dq: dq.outputs[0], scales: wq.scales };
          weightCache.set(key, cached);
        }
        n.inputs[w.index] = cached.dq;
        wScales = cached.scales;
      }
    }
    // The activation input was rewired to its DQ output; find its parameters by the original name.
    const xParams = params.get(dqOf.get(n.inputs[0]) ?? n.inputs[0]);
    if (rule.bias !== undefined && n.inputs[rule.bias] && wScales && xParams) {
      const b = constOf(n.inputs[rule.bias]);
      if (b && b.dtype === DataType.FLOAT && b.dims.length === 1) {
        const bq = quantizeBias(b.toFloat32(), xParams.scale, wScales);
        const per = bq.scales.length > 1 && wScales.length > 1;
        const base = `${n.label.replace(/[^\w.:/-]/g, '_')}_bias`;
        const qn = ed.initializer(`${base}_quantized`, DataType.INT32, b.dims, bq.q);
        const sn = ed.initializer(`${base}_scale`, DataType.FLOAT, per ? [bq.scales.length] : [], per ? bq.scales : Float32Array.of(bq.scales[0]));
        const zn = ed.initializer(`${base}_zero_point`, DataType.INT32, per ? [bq.scales.length] : [], new Int32Array(per ? bq.scales.length : 1));
        const dq = ed.node('DequantizeLinear', [qn, sn, zn], [`${base}_dequantized`]);
        if (per) dq.setInt('axis', 0);
        ed.append(dq);
        n.inputs[rule.bias] = dq.outputs[0];
      }
    }
    // Constant activation inputs (e.g. the constant operand of Add/Mul): per-tensor, own range.
    for (const i of rule.activations(n, (x) => constOf(x) !== undefined)) {
      const c = n.inputs[i] ? constOf(n.inputs[i]) : undefined;
      if (!c || c.dtype !== DataType.FLOAT || (w && i === w.index)) continue;
      const v = c.toFloat32();
      const [lo, hi] = minMax(v);
      const p = activationParams(lo, hi, !!opts.symmetricActivations);
      const qn = ed.initializer(`${n.inputs[i]}_quantized`, p.dtype, c.dims, quantizeWithParams(v, p));
      const sn = ed.scalar(`${n.inputs[i]}_scale`, p.scale);
      const zn = ed.scalar(`${n.inputs[i]}_zero_point`, p.zeroPoint, p.dtype);
      const dq = ed.node('DequantizeLinear', [qn, sn, zn], [`${n.inputs[i]}_dequantized`]);
      ed.append(dq);
      n.inputs[i] = dq.outputs[0];
    }
  }
  ed.dropUnusedInitializers();
  ed.sort();
  return out;
}
