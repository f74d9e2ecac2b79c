import { DataType } from './dtype';
import { AttrType, type Dim, type Graph, type Model, type Node, type TensorTypeInfo } from './graph';
import type { Tensor } from './tensor';
import { maxOf } from '../util/arrays';

/**
 * Shape inference with symbolic dimensions.
 *
 * Each op handler maps input types (plus small known constant values, for shape
 * subgraphs such as Shape→Gather→Concat→Reshape) to output types. Anything a handler
 * cannot determine is reported as unknown (`null` dims or a `null` shape), never guessed.
 */

export type Shape = Dim[];

export interface ShapeInfo {
  /** Types of every value the inference could type (inputs, initializers, node outputs). */
  types: Map<string, TensorTypeInfo>;
  /** Ops with no shape handler (their outputs are unknown unless declared). */
  unsupportedOps: Set<string>;
}

export interface InferOptions {
  /** Fixes graph-input dims, e.g. `{ input: [1, 3, 224, 224] }`. */
  inputShapes?: Record<string, Dim[]>;
}

/** Known contents of small integer tensors (shape arithmetic). Entries may be symbolic. */
type Known = Map<string, Dim[]>;

interface Ctx {
  node: Node;
  opset: number;
  type(i: number): TensorTypeInfo | undefined;
  shape(i: number): Shape | null;
  value(i: number): Dim[] | undefined;
  /** Small float constants (e.g. Resize scales). */
  floats(i: number): number[] | undefined;
  hasInput(i: number): boolean;
}

interface Out {
  types: Array<TensorTypeInfo | undefined>;
  values?: Array<Dim[] | undefined>;
}

type Handler = (c: Ctx) => Out;

const KNOWN_LIMIT = 64;

export function inferShapes(model: Model, opts: InferOptions = {}): ShapeInfo {
  const types = new Map<string, TensorTypeInfo>();
  const unsupported = new Set<string>();
  const floats = new Map<string, number[]>();
  inferGraph(model.graph, model.opset('') ?? 13, types, new Map(), floats, unsupported, opts.inputShapes ?? {});
  return { types, unsupportedOps: unsupported };
}

function smallFloats(t: Tensor): number[] | undefined {
  return t.isFloat() && t.numel <= KNOWN_LIMIT ? Array.from(t.toFloat32()) : undefined;
}

function inferGraph(
  g: Graph,
  opset: number,
  types: Map<string, TensorTypeInfo>,
  known: Known,
  floats: Map<string, number[]>,
  unsupported: Set<string>,
  overrides: Record<string, Dim[]>,
): void {
  for (const [name, t] of g.initializers) {
    types.set(name, { kind: 'tensor', dtype: t.dtype, shape: [...t.dims] });
    const f = smallFloats(t);
    if (f) floats.set(name, f);
    if ((t.dtype === DataType.INT64 || t.dtype === DataType.INT32) && t.dims.length <= 1 && t.numel <= KNOWN_LIMIT) {
      known.set(name, t.toNumbers());
    }
  }
  for (const vi of g.inputs) {
    if (types.has(vi.name) && g.initializers.has(vi.name)) continue;
    if (vi.type?.kind === 'tensor') {
      const o = overrides[vi.name];
      types.set(vi.name, { ...vi.type, shape: o ? [...o] : vi.type.shape ? [...vi.type.shape] : null });
    }
  }
  const declared = (name: string): TensorTypeInfo | undefined => {
    const vi = g.valueInfo.get(name) ?? g.outputs.find((o) => o.name === name);
    return vi?.type?.kind === 'tensor' ? vi.type : undefined;
  };
  for (const node of g.topoOrder()) {
    const handler = node.domain === '' || node.domain === 'ai.onnx' ? HANDLERS[node.opType] : DOMAIN_HANDLERS[`${node.domain}:${node.opType}`];
    let out: Out = { types: [] };
    if (handler) {
      const c: Ctx = {
        node,
        opset,
        type: (i) => (node.inputs[i] ? types.get(node.inputs[i]) : undefined),
        shape: (i) => (node.inputs[i] ? types.get(node.inputs[i])?.shape ?? null : null),
        value: (i) => (node.inputs[i] ? known.get(node.inputs[i]) : undefined),
        floats: (i) => (node.inputs[i] ? floats.get(node.inputs[i]) : undefined),
        hasInput: (i) => !!node.inputs[i],
      };
      try {
        out = handler(c);
      } catch {
        out = { types: [] }; // inconsistent input shapes: leave outputs unknown
      }
    } else if (!node.outputs.every((o) => !o || declared(o)?.shape)) {
      // No rule here, and the format did not declare the shapes either (TF.js, TFLite do).
      unsupported.add(node.domain ? `${node.domain}:${node.opType}` : node.opType);
    }
    node.outputs.forEach((name, i) => {
      if (!name) return;
      const inferred = out.types[i];
      const decl = declared(name);
      const t = merge(inferred, decl);
      if (t) types.set(name, t);
      const v = out.values?.[i];
      if (v && v.length <= KNOWN_LIMIT) known.set(name, v);
    });
    // Subgraphs see the outer scope's values.
    const cv = node.opType === 'Constant' ? node.attr('value') : undefined;
    if (cv?.type === AttrType.TENSOR) {
      const f = smallFloats(cv.value);
      if (f) floats.set(node.outputs[0], f);
    }
    for (const sg of node.subgraphs()) inferGraph(sg, opset, types, new Map(known), floats, unsupported, {});
  }
}

