import { DataType, float32ToFloat16 } from '../../ir/dtype';
import { AttrType, outerRefs, type Graph, type Model, type Node } from '../../ir/graph';
import { Tensor } from '../../ir/tensor';
import { inferShapes } from '../../ir/shape-inference';
import { GraphEditor, cloneGraphShallow, cloneModel } from '../graph-edit';
import type { SkippedNode } from './static';

/**
 * float16 conversion: weights and compute go to float16, graph inputs and outputs stay
 * float32 with Cast nodes at the boundary. Nodes on the blocklist (ops that lose accuracy
 * in half precision, or whose float inputs must stay float32) and user-excluded nodes keep
 * running in float32, with Casts around them.
 */

export interface Fp16Options {
  /** Keep graph inputs and outputs float32 (default true). */
  keepIo?: boolean;
  exclude?: Set<string>;
  /** Extra op types to keep in float32. */
  blockOps?: string[];
}

/**
 * Kept in float32: reductions and ops whose range or precision needs it (the same spirit
 * as ORT's float16 converter), plus control flow (subgraphs are not converted).
 */
export const FP16_BLOCKLIST = new Set([
  'Range', 'NonMaxSuppression', 'TopK', 'RoiAlign', 'CumSum', 'RandomUniformLike', 'RandomNormalLike',
  'RandomUniform', 'RandomNormal', 'Multinomial', 'If', 'Loop', 'Scan', 'SequenceMap',
]);

/** Inputs that must stay float32 whatever the data type (op type → input indices). */
const FLOAT32_INPUTS: Record<string, number[]> = { Resize: [1, 2], Upsample: [1] };

export interface Fp16Result {
  model: Model;
  converted: string[];
  kept: SkippedNode[];
}

