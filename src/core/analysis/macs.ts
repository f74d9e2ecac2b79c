import type { Dim, Node, TensorTypeInfo } from '../ir/graph';
import type { Tensor } from '../ir/tensor';

/**
 * Multiply-accumulate counts per op. FLOPs = 2 × MACs for the matrix ops, plus one per
 * output element for elementwise work (activations, adds, normalisation, pooling windows).
 * Symbolic dims count as 1 (per-sample figures); unknown dims make the count unknown.
 * Quantized ops count like their float counterparts (ConvInteger, QLinearConv,
 * MatMulInteger, QLinearMatMul, MatMulNBits, com.microsoft DynamicQuantizeMatMul,
 * MatMulIntegerToFloat, QGemm); an op of a contrib or custom domain without a rule is
 * unknown (null), never 0.
 */

type TypeOf = (name: string) => TensorTypeInfo | undefined;

/** Elements of a shape with symbols bound to 1; null when a dim or the rank is unknown. */
export function boundNumel(shape: Dim[] | null | undefined): number | null {
  if (!shape) return null;
  let n = 1;
  for (const d of shape) {
    if (d === null) return null;
    if (typeof d === 'number') n *= d;
  }
  return n;
}

function shapeOf(type: TypeOf, name: string | undefined, constantOf: (n: string) => Tensor[] | undefined): Dim[] | null {
  if (!name) return null;
  const t = type(name)?.shape;
  if (t) return t;
  const c = constantOf(name);
  return c && c.length === 1 ? c[0].dims : null;
}

function prodFrom(shape: Dim[] | null, start: number): number | null {
  return shape ? boundNumel(shape.slice(start)) : null;
}

const ELEMENTWISE = new Set([
  'Relu', 'Sigmoid', 'Tanh', 'LeakyRelu', 'Elu', 'Selu', 'Celu', 'HardSigmoid', 'HardSwish', 'Gelu', 'Erf', 'Exp', 'Log',
  'Sqrt', 'Neg', 'Abs', 'Reciprocal', 'Softplus', 'Softsign', 'Clip', 'Floor', 'Ceil', 'Round', 'Sign', 'Sin', 'Cos',
  'Mish', 'PRelu', 'Add', 'Sub', 'Mul', 'Div', 'Pow', 'Max', 'Min', 'Sum', 'Mean', 'Where', 'Equal', 'Less', 'Greater',
  'Softmax', 'LogSoftmax', 'BatchNormalization', 'InstanceNormalization', 'LayerNormalization', 'GroupNormalization',
  'QuantizeLinear', 'DequantizeLinear', 'DynamicQuantizeLinear', 'Cast', 'ThresholdedRelu', 'Not', 'And', 'Or',
]);
const MS_ELEMENTWISE = new Set(['FastGelu', 'BiasGelu', 'QuickGelu', 'BiasAdd', 'SkipLayerNormalization', 'SimplifiedLayerNormalization', 'SkipSimplifiedLayerNormalization', 'BiasSoftmax']);
const FREE = new Set([
  'Identity', 'Reshape', 'Flatten', 'Squeeze', 'Unsqueeze', 'Transpose', 'Concat', 'Split', 'Slice', 'Gather', 'Shape',
  'Constant', 'ConstantOfShape', 'Dropout', 'Expand', 'Tile', 'Pad', 'Size',
]);