/** Prefers inferred facts; fills unknown dims from declared value_info. */
function merge(a: TensorTypeInfo | undefined, b: TensorTypeInfo | undefined): TensorTypeInfo | undefined {
  if (!a) return b && { ...b, shape: b.shape ? [...b.shape] : null };
  if (!b) return a;
  const dtype = a.dtype !== DataType.UNDEFINED ? a.dtype : b.dtype;
  if (!a.shape) return { kind: 'tensor', dtype, shape: b.shape ? [...b.shape] : null };
  if (!b.shape || b.shape.length !== a.shape.length) return { kind: 'tensor', dtype, shape: a.shape };
  return { kind: 'tensor', dtype, shape: a.shape.map((d, i) => (d === null ? b.shape![i] : d)) };
}

// ---- helpers ---------------------------------------------------------------------

const T = (dtype: DataType | undefined, shape: Shape | null): TensorTypeInfo => ({
  kind: 'tensor',
  dtype: dtype ?? DataType.UNDEFINED,
  shape,
});

const num = (d: Dim): d is number => typeof d === 'number';

function normAxis(a: number, rank: number): number {
  const r = a < 0 ? a + rank : a;
  if (r < 0 || r >= rank) throw new RangeError(`axis ${a} out of range for rank ${rank}`);
  return r;
}

export function broadcastShapes(shapes: Array<Shape | null>): Shape | null {
  if (shapes.some((s) => s === null)) return null;
  const ss = shapes as Shape[];
  const rank = maxOf(ss.map((s) => s.length));
  const out: Shape = [];
  for (let i = 0; i < rank; i++) {
    let d: Dim = 1;
    for (const s of ss) {
      const x = s[s.length - rank + i] ?? 1;
      if (x === 1) continue;
      if (d === 1) d = x;
      else if (d === x) continue;
      else if (num(d) && num(x)) throw new RangeError(`cannot broadcast ${d} with ${x}`);
      else if (num(x) && !num(d)) d = x; // a symbol broadcast against a size takes the size
      else if (!num(x) && num(d)) continue;
      else d = null;
    }
    out.push(d);
  }
  return out;
}

/**
 * Dim arithmetic. Both numeric: computed. A symbol combined with the identity of the
 * operation (+0, −0, ×1, ÷1) stays that symbol (a Pad with zero pads, a Mul by 1), so a
 * symbolic batch survives shape subgraphs; any other symbolic result is unknown.
 */
function arith(a: Dim, b: Dim, f: (x: number, y: number) => number): Dim {
  if (num(a) && num(b)) return f(a, b);
  if (typeof a === 'string' && num(b)) {
    const r0 = f(0, b) === 0 && f(1, b) === 1; // b is the identity for f (x+0, x-0, x*1, x/1)
    const r1 = f(2, b) === 2;
    if (r0 && r1) return a;
  }
  if (typeof b === 'string' && num(a)) {
    if (f(a, 0) === 0 && f(a, 1) === 1 && f(a, 2) === 2) return b; // 0+x, 1*x
  }
  return null;
}

/** Product of dims; a single symbol times ones stays that symbol, other symbolic products are unknown. */
function product(dims: Dim[]): Dim {
  let p = 1;
  let sym: string | undefined;
  for (const d of dims) {
    if (d === null) return null;
    if (typeof d === 'string') {
      if (sym !== undefined) return null;
      sym = d;
    } else p *= d;
  }
  if (sym === undefined) return p;
  return p === 1 ? sym : null;
}

/** Output size of a sliding window (conv/pool) along one axis. */
function windowOut(
  inp: Dim,
  k: number,
  stride: number,
  dil: number,
  padBegin: number,
  padEnd: number,
  autoPad: string,
  ceil: boolean,
): Dim {
  if (!num(inp)) return null;
  const eff = dil * (k - 1) + 1;
  if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') return Math.ceil(inp / stride);
  if (autoPad === 'VALID') return Math.floor((inp - eff) / stride) + 1;
  const v = (inp + padBegin + padEnd - eff) / stride;
  return (ceil ? Math.ceil(v) : Math.floor(v)) + 1;
}

