import { DataType } from '../../ir/dtype';
import type { Model, Node } from '../../ir/graph';
import { GraphEditor, cloneModel } from '../graph-edit';
import { quantizeWeightsInt8 } from './params';
import { denseCandidate } from '../dense';
import { constantResolver, weightKey } from './registry';
import type { SkippedNode } from './static';

/**
 * Dynamic int8 quantization of MatMul/Gemm weights; activations are quantized at run time.
 *
 * Three ONNX Runtime forms are available, because which one is fastest depends on the CPU:
 * - 'fused':   com.microsoft DynamicQuantizeMatMul (one kernel: quantize A, integer GEMM, rescale)
 * - 'integer': DynamicQuantizeLinear → MatMulInteger → Cast → Mul (standard ONNX ops)
 * - 'weights': int8 weights with DequantizeLinear, float activations (weight-only)
 * `npm run bench -- dynamic` measures them; the default is the fastest measured here.
 */

export type DynamicForm = 'fused' | 'integer' | 'weights';

export interface DynamicOptions {
  perChannel?: boolean;
  form?: DynamicForm;
  reduceRange?: boolean;
  exclude?: Set<string>;
}

export interface DynamicResult {
  model: Model;
  quantized: string[];
  skipped: SkippedNode[];
}

/** Measured on this project's machines (AVX2, no VNNI); see the `dynamic` benchmark. */
export const DEFAULT_DYNAMIC_FORM: DynamicForm = 'integer';

export function quantizeDynamic(model: Model, opts: DynamicOptions = {}): DynamicResult {
  const out = cloneModel(model);
  const g = out.graph;
  const ed = new GraphEditor(g);
  const constOf = constantResolver(g);
  const form = opts.form ?? DEFAULT_DYNAMIC_FORM;
  const perChannel = opts.perChannel ?? true;
  const quantized: string[] = [];
  const skipped: SkippedNode[] = [];
  if (form === 'fused' && !out.opsetImports.some((o) => o.domain === 'com.microsoft')) {
    out.opsetImports.push({ domain: 'com.microsoft', version: 1 });
  }
  const replaced = new Map<Node, Node[]>();
  const shared = new Map<string, { q: string; s: string; zp: string }>();
  for (const n of g.nodes) {
    if (n.opType === 'Constant' || n.opType === 'Identity') continue;
    const skip = (reason: string) => skipped.push({ name: n.label, op: n.opType, reason });
    const dense = denseCandidate(n, constOf, 'dynamic quantization', opts.exclude, skip);
    if (!dense) continue;
    const { w: wf, i: k, o: nOut, bias } = dense;
    const base = (n.name || n.outputs[0]).replace(/[^\w.:/-]/g, '_');
    // A weight read by several layers is quantized once and shared again.
    const key = weightKey(n);
    let wInit = shared.get(key);
    if (!wInit) {
      const wq = quantizeWeightsInt8(wf, [k, nOut], perChannel ? 1 : null, opts.reduceRange ? 63 : 127);
      const sDims = perChannel ? [nOut] : [];
      wInit = {
        q: ed.initializer(`${base}_weight_quantized`, DataType.INT8, [k, nOut], wq.q),
        s: ed.initializer(`${base}_weight_scale`, DataType.FLOAT, sDims, perChannel ? wq.scales : Float32Array.of(wq.scales[0])),
        zp: ed.initializer(`${base}_weight_zero_point`, DataType.INT8, sDims, new Int8Array(perChannel ? nOut : 1)),
      };
      shared.set(key, wInit);
    }
    const { q: qn, s: sn, zp: zn } = wInit;
    const bn = bias ? ed.initializer(`${base}_bias`, DataType.FLOAT, [nOut], bias) : undefined;
    const y = n.outputs[0];
    const nodes: Node[] = [];
    if (form === 'fused') {
      const m = ed.node('DynamicQuantizeMatMul', [n.inputs[0], qn, sn, zn, ...(bn ? [bn] : [])], [`${base}_out`], 'com.microsoft');
      m.outputs = [y];
      nodes.push(m);
    } else if (form === 'integer') {
      const dq = ed.node('DynamicQuantizeLinear', [n.inputs[0]], [`${base}_x_quantized`, `${base}_x_scale`, `${base}_x_zero_point`]);
      const mi = ed.node('MatMulInteger', [dq.outputs[0], qn, dq.outputs[2], zn], [`${base}_int32`]);
      const cast = ed.node('Cast', [mi.outputs[0]], [`${base}_float`]);
      cast.setInt('to', DataType.FLOAT);
      const sc = ed.node('Mul', [dq.outputs[1], sn], [`${base}_scale_product`]);
      const mul = ed.node('Mul', [cast.outputs[0], sc.outputs[0]], [`${base}_scaled`]);
      nodes.push(dq, mi, cast, sc, mul);
      if (bn) {
        const add = ed.node('Add', [mul.outputs[0], bn], [`${base}_biased`]);
        nodes.push(add);
      }
      nodes[nodes.length - 1].outputs = [y];
    } else {
      const dq = ed.node('DequantizeLinear', [qn, sn, zn], [`${base}_weight_dequantized`]);
      if (perChannel) dq.setInt('axis', 1);
      const mm = ed.node('MatMul', [n.inputs[0], dq.outputs[0]], [`${base}_matmul`]);
      nodes.push(dq, mm);
      if (bn) nodes.push(ed.node('Add', [mm.outputs[0], bn], [`${base}_biased`]));
      nodes[nodes.length - 1].outputs = [y];
    }
    replaced.set(n, nodes);
    quantized.push(n.label);
  }
  g.nodes = g.nodes.flatMap((n) => replaced.get(n) ?? [n]);
  ed.dropUnusedInitializers();
  ed.sort();
  return { model: out, quantized, skipped };
}