export function countMacs(
  node: Node,
  type: TypeOf,
  constantOf: (n: string) => Tensor[] | undefined,
): { macs: number | null; flops: number | null } {
  const out = () => boundNumel(type(node.outputs[0])?.shape);
  const sh = (i: number) => shapeOf(type, node.inputs[i], constantOf);
  const mm = (macs: number | null, extra = 0) => ({ macs, flops: macs === null ? null : 2 * macs + extra });
  if (node.domain === 'tfjs') return kerasMacs(node, type, constantOf);
  // A bare bag of tensors has no activations to count over.
  if (node.domain === 'safetensors') return { macs: null, flops: null };
  if (node.domain === 'tflite' || node.domain === 'tflite.custom') return tfliteMacs(node, type, constantOf);
  if (node.domain === 'tfjs-graph') return tfGraphMacs(node, type, constantOf);
  const op = node.domain === 'com.microsoft' ? `ms:${node.opType}` : node.opType;
  switch (op) {
    case 'Conv':
    case 'ConvInteger':
    case 'ms:FusedConv': {
      // out elements × (Cin/group × kernel): the weight's dims after the first.
      const o = out();
      const k = prodFrom(sh(1), 1);
      return mm(o === null || k === null ? null : o * k, node.inputs[2] ? o ?? 0 : 0);
    }
    case 'QLinearConv': {
      const o = out();
      const k = prodFrom(sh(3), 1);
      return mm(o === null || k === null ? null : o * k);
    }
    case 'ConvTranspose': {
      // every input element scatters into (Cout/group × kernel) outputs.
      const x = boundNumel(sh(0));
      const k = prodFrom(sh(1), 1);
      return mm(x === null || k === null ? null : x * k);
    }
    case 'ms:QGemm':
    case 'Gemm': {
      const a = sh(0);
      const o = out();
      if (!a || a.length !== 2 || o === null) return mm(null);
      const kDim = node.int('transA', 0) ? a[0] : a[1];
      const k = typeof kDim === 'number' ? kDim : kDim === null ? null : 1;
      return mm(k === null ? null : o * k, node.inputs[2] ? o : 0);
    }
    case 'MatMul':
    case 'MatMulInteger':
    case 'QLinearMatMul':
    case 'ms:MatMulNBits':
    case 'ms:MatMulIntegerToFloat':
    case 'ms:DynamicQuantizeMatMul': {
      const a = sh(0);
      const o = out();
      if (!a || o === null) return mm(null);
      let kDim: Dim = a[a.length - 1];
      if (op === 'ms:MatMulNBits') kDim = node.int('K', 0);
      const k = typeof kDim === 'number' ? kDim : kDim === null ? null : 1;
      return mm(k === null ? null : o * k);
    }
    case 'LSTM':
    case 'GRU':
    case 'RNN': {
      const gates = op === 'LSTM' ? 4 : op === 'GRU' ? 3 : 1;
      const x = sh(0);
      const w = sh(1);
      const hidden = node.int('hidden_size', 0) || (w && typeof w[1] === 'number' ? w[1] / gates : 0);
      const dirs = node.str('direction', 'forward') === 'bidirectional' ? 2 : 1;
      if (!x || x.length !== 3 || !hidden) return mm(null);
      const steps = boundNumel(x.slice(0, 2)); // seq × batch (either layout)
      const input = x[2];
      if (steps === null || typeof input !== 'number') return mm(null);
      const macs = steps * dirs * gates * hidden * (input + hidden);
      return mm(macs, steps * dirs * gates * hidden);
    }
    case 'MaxPool':
    case 'AveragePool':
    case 'LpPool': {
      const o = out();
      const k = node.ints('kernel_shape')?.reduce((a, b) => a * b, 1) ?? null;
      return { macs: 0, flops: o === null || k === null ? null : o * k };
    }
    case 'GlobalAveragePool':
    case 'GlobalMaxPool':
    case 'ReduceMean':
    case 'ReduceSum':
    case 'ReduceMax':
    case 'ReduceMin': {
      const x = boundNumel(sh(0));
      return { macs: 0, flops: x };
    }
    case 'ms:QLinearAdd':
    case 'ms:QLinearMul':
    case 'ms:QLinearSigmoid':
    case 'ms:QLinearLeakyRelu':
    case 'ms:QLinearSoftmax':
    case 'ms:QLinearAveragePool':
    case 'ms:QLinearGlobalAveragePool':
    case 'ms:QLinearReduceMean':
      return { macs: 0, flops: out() };
    case 'ms:QLinearConcat':
    case 'ms:QuantizeLinear':
    case 'ms:DequantizeLinear':
      return { macs: 0, flops: out() === null ? null : 0 };
    default: {
      // An op of another domain (contrib or custom) without a rule here: unknown, never 0.
      if (node.domain && node.domain !== 'ai.onnx') {
        if (node.domain === 'com.microsoft' && (ELEMENTWISE.has(node.opType) || MS_ELEMENTWISE.has(node.opType))) return { macs: 0, flops: out() };
        return { macs: null, flops: null };
      }
      if (FREE.has(node.opType)) return { macs: 0, flops: 0 };
      if (ELEMENTWISE.has(node.opType)) return { macs: 0, flops: out() };
      return { macs: 0, flops: null };
    }
  }
}

const KERAS_FREE = new Set(['InputLayer', 'Flatten', 'Reshape', 'Dropout', 'SpatialDropout1D', 'SpatialDropout2D', 'AlphaDropout', 'GaussianDropout', 'GaussianNoise', 'Masking', 'Embedding', 'ZeroPadding2D', 'Permute', 'RepeatVector', 'Concatenate']);

/** Keras layers (TF.js layers models): MACs from the kernels and the inferred output shapes. */
function kerasMacs(node: Node, type: TypeOf, constantOf: (n: string) => Tensor[] | undefined): { macs: number | null; flops: number | null } {
  const weight = (suffix: string) => {
    const n = node.inputs.find((i) => i.endsWith(`/${suffix}`));
    const t = n ? constantOf(n) : undefined;
    return t && t.length === 1 ? t[0].dims : undefined;
  };
  const prod = (d: number[]) => d.reduce((a, b) => a * b, 1);
  const out = boundNumel(type(node.outputs[0])?.shape);
  const mm = (macs: number | null) => ({ macs, flops: macs === null ? null : 2 * macs + (out ?? 0) });
  if (KERAS_FREE.has(node.opType)) return { macs: 0, flops: 0 };
  const kernel = weight('kernel');
  switch (node.opType) {
    case 'Dense':
    case 'Conv1D':
    case 'Conv2D':
    case 'Conv3D':
      // Each output element: one dot product over the kernel's input extent.
      return kernel && out !== null ? mm((out * prod(kernel)) / kernel[kernel.length - 1]) : mm(null);
    case 'DepthwiseConv2D': {
      const k = weight('depthwise_kernel');
      return k && out !== null ? mm(out * k[0] * k[1]) : mm(null);
    }
    case 'SeparableConv2D': {
      const d = weight('depthwise_kernel');
      const p = weight('pointwise_kernel');
      if (!d || !p || out === null) return mm(null);
      const spatial = out / p[3];
      return mm(spatial * prod(d) + out * p[2]);
    }
    case 'LSTM':
    case 'GRU':
    case 'SimpleRNN': {
      const r = weight('recurrent_kernel');
      const x = type(node.inputs[0])?.shape;
      const steps = x && typeof x[1] === 'number' ? x[1] : null;
      return kernel && r && steps !== null ? mm(steps * (prod(kernel) + prod(r))) : mm(null);
    }
    default:
      // Normalisation, activations, merges and pooling: about one op per output element. A
      // layer whose output shape is unknown (a custom layer, or one after it) is unknown.
      return out === null ? { macs: null, flops: null } : { macs: 0, flops: out };
  }
}