function spatial(c: Ctx, x: Shape, kernel: number[], ceil: boolean): Shape {
  const n = kernel.length;
  const strides = c.node.ints('strides') ?? new Array(n).fill(1);
  const dil = c.node.ints('dilations') ?? new Array(n).fill(1);
  const pads = c.node.ints('pads') ?? new Array(2 * n).fill(0);
  const autoPad = c.node.str('auto_pad', 'NOTSET');
  return kernel.map((k, i) => windowOut(x[2 + i], k, strides[i], dil[i], pads[i], pads[i + n], autoPad, ceil));
}

const same: Handler = (c) => ({ types: [c.type(0) && T(c.type(0)!.dtype, c.shape(0))] });
const bcast = (dtype?: DataType): Handler => (c) => {
  const shapes = c.node.inputs.map((_, i) => c.shape(i));
  const t = dtype ?? c.type(c.node.opType === 'Where' ? 1 : 0)?.dtype;
  const shape = broadcastShapes(shapes);
  let values: Out['values'];
  const a = c.value(0);
  const b = c.value(1);
  const ops: Record<string, (x: number, y: number) => number> = {
    Add: (x, y) => x + y,
    Sub: (x, y) => x - y,
    Mul: (x, y) => x * y,
    Div: (x, y) => Math.trunc(x / y),
  };
  const f = ops[c.node.opType];
  if (f && a && b && (a.length === b.length || a.length === 1 || b.length === 1)) {
    const n = Math.max(a.length, b.length);
    values = [Array.from({ length: n }, (_, i) => arith(a[a.length === 1 ? 0 : i], b[b.length === 1 ? 0 : i], f))];
  }
  return { types: [T(t, shape)], values };
};

function convKernel(c: Ctx, wIndex: number, rank: number): number[] | null {
  const ks = c.node.ints('kernel_shape');
  if (ks) return ks;
  const w = c.shape(wIndex);
  if (!w || w.slice(2).some((d) => !num(d))) return null;
  return (w.slice(2) as number[]).slice(0, rank - 2);
}

const conv = (xi: number, wi: number, outDtype?: DataType): Handler => (c) => {
  const x = c.shape(xi);
  const w = c.shape(wi);
  const dt = outDtype ?? c.type(xi)?.dtype;
  if (!x) return { types: [T(dt, null)] };
  const k = convKernel(c, wi, x.length);
  if (!k) return { types: [T(dt, [x[0], w ? w[0] : null, ...x.slice(2).map(() => null)])] };
  return { types: [T(dt, [x[0], w ? w[0] : null, ...spatial(c, x, k, false)])] };
};

