import { DataType } from '../../ir/dtype';
import type { Dim, Graph, Node } from '../../ir/graph';
import { broadcastShapes } from '../../ir/shape-inference';

/**
 * Output shapes of TensorFlow ops in a TF.js graph model, declared as value info so that the
 * analysis can count MACs. Covers what tfjs-converter emits for CNNs and MLPs: convolutions
 * (plain, depthwise and the fused forms), MatMul, pooling, reductions, reshapes, concat, pad
 * and the element-wise ops. Constants (reshape targets, axes, paddings) come from the weights
 * manifest, where the converter stores them. Anything else leaves its output unknown, and
 * the unknown spreads: a MAC count is never guessed.
 */

type Shape = Dim[] | null;

const SAME_SHAPE = new Set([
  'Identity', 'Relu', 'Relu6', 'Elu', 'Selu', 'Sigmoid', 'Tanh', 'Softmax', 'LogSoftmax', 'LeakyRelu', 'Prelu', 'Square',
  'Sqrt', 'Rsqrt', 'Neg', 'Abs', 'Exp', 'Log', 'Cast', 'ClipByValue', 'Softplus', 'Swish', 'Erf', 'Reciprocal', 'StopGradient',
  'FusedBatchNorm', 'FusedBatchNormV3', 'LRN', 'Round', 'Floor', 'Ceil', 'Sign', 'BiasAdd', 'IdentityN',
]);
const BROADCAST = new Set(['Add', 'AddV2', 'Sub', 'Mul', 'RealDiv', 'Div', 'Maximum', 'Minimum', 'SquaredDifference', 'Pow', 'FloorDiv', 'Greater', 'Less', 'Equal', 'Select', 'SelectV2']);
const REDUCE = new Set(['Mean', 'Sum', 'Max', 'Min', 'Prod', 'All', 'Any']);

/** Output size along one spatial axis for TensorFlow's SAME/VALID padding. */
function spatial(size: Dim, k: number, stride: number, dilation: number, padding: string, pads: [number, number] = [0, 0]): Dim {
  if (typeof size !== 'number') return null;
  const ek = (k - 1) * dilation + 1;
  if (padding === 'SAME') return Math.ceil(size / stride);
  if (padding === 'EXPLICIT') return Math.floor((size + pads[0] + pads[1] - ek) / stride) + 1;
  return Math.floor((size - ek) / stride) + 1;
}

function windowed(n: Node, x: Shape, kh: number, kw: number, channels: Dim): Shape {
  if (!x || x.length !== 4) return null;
  const nchw = n.str('data_format', 'NHWC') === 'NCHW';
  const [hAxis, wAxis] = nchw ? [2, 3] : [1, 2];
  const strides = n.ints('strides') ?? [1, 1, 1, 1];
  const dil = n.ints('dilations') ?? [1, 1, 1, 1];
  const padding = n.str('padding', 'VALID');
  const ep = n.ints('explicit_paddings') ?? [];
  const pad = (axis: number): [number, number] => [ep[2 * axis] ?? 0, ep[2 * axis + 1] ?? 0];
  const out = [...x];
  out[hAxis] = spatial(x[hAxis], kh, strides[hAxis], dil[hAxis] ?? 1, padding, pad(hAxis));
  out[wAxis] = spatial(x[wAxis], kw, strides[wAxis], dil[wAxis] ?? 1, padding, pad(wAxis));
  out[nchw ? 1 : 3] = channels;
  return out;
}