export function convertFp16(model: Model, opts: Fp16Options = {}): Fp16Result {
  const out = cloneModel(model);
  const g = out.graph;
  const ed = new GraphEditor(g);
  const keepIo = opts.keepIo ?? true;
  const block = new Set([...FP16_BLOCKLIST, ...(opts.blockOps ?? [])]);
  const excluded = (n: Node) => !!(opts.exclude?.has(n.name) || opts.exclude?.has(n.label));
  const isBlocked = (n: Node) => block.has(n.opType) || !!n.domain || excluded(n);
  const kept: SkippedNode[] = g.nodes
    .filter(isBlocked)
    .map((n) => ({ name: n.label, op: n.opType, reason: excluded(n) ? 'excluded' : n.domain ? 'custom-domain op' : 'on the float16 blocklist' }));

  // Element types before conversion.
  const dtypeOf = new Map<string, DataType>();
  for (const [k, v] of inferShapes(model).types) dtypeOf.set(k, v.dtype);
  for (const [k, t] of g.initializers) dtypeOf.set(k, t.dtype);
  const isFloat = (v: string) => dtypeOf.get(v) === DataType.FLOAT;

  // A float value is half precision afterwards iff a converted node produces it.
  const half = new Set<string>();
  for (const n of g.nodes) if (!isBlocked(n)) for (const o of n.outputs) if (o && isFloat(o)) half.add(o);

  const toHalfValue = new Map<string, string>();
  const toFloatValue = new Map<string, string>();
  const added: Node[] = [];
  const cast = (x: string, to: DataType, cache: Map<string, string>, suffix: string) => {
    let c = cache.get(x);
    if (!c) {
      const node = ed.node('Cast', [x], [`${x}_${suffix}`]);
      node.setInt('to', to);
      added.push(node);
      c = node.outputs[0];
      cache.set(x, c);
    }
    return c;
  };
  const halfInit = (x: string) => {
    let h = toHalfValue.get(x);
    if (!h) {
      h = ed.fresh(`${x}_fp16`);
      g.initializers.set(h, toHalf(g.initializers.get(x)!, h));
      toHalfValue.set(x, h);
    }
    return h;
  };

  const converted: string[] = [];
  for (const n of [...g.nodes]) {
    const blocked = isBlocked(n);
    const keep32 = blocked ? null : FLOAT32_INPUTS[n.opType] ?? [];
    n.inputs = n.inputs.map((x, idx) => {
      if (!x || !isFloat(x)) return x;
      const wants32 = keep32 === null || keep32.includes(idx);
      if (wants32) return half.has(x) ? cast(x, DataType.FLOAT, toFloatValue, 'fp32') : x;
      if (half.has(x)) return x;
      if (g.initializers.has(x)) return halfInit(x);
      return cast(x, DataType.FLOAT16, toHalfValue, 'fp16');
    });
    // Values a kept-float If/Loop/Scan reads inside its subgraphs stay float32 there too.
    if (blocked) {
      for (const r of outerRefs(n)) if (half.has(r) && isFloat(r)) renameOuterRef(n, r, cast(r, DataType.FLOAT, toFloatValue, 'fp32'));
      continue;
    }
    converted.push(n.label);
    if (n.opType === 'Cast' && n.int('to', 0) === DataType.FLOAT) n.setInt('to', DataType.FLOAT16);
    if (n.opType === 'Constant' || n.opType === 'ConstantOfShape') {
      const a = n.attr('value');
      if (a?.type === AttrType.TENSOR && a.value.dtype === DataType.FLOAT) n.attributes.set('value', { ...a, value: toHalf(a.value, a.value.name) });
    }
  }
  ed.append(...added);

  // Graph outputs: a Cast back to float32 under the original name.
  for (const o of g.outputs) {
    if (!half.has(o.name)) continue;
    if (!keepIo) {
      if (o.type?.kind === 'tensor') o.type = { ...o.type, dtype: DataType.FLOAT16 };
      continue;
    }
    const inner = ed.fresh(`${o.name}_fp16`);
    for (const n of g.nodes) {
      n.outputs = n.outputs.map((x) => (x === o.name ? inner : x));
      n.inputs = n.inputs.map((x) => (x === o.name ? inner : x));
    }
    const c = ed.node('Cast', [inner], [o.name]);
    c.outputs = [o.name];
    c.setInt('to', DataType.FLOAT);
    ed.append(c);
  }
  if (!keepIo) {
    // Inputs become float16 too: drop the boundary Casts by retyping the input itself.
    for (const i of g.inputs) {
      const c = toHalfValue.get(i.name);
      if (!c || g.initializers.has(i.name) || i.type?.kind !== 'tensor') continue;
      i.type = { ...i.type, dtype: DataType.FLOAT16 };
      g.nodes = g.nodes.filter((n) => n.outputs[0] !== c);
      ed.rewire(c, i.name);
    }
  }
  // Declared intermediate types are now stale; ORT infers them again.
  g.valueInfo.clear();
  ed.dropUnusedInitializers();
  ed.sort();
  return { model: out, converted, kept };
}

function toHalf(t: Tensor, name: string): Tensor {
  const f = t.toFloat32();
  const h = new Uint16Array(f.length);
  for (let i = 0; i < f.length; i++) h[i] = float32ToFloat16(f[i]);
  return Tensor.fromArray(name, DataType.FLOAT16, [...t.dims], h);
}

/**
 * Points `n`'s subgraphs (at any depth) at `to` wherever they read the outer value `from`.
 * The subgraphs are copied first, so the model the transform was given is left untouched.
 */
function renameOuterRef(n: Node, from: string, to: string): void {
  const renamed = (g: Graph): Graph => {
    const c = cloneGraphShallow(g);
    for (const m of c.nodes) {
      m.inputs = m.inputs.map((i) => (i === from ? to : i));
      if (m.subgraphs().length) renameOuterRef(m, from, to);
    }
    return c;
  };
  for (const [k, a] of n.attributes) {
    if (a.type === AttrType.GRAPH) n.attributes.set(k, { ...a, value: renamed(a.value) });
    else if (a.type === AttrType.GRAPHS) n.attributes.set(k, { ...a, value: a.value.map(renamed) });
  }
}