const HANDLERS: Record<string, Handler> = {
  Conv: conv(0, 1),
  ConvInteger: conv(0, 1, DataType.INT32),
  QLinearConv: (c) => {
    const base = conv(0, 3)(c);
    return { types: [T(c.type(7)?.dtype ?? DataType.UINT8, base.types[0]?.shape ?? null)] };
  },
  ConvTranspose: (c) => {
    const x = c.shape(0);
    const w = c.shape(1);
    const dt = c.type(0)?.dtype;
    if (!x) return { types: [T(dt, null)] };
    const group = c.node.int('group', 1);
    const cout = w && num(w[1]) ? w[1] * group : null;
    const k = convKernel(c, 1, x.length);
    const explicit = c.node.ints('output_shape');
    if (explicit) return { types: [T(dt, [x[0], cout, ...explicit])] };
    if (!k) return { types: [T(dt, [x[0], cout, ...x.slice(2).map(() => null)])] };
    const n = k.length;
    const strides = c.node.ints('strides') ?? new Array(n).fill(1);
    const dil = c.node.ints('dilations') ?? new Array(n).fill(1);
    const pads = c.node.ints('pads') ?? new Array(2 * n).fill(0);
    const outPad = c.node.ints('output_padding') ?? new Array(n).fill(0);
    const autoPad = c.node.str('auto_pad', 'NOTSET');
    const sp = k.map((kk, i) => {
      const d = x[2 + i];
      if (!num(d)) return null;
      if (autoPad === 'SAME_UPPER' || autoPad === 'SAME_LOWER') return d * strides[i];
      return strides[i] * (d - 1) + outPad[i] + ((kk - 1) * dil[i] + 1) - pads[i] - pads[i + n];
    });
    return { types: [T(dt, [x[0], cout, ...sp])] };
  },
  MatMul: (c) => matmul(c, c.type(0)?.dtype),
  MatMulInteger: (c) => matmul(c, DataType.INT32),
  Gemm: (c) => {
    const a = c.shape(0);
    const b = c.shape(1);
    const dt = c.type(0)?.dtype;
    if (!a || !b || a.length !== 2 || b.length !== 2) return { types: [T(dt, a && b ? [null, null] : null)] };
    const m = c.node.int('transA', 0) ? a[1] : a[0];
    const n = c.node.int('transB', 0) ? b[0] : b[1];
    return { types: [T(dt, [m, n])] };
  },
  MaxPool: (c) => pool(c, true),
  AveragePool: (c) => pool(c, false),
  LpPool: (c) => pool(c, false),
  GlobalAveragePool: globalPool,
  GlobalMaxPool: globalPool,
  GlobalLpPool: globalPool,
  Flatten: (c) => {
    const x = c.shape(0);
    const dt = c.type(0)?.dtype;
    if (!x) return { types: [T(dt, [null, null])] };
    const axis = normAxisInclusive(c.node.int('axis', 1), x.length);
    return { types: [T(dt, [product(x.slice(0, axis)), product(x.slice(axis))])] };
  },
  Reshape: (c) => {
    const x = c.shape(0);
    const dt = c.type(0)?.dtype;
    const target = c.value(1) ?? (c.node.ints('shape') as Dim[] | undefined);
    if (!target) {
      const s = c.shape(1);
      return { types: [T(dt, s && num(s[0]) ? new Array(s[0]).fill(null) : null)] };
    }
    const allowZero = c.node.int('allowzero', 0) === 1;
    const out: Dim[] = target.map((d, i) => (d === 0 && !allowZero ? (x ? x[i] ?? null : null) : d));
    const neg = out.findIndex((d) => d === -1);
    if (neg >= 0) out[neg] = x ? inferMinusOne(x, out, neg) : null;
    return { types: [T(dt, out)], values: [c.value(0)] };
  },
  Concat: (c) => {
    const shapes = c.node.inputs.map((_, i) => c.shape(i));
    const dt = c.type(0)?.dtype;
    const vals = c.node.inputs.map((_, i) => c.value(i));
    const values = vals.every((v) => v) ? [vals.flat() as Dim[]] : undefined;
    if (shapes.some((s) => !s)) return { types: [T(dt, null)], values };
    const first = shapes[0]!;
    const axis = normAxis(c.node.int('axis', 0), first.length);
    const out = first.map((d, i) => {
      if (i === axis) return shapes.reduce<Dim>((a, s) => arith(a, s![i], (x, y) => x + y), 0);
      return shapes.map((s) => s![i]).find(num) ?? d;
    });
    return { types: [T(dt, out)], values };
  },
  Transpose: (c) => {
    const x = c.shape(0);
    const dt = c.type(0)?.dtype;
    if (!x) return { types: [T(dt, null)] };
    const perm = c.node.ints('perm') ?? x.map((_, i) => x.length - 1 - i);
    return { types: [T(dt, perm.map((p) => x[p]))] };
  },
  Squeeze: (c) => {
    const x = c.shape(0);
    const dt = c.type(0)?.dtype;
    const axes = c.node.ints('axes') ?? (c.hasInput(1) ? (c.value(1) as number[] | undefined) : []);
    const v = c.value(0);
    if (!x || axes === undefined) return { types: [T(dt, null)], values: [v] };
    if (axes.length === 0) {
      if (x.some((d) => !num(d))) return { types: [T(dt, null)], values: [v] };
      return { types: [T(dt, x.filter((d) => d !== 1))], values: [v] };
    }
    const ax = new Set(axes.map((a) => normAxis(Number(a), x.length)));
    return { types: [T(dt, x.filter((_, i) => !ax.has(i)))], values: [v] };
  },
  Unsqueeze: (c) => {
    const x = c.shape(0);
    const dt = c.type(0)?.dtype;
    const axes = c.node.ints('axes') ?? (c.value(1) as number[] | undefined);
    const v = c.value(0);
    if (!x || !axes) return { types: [T(dt, null)], values: [v] };
    const rank = x.length + axes.length;
    const ax = new Set(axes.map((a) => normAxis(Number(a), rank)));
    const out: Shape = [];
    let j = 0;
    for (let i = 0; i < rank; i++) out.push(ax.has(i) ? 1 : x[j++]);
    return { types: [T(dt, out)], values: [v] };
  },
  Slice: (c) => {
    const x = c.shape(0);
    const dt = c.type(0)?.dtype;
    if (!x) return { types: [T(dt, null)] };
    const old = c.opset < 10;
    const starts = old ? c.node.ints('starts') : (c.value(1) as number[] | undefined);
    const ends = old ? c.node.ints('ends') : (c.value(2) as number[] | undefined);
    const axes = old ? c.node.ints('axes') : c.hasInput(3) ? (c.value(3) as number[] | undefined) : undefined;
    const steps = old ? undefined : c.hasInput(4) ? (c.value(4) as number[] | undefined) : undefined;
    if (!starts || !ends || (c.hasInput(3) && !axes && !old) || (c.hasInput(4) && !steps)) {
      return { types: [T(dt, x.map(() => null))] };
    }
    const out = [...x];
    const v = c.value(0);
    let outV: Dim[] | undefined;
    starts.forEach((s, i) => {
      const a = normAxis(axes ? Number(axes[i]) : i, x.length);
      const st = steps ? Number(steps[i]) : 1;
      const d = x[a];
      if (!num(d) || !num(s) || !num(ends[i])) {
        out[a] = null;
        return;
      }
      const [lo, hi] = sliceRange(Number(s), Number(ends[i]), st, d);
      out[a] = Math.max(0, Math.ceil((hi - lo) / st));
      if (v && x.length === 1 && st === 1) outV = v.slice(lo, hi);
    });
    return { types: [T(dt, out)], values: [outV] };
  },
  Resize: (c) => resize(c),
  Upsample: (c) => resize(c),
  Shape: (c) => {
    const x = c.shape(0);
    if (!x) return { types: [T(DataType.INT64, [null])] };
    const rank = x.length;
    const start = normSliceIndex(c.node.int('start', 0), rank);
    const end = normSliceIndex(c.node.int('end', rank), rank);
    const dims = x.slice(start, end);
    return { types: [T(DataType.INT64, [dims.length])], values: [dims] };
  },
  Size: (c) => ({ types: [T(DataType.INT64, [])], values: [[c.shape(0) ? product(c.shape(0)!) : null]] }),
  Gather: (c) => {
    const x = c.shape(0);
    const idx = c.shape(1);
    const dt = c.type(0)?.dtype;
    if (!x || !idx) return { types: [T(dt, null)] };
    const axis = normAxis(c.node.int('axis', 0), x.length);
    const out = [...x.slice(0, axis), ...idx, ...x.slice(axis + 1)];
    const v = c.value(0);
    const iv = c.value(1);
    let values: Array<Dim[] | undefined> | undefined;
    if (v && iv && x.length === 1) {
      values = [iv.map((i) => (num(i) ? v[i < 0 ? i + v.length : i] ?? null : null))];
    }
    return { types: [T(dt, out)], values };
  },
  Constant: (c) => {
    const a = c.node.attr('value');
    if (a?.type === AttrType.TENSOR) {
      const t = a.value;
      const small = (t.dtype === DataType.INT64 || t.dtype === DataType.INT32) && t.dims.length <= 1 && t.numel <= KNOWN_LIMIT;
      return { types: [T(t.dtype, [...t.dims])], values: [small ? t.toNumbers() : undefined] };
    }
    const scalarInts = c.node.attr('value_int');
    if (scalarInts?.type === AttrType.INT) return { types: [T(DataType.INT64, [])], values: [[Number(scalarInts.value)]] };
    const ints = c.node.ints('value_ints');
    if (ints) return { types: [T(DataType.INT64, [ints.length])], values: [ints] };
    if (c.node.attr('value_float')) return { types: [T(DataType.FLOAT, [])] };
    const floats = c.node.attr('value_floats');
    if (floats?.type === AttrType.FLOATS) return { types: [T(DataType.FLOAT, [floats.value.length])] };
    return { types: [] };
  },
  ConstantOfShape: (c) => {
    const v = c.value(0);
    const a = c.node.attr('value');
    const dt = a?.type === AttrType.TENSOR ? a.value.dtype : DataType.FLOAT;
    return { types: [T(dt, v ?? (c.shape(0) && num(c.shape(0)![0]) ? new Array(c.shape(0)![0]).fill(null) : null))] };
  },
  Cast: (c) => ({ types: [T(c.node.int('to', DataType.FLOAT), c.shape(0))], values: [c.value(0)] }),
  CastLike: (c) => ({ types: [T(c.type(1)?.dtype, c.shape(0))] }),
  Identity: (c) => ({ types: [c.type(0) && T(c.type(0)!.dtype, c.shape(0))], values: [c.value(0)] }),
  Dropout: (c) => ({ types: [same(c).types[0], T(DataType.BOOL, c.shape(0))] }),
  BatchNormalization: (c) => {
    const ch = c.shape(1);
    return { types: [same(c).types[0], T(c.type(1)?.dtype, ch), T(c.type(1)?.dtype, ch)] };
  },
  LayerNormalization: (c) => {
    const x = c.shape(0);
    if (!x) return { types: [T(c.type(0)?.dtype, null)] };
    const axis = normAxis(c.node.int('axis', -1), x.length);
    const stat = x.map((d, i) => (i < axis ? d : 1));
    return { types: [T(c.type(0)?.dtype, x), T(DataType.FLOAT, stat), T(DataType.FLOAT, stat)] };
  },
  Split: (c) => {
    const x = c.shape(0);
    const dt = c.type(0)?.dtype;
    const n = c.node.outputs.length;
    if (!x) return { types: new Array(n).fill(T(dt, null)) };
    const axis = normAxis(c.node.int('axis', 0), x.length);
    const split = c.node.ints('split') ?? (c.value(1) as number[] | undefined);
    const d = x[axis];
    return {
      types: Array.from({ length: n }, (_, i) => {
        const part = split ? split[i] : num(d) ? Math.ceil(d / n) : null;
        const s = [...x];
        s[axis] = split ? part : num(d) && i === n - 1 ? d - (n - 1) * Math.ceil(d / n) : part;
        return T(dt, s);
      }),
    };
  },
  Expand: (c) => {
    const v = c.value(1);
    const x = c.shape(0);
    const dt = c.type(0)?.dtype;
    if (!v || !x) return { types: [T(dt, null)] };
    return { types: [T(dt, broadcastShapes([x, v]))] };
  },
  Tile: (c) => {
    const x = c.shape(0);
    const r = c.value(1);
    const dt = c.type(0)?.dtype;
    if (!x || !r) return { types: [T(dt, x ? x.map(() => null) : null)] };
    return { types: [T(dt, x.map((d, i) => arith(d, r[i], (a, b) => a * b)))] };
  },
  Pad: (c) => {
    const x = c.shape(0);
    const dt = c.type(0)?.dtype;
    const pads = c.node.ints('pads') ?? (c.value(1) as number[] | undefined);
    if (!x || !pads || c.hasInput(3)) return { types: [T(dt, x ? x.map(() => null) : null)] };
    const n = x.length;
    return { types: [T(dt, x.map((d, i) => arith(d, pads[i] + pads[i + n], (a, b) => a + b)))] };
  },
  LSTM: (c) => rnn(c, 3),
  GRU: (c) => rnn(c, 2),
  RNN: (c) => rnn(c, 2),
  TopK: (c) => {
    const x = c.shape(0);
    const k = c.value(1)?.[0] ?? null;
    if (!x) return { types: [T(c.type(0)?.dtype, null), T(DataType.INT64, null)] };
    const axis = normAxis(c.node.int('axis', -1), x.length);
    const s = [...x];
    s[axis] = k;
    return { types: [T(c.type(0)?.dtype, s), T(DataType.INT64, s)] };
  },
  ArgMax: (c) => reduce(c, DataType.INT64),
  ArgMin: (c) => reduce(c, DataType.INT64),
  DynamicQuantizeLinear: (c) => ({ types: [T(DataType.UINT8, c.shape(0)), T(DataType.FLOAT, []), T(DataType.UINT8, [])] }),
  QuantizeLinear: (c) => ({ types: [T(c.type(2)?.dtype ?? c.node.int('output_dtype', 0) ?? DataType.UINT8, c.shape(0))] }),
  DequantizeLinear: (c) => ({ types: [T(c.type(1)?.dtype ?? DataType.FLOAT, c.shape(0))] }),
  QLinearMatMul: (c) => ({ types: [T(c.type(7)?.dtype, matmulShape(c.shape(0), c.shape(3)))] }),
};