const TF_FREE = new Set([
  'Identity', 'IdentityN', 'Reshape', 'Squeeze', 'ExpandDims', 'ConcatV2', 'Pad', 'PadV2', 'MirrorPad', 'Transpose', 'Shape',
  'StridedSlice', 'Slice', 'Pack', 'Unpack', 'GatherV2', 'Cast', 'StopGradient', 'NoOp', 'Const', 'Fill', 'Tile', 'Split', 'SplitV',
]);

/** TensorFlow ops in a TF.js graph model: filters are HWIO (depthwise HWCM), MatMul is 2-D. */
function tfGraphMacs(node: Node, type: TypeOf, constantOf: (n: string) => Tensor[] | undefined): { macs: number | null; flops: number | null } {
  const out = boundNumel(type(node.outputs[0])?.shape);
  const mm = (macs: number | null) => ({ macs, flops: macs === null ? null : 2 * macs + (out ?? 0) });
  const w = shapeOf(type, node.inputs[1], constantOf);
  const known = w && w.every((d) => typeof d === 'number') ? (w as number[]) : null;
  switch (node.opType) {
    case 'Conv2D':
    case '_FusedConv2D':
      return known && known.length === 4 && out !== null ? mm(out * known[0] * known[1] * known[2]) : mm(null);
    case 'DepthwiseConv2dNative':
    case 'FusedDepthwiseConv2dNative':
      return known && known.length === 4 && out !== null ? mm(out * known[0] * known[1]) : mm(null);
    case 'Conv2DBackpropInput': {
      // Every input element is spread over kh·kw·outC outputs: filter [kh, kw, outC, inC], x is input 2.
      const x = boundNumel(shapeOf(type, node.inputs[2], constantOf));
      return known && known.length === 4 && x !== null ? mm(x * known[0] * known[1] * known[2]) : mm(null);
    }
    case 'MatMul':
    case '_FusedMatMul':
    case 'BatchMatMul':
    case 'BatchMatMulV2': {
      // Each output element: a dot product over the shared dimension.
      if (!known || out === null || known.length < 2) return mm(null);
      const transposed = node.opType.startsWith('Batch') ? node.int('adj_y', 0) : node.int('transpose_b', 0);
      return mm(out * (transposed ? known[known.length - 1] : known[known.length - 2]));
    }
    default:
      // Activations, normalisation, element-wise maths, pooling: about one op per output element;
      // an op whose output shape is unknown (no shape rule here) is unknown.
      if (TF_FREE.has(node.opType)) return { macs: 0, flops: 0 };
      return out === null ? { macs: null, flops: null } : { macs: 0, flops: out };
  }
}

/** TFLite builtins: every tensor carries its shape in the file, weights are OHWI / [1,H,W,C] / [O,I]. */
function tfliteMacs(node: Node, type: TypeOf, constantOf: (n: string) => Tensor[] | undefined): { macs: number | null; flops: number | null } {
  const out = boundNumel(type(node.outputs[0])?.shape);
  const w = shapeOf(type, node.inputs[1], constantOf);
  const mm = (macs: number | null) => ({ macs, flops: macs === null ? null : 2 * macs + (out ?? 0) });
  const known = w && w.every((d) => typeof d === 'number') ? (w as number[]) : null;
  switch (node.opType) {
    case 'CONV_2D':
      return known && known.length === 4 && out !== null ? mm(out * known[1] * known[2] * known[3]) : mm(null);
    case 'DEPTHWISE_CONV_2D':
      return known && known.length === 4 && out !== null ? mm(out * known[1] * known[2]) : mm(null);
    case 'FULLY_CONNECTED':
      return known && known.length === 2 && out !== null ? mm(out * known[1]) : mm(null);
    case 'RESHAPE':
    case 'SQUEEZE':
    case 'EXPAND_DIMS':
    case 'DEQUANTIZE':
    case 'QUANTIZE':
    case 'DENSIFY':
    case 'CONCATENATION':
    case 'TRANSPOSE':
    case 'GATHER':
      return { macs: 0, flops: 0 };
    default:
      return node.domain === 'tflite.custom' ? { macs: null, flops: null } : { macs: 0, flops: out };
  }
}