export function tfOpOutputShape(n: Node, inputs: Shape[], constant: (i: number) => number[] | undefined, dims: (i: number) => number[] | undefined): Shape {
  const x = inputs[0];
  const op = n.opType;
  if (SAME_SHAPE.has(op)) return x;
  if (BROADCAST.has(op)) {
    try {
      return broadcastShapes(inputs);
    } catch {
      return null;
    }
  }
  switch (op) {
    case 'Conv2D':
    case '_FusedConv2D': {
      const f = dims(1);
      return f && f.length === 4 ? windowed(n, x, f[0], f[1], f[3]) : null;
    }
    case 'DepthwiseConv2dNative':
    case 'FusedDepthwiseConv2dNative': {
      const f = dims(1);
      return f && f.length === 4 ? windowed(n, x, f[0], f[1], f[2] * f[3]) : null;
    }
    case 'Conv2DBackpropInput': {
      // Transposed convolution: the output shape is its first input (a constant, or unknown).
      const s = constant(0);
      return s && s.length === 4 ? s.map((d, i) => (d >= 0 ? d : i === 0 ? 'batch' : null)) : null;
    }
    case 'MaxPool':
    case 'AvgPool': {
      const k = n.ints('ksize');
      if (!k || k.length !== 4 || !x || x.length !== 4) return null;
      const nchw = n.str('data_format', 'NHWC') === 'NCHW';
      return windowed(n, x, nchw ? k[2] : k[1], nchw ? k[3] : k[2], x[nchw ? 1 : 3]);
    }
    case 'MatMul':
    case '_FusedMatMul': {
      const b = inputs[1];
      if (!x || !b || x.length !== 2 || b.length !== 2) return null;
      return [n.int('transpose_a', 0) ? x[1] : x[0], n.int('transpose_b', 0) ? b[0] : b[1]];
    }
    case 'BatchMatMul':
    case 'BatchMatMulV2': {
      const b = inputs[1];
      if (!x || !b || x.length < 2 || b.length < 2) return null;
      try {
        const batch = broadcastShapes([x.slice(0, -2), b.slice(0, -2)]);
        if (!batch) return null;
        const m = n.int('adj_x', 0) ? x[x.length - 1] : x[x.length - 2];
        const k = n.int('adj_y', 0) ? b[b.length - 2] : b[b.length - 1];
        return [...batch, m, k];
      } catch {
        return null;
      }
    }
    case 'Reshape': {
      const target = constant(1);
      if (!target) return null;
      const known = x && x.every((d) => typeof d === 'number') ? (x as number[]).reduce((a, b) => a * b, 1) : null;
      const rest = target.filter((d) => d !== -1).reduce((a, b) => a * b, 1);
      // The -1 (usually the batch) is resolved when the input size is known; else it stays open.
      return target.map((d, i) => (d !== -1 ? d : known !== null && rest > 0 ? known / rest : i === 0 ? 'batch' : null));
    }
    case 'Squeeze': {
      if (!x) return null;
      const axes = (n.ints('squeeze_dims') ?? []).map((a) => (a < 0 ? a + x.length : a));
      return x.filter((d, i) => (axes.length ? !axes.includes(i) : d !== 1));
    }
    case 'ExpandDims': {
      const a = constant(1);
      if (!x || !a || a.length !== 1) return null;
      const at = a[0] < 0 ? a[0] + x.length + 1 : a[0];
      return [...x.slice(0, at), 1, ...x.slice(at)];
    }
    case 'ConcatV2': {
      const axisArr = constant(inputs.length - 1);
      const parts = inputs.slice(0, -1);
      if (!axisArr || parts.some((p) => !p) || !parts.length) return null;
      const rank = parts[0]!.length;
      const axis = axisArr[0] < 0 ? axisArr[0] + rank : axisArr[0];
      const out = [...parts[0]!];
      let total: Dim = 0;
      for (const p of parts) total = typeof total === 'number' && typeof p![axis] === 'number' ? total + (p![axis] as number) : null;
      out[axis] = total;
      return out;
    }
    case 'Pad':
    case 'PadV2':
    case 'MirrorPad': {
      const p = constant(1);
      if (!x || !p || p.length !== 2 * x.length) return null;
      return x.map((d, i) => (typeof d === 'number' ? d + p[2 * i] + p[2 * i + 1] : d));
    }
    case 'Transpose': {
      const perm = constant(1);
      return x && perm && perm.length === x.length ? perm.map((p) => x[p]) : null;
    }
    default:
      if (REDUCE.has(op)) {
        const axes = constant(1);
        if (!x || !axes) return null;
        const set = new Set(axes.map((a) => (a < 0 ? a + x.length : a)));
        return n.int('keep_dims', 0) ? x.map((d, i) => (set.has(i) ? 1 : d)) : x.filter((_, i) => !set.has(i));
      }
      return null;
  }
}

/** Declares the output shape of every op (null where not known) as value info. */
export function inferTfGraphShapes(g: Graph): void {
  const shapes = new Map<string, Shape>();
  for (const i of g.inputs) shapes.set(i.name, i.type?.kind === 'tensor' ? i.type.shape : null);
  for (const [k, t] of g.initializers) shapes.set(k, [...t.dims]);
  const small = (name: string | undefined): number[] | undefined => {
    const t = name ? g.initializers.get(name) : undefined;
    return t && (t.dtype === DataType.INT32 || t.dtype === DataType.INT64) && t.numel <= 64 ? t.toNumbers() : undefined;
  };
  for (const n of g.topoOrder()) {
    let s: Shape = null;
    try {
      s = tfOpOutputShape(n, n.inputs.map((i) => shapes.get(i) ?? null), (i) => small(n.inputs[i]), (i) => g.initializers.get(n.inputs[i])?.dims.slice());
    } catch {
      s = null;
    }
    // Constants come from the file: a negative or fractional size is not a shape.
    if (s?.some((d) => typeof d === 'number' && !(Number.isSafeInteger(d) && d >= 0))) s = null;
    shapes.set(n.outputs[0], s);
    g.valueInfo.set(n.outputs[0], { name: n.outputs[0], type: { kind: 'tensor', dtype: DataType.FLOAT, shape: s } });
  }
}