for (const op of ['ReduceMean', 'ReduceSum', 'ReduceMax', 'ReduceMin', 'ReduceProd', 'ReduceL1', 'ReduceL2', 'ReduceLogSum', 'ReduceLogSumExp', 'ReduceSumSquare']) {
  HANDLERS[op] = (c) => {
    const r = reduce(c, c.type(0)?.dtype);
    if (op === 'ReduceProd' && c.value(0) && !c.node.ints('axes') && !c.hasInput(1)) {
      return { ...r, values: [[product(c.value(0)!)]] };
    }
    return r;
  };
}

for (const op of [
  'Relu', 'Sigmoid', 'Tanh', 'LeakyRelu', 'Elu', 'Selu', 'Celu', 'HardSigmoid', 'HardSwish', 'Gelu', 'Erf', 'Exp', 'Log',
  'Sqrt', 'Neg', 'Abs', 'Reciprocal', 'Softplus', 'Softsign', 'Clip', 'Floor', 'Ceil', 'Round', 'Sign', 'Sin', 'Cos',
  'Mish', 'Softmax', 'LogSoftmax', 'Hardmax', 'LRN', 'InstanceNormalization', 'ThresholdedRelu', 'Not',
  'MeanVarianceNormalization', 'GroupNormalization', 'CumSum', 'Trilu', 'Shrink',
]) {
  HANDLERS[op] = same;
}
for (const op of ['Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min', 'Sum', 'Mean', 'Mod', 'PRelu', 'BitShift', 'Where']) {
  HANDLERS[op] = bcast();
}
for (const op of ['And', 'Or', 'Xor', 'Equal', 'Less', 'Greater', 'LessOrEqual', 'GreaterOrEqual']) HANDLERS[op] = bcast(DataType.BOOL);
HANDLERS.IsNaN = (c) => ({ types: [T(DataType.BOOL, c.shape(0))] });
HANDLERS.IsInf = HANDLERS.IsNaN;

const DOMAIN_HANDLERS: Record<string, Handler> = {
  'com.microsoft:MatMulNBits': (c) => {
    const a = c.shape(0);
    const n = c.node.int('N', 0);
    return { types: [T(c.type(0)?.dtype, a ? [...a.slice(0, -1), n] : null)] };
  },
  'com.microsoft:FusedConv': conv(0, 1),
  'com.microsoft:DynamicQuantizeMatMul': (c) => matmul(c, c.type(0)?.dtype),
  'com.microsoft:MatMulIntegerToFloat': (c) => ({ types: [T(c.type(2)?.dtype ?? DataType.FLOAT, matmulShape(c.shape(0), c.shape(1)))] }),
  'com.microsoft:Gelu': same,
  'com.microsoft:QuickGelu': same,
};

function normAxisInclusive(a: number, rank: number): number {
  const r = a < 0 ? a + rank : a;
  if (r < 0 || r > rank) throw new RangeError(`axis ${a} out of range`);
  return r;
}

function normSliceIndex(i: number, n: number): number {
  const r = i < 0 ? i + n : i;
  return Math.min(Math.max(r, 0), n);
}

function sliceRange(start: number, end: number, step: number, d: number): [number, number] {
  const clamp = (v: number, lo: number, hi: number) => Math.min(Math.max(v, lo), hi);
  let s = start < 0 ? start + d : start;
  let e = end < 0 ? end + d : end;
  if (step > 0) {
    s = clamp(s, 0, d);
    e = clamp(e, 0, d);
    return [s, e];
  }
  s = clamp(s, -1, d - 1);
  e = clamp(e, -1, d - 1);
  return [e + 1, s + 1]; // number of elements is the same as for the reversed range
}

function inferMinusOne(x: Shape, out: Dim[], at: number): Dim {
  // Cancel symbols that appear on both sides, then divide the numeric remainders.
  const rest = [...x];
  let denom = 1;
  for (let i = 0; i < out.length; i++) {
    if (i === at) continue;
    const d = out[i];
    if (num(d)) denom *= d;
    else {
      const j = rest.indexOf(d);
      if (d === null || j < 0) return null;
      rest.splice(j, 1);
    }
  }
  const p = product(rest);
  if (!num(p) || denom === 0 || p % denom !== 0) return null;
  return p / denom;
}

export function matmulShape(a: Shape | null, b: Shape | null): Shape | null {
  if (!a || !b) return null;
  const a2 = a.length === 1 ? [1, a[0]] : a;
  const b2 = b.length === 1 ? [b[0], 1] : b;
  const batch = broadcastShapes([a2.slice(0, -2), b2.slice(0, -2)]);
  if (!batch) return null;
  const out: Shape = [...batch];
  if (a.length !== 1) out.push(a2[a2.length - 2]);
  if (b.length !== 1) out.push(b2[b2.length - 1]);
  return out;
}

function matmul(c: Ctx, dtype: DataType | undefined): Out {
  return { types: [T(dtype, matmulShape(c.shape(0), c.shape(1)))] };
}

function pool(c: Ctx, isMax: boolean): Out {
  const x = c.shape(0);
  const dt = c.type(0)?.dtype;
  const k = c.node.ints('kernel_shape');
  if (!x || !k) return { types: [T(dt, null)] };
  const shape = [x[0], x[1], ...spatial(c, x, k, c.node.int('ceil_mode', 0) === 1)];
  return { types: isMax ? [T(dt, shape), T(DataType.INT64, shape)] : [T(dt, shape)] };
}

function globalPool(c: Ctx): Out {
  const x = c.shape(0);
  return { types: [T(c.type(0)?.dtype, x ? [x[0], x[1], ...x.slice(2).map(() => 1)] : null)] };
}

function reduce(c: Ctx, dtype: DataType | undefined): Out {
  const x = c.shape(0);
  if (!x) return { types: [T(dtype, null)] };
  const keep = c.node.int('keepdims', 1) === 1;
  const isArg = c.node.opType.startsWith('Arg');
  let axes: number[] | undefined = isArg ? [c.node.int('axis', 0)] : c.node.ints('axes');
  if (!axes && c.hasInput(1)) {
    const v = c.value(1);
    if (!v) return { types: [T(dtype, keep ? x.map(() => null) : null)] };
    axes = v as number[];
  }
  if (!axes || axes.length === 0) {
    if (c.node.int('noop_with_empty_axes', 0)) return { types: [T(dtype, x)] };
    axes = x.map((_, i) => i);
  }
  const ax = new Set(axes.map((a) => normAxis(a, x.length)));
  const out: Shape = [];
  x.forEach((d, i) => {
    if (!ax.has(i)) out.push(d);
    else if (keep) out.push(1);
  });
  return { types: [T(dtype, out)] };
}

function resize(c: Ctx): Out {
  const x = c.shape(0);
  const dt = c.type(0)?.dtype;
  if (!x) return { types: [T(dt, null)] };
  const isUpsample = c.node.opType === 'Upsample';
  // Resize-10 and Upsample: (X, scales); Resize-11+: (X, roi, scales, sizes).
  const scalesIdx = isUpsample || c.opset < 11 ? 1 : 2;
  const sizes = !isUpsample && c.opset >= 11 && c.hasInput(3) ? c.value(3) : undefined;
  if (sizes && sizes.length === x.length) return { types: [T(dt, sizes)] };
  const scalesAttr = c.node.attr('scales');
  let scales: number[] | undefined;
  if (scalesAttr?.type === AttrType.FLOATS) scales = scalesAttr.value;
  else scales = c.floats(scalesIdx);
  if (!scales || scales.length !== x.length) return { types: [T(dt, x.map(() => null))] };
  return { types: [T(dt, x.map((d, i) => (num(d) ? Math.floor(d * scales![i]) : scales![i] === 1 ? d : null)))] };
}

function rnn(c: Ctx, gates: number): Out {
  void gates;
  const x = c.shape(0);
  const w = c.shape(1);
  const dt = c.type(0)?.dtype;
  const hidden = c.node.int('hidden_size', 0) || null;
  const dirs = c.node.str('direction', 'forward') === 'bidirectional' ? 2 : 1;
  const layout = c.node.int('layout', 0);
  if (!x) return { types: [T(dt, null), T(dt, null), T(dt, null)] };
  const [seq, batch] = layout === 0 ? [x[0], x[1]] : [x[1], x[0]];
  const h = hidden ?? (w && num(w[1]) ? null : null);
  const y = layout === 0 ? [seq, dirs, batch, h] : [batch, seq, dirs, h];
  const yh = layout === 0 ? [dirs, batch, h] : [batch, dirs, h];
  return { types: [T(dt, y), T(dt, yh), T(dt, yh)] };
}

// ---- default sizes for symbolic input dims -----------------------------------------

/** Side of a square image assumed for symbolic image height/width (ImageNet's 224). */
export const DEFAULT_IMAGE_SIZE = 224;
/** Samples assumed for a symbolic 1-D audio length (one second at 16 kHz). */
export const DEFAULT_AUDIO_SAMPLES = 16000;
/** Tokens assumed for a symbolic sequence length of integer (token id) inputs. */
export const DEFAULT_SEQUENCE_LENGTH = 128;

export interface DefaultShape {
  /** The input shape with defaults filled in (the batch kept symbolic when asked). */
  shape: Dim[];
  /** Each dim given a default, e.g. `x[2]=224 (image height)`. */
  assumed: string[];
  /** Symbolic dims no default covers (their indices). */
  open: number[];
}

/**
 * Sizes for an input's symbolic dims, so random data and MAC figures use a nominal input
 * instead of refusing (or counting a 1-pixel image):
 * - metadata `shape:<input>` = `1x3x48x320` (or `<input>.shape`) when the model declares it;
 * - image-like inputs (rank 4 with 1 or 3 channels, NCHW or NHWC): 224 for height and width;
 * - 1-D audio (float [batch, samples] or [batch, 1, samples]): 16000 samples;
 * - token ids (integer [batch, sequence]): 128.
 * The first dim is the batch: kept symbolic with `keepBatch` (per-sample figures), else 1.
 * Other symbolic dims stay open (listed in `open`).
 */
export function defaultInputShape(
  name: string,
  shape: Dim[],
  dtype: DataType,
  opts: { keepBatch?: boolean; metadata?: Array<[string, string]> } = {},
): DefaultShape {
  const out = [...shape];
  const assumed: string[] = [];
  const open: number[] = [];
  const sym = (d: Dim) => typeof d !== 'number' || d < 0;
  const declared = opts.metadata?.find(([k]) => k === `shape:${name}` || k === `${name}.shape`)?.[1];
  const meta = declared && /^\d+(x\d+)*$/.test(declared.trim()) ? declared.trim().split('x').map(Number) : undefined;
  const set = (i: number, v: number, what: string) => {
    out[i] = v;
    assumed.push(`${name}[${i}]=${v} (${what})`);
  };
  const rank = shape.length;
  const isFloat = dtype === DataType.FLOAT || dtype === DataType.FLOAT16 || dtype === DataType.DOUBLE || dtype === DataType.BFLOAT16;
  const isInt = dtype === DataType.INT64 || dtype === DataType.INT32;
  for (let i = 1; i < rank; i++) {
    if (!sym(shape[i])) continue;
    if (meta && meta.length === rank && meta[i] > 0) set(i, meta[i], 'model metadata');
    else if (rank === 4 && (shape[1] === 1 || shape[1] === 3) && (i === 2 || i === 3)) set(i, DEFAULT_IMAGE_SIZE, i === 2 ? 'image height' : 'image width');
    else if (rank === 4 && (shape[3] === 1 || shape[3] === 3) && (i === 1 || i === 2)) set(i, DEFAULT_IMAGE_SIZE, i === 1 ? 'image height' : 'image width');
    else if (isFloat && ((rank === 2 && i === 1) || (rank === 3 && shape[1] === 1 && i === 2))) set(i, DEFAULT_AUDIO_SAMPLES, 'audio samples');
    else if (isInt && rank === 2 && i === 1) set(i, DEFAULT_SEQUENCE_LENGTH, 'sequence length');
    else open.push(i);
  }
  if (rank > 0 && sym(shape[0])) {
    if (opts.keepBatch) out[0] = typeof shape[0] === 'string' ? shape[0] : 'batch';
    else out[0] = 1;
  }
  return { shape: out, assumed, open };
}
