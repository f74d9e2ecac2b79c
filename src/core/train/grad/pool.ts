import { DataType } from '../../ir/dtype';
import { Tensor } from '../../ir/tensor';
import { registerGradient, type GradContext } from './registry';

/**
 * Pooling. MaxPool routes dY through its Indices output (flat indices into X, ONNX
 * storage_order 0) with ScatterElements(reduction 'add'), so overlapping windows accumulate;
 * ORT's Indices are the first maximum in row-major order, PyTorch's choice on ties.
 * Measured against it (SqueezeNet 1.1's first pool, 16×64×111×111, 3×3 stride 2): the plain
 * MaxPool is 6x faster than with Indices (13 against 79 ms), but recovering the argmax in the
 * backward costs more than it saves: even split per axis, three strided Slices and Equals of
 * one axis alone took 50 ms (their masking, first-match and placement would come on top),
 * against 79 ms for MaxPool with Indices plus 29 ms for the ScatterElements.
 * AveragePool spreads dY/count over each window with a depthwise ConvTranspose of ones.
 * GlobalAveragePool broadcasts dY/(H·W).
 */

const ONE = Tensor.fromArray('value', DataType.FLOAT, [1], new Float32Array([1]));
const ZERO = Tensor.fromArray('value', DataType.FLOAT, [1], new Float32Array([0]));

registerGradient('MaxPool', {
  nonDifferentiableOutputs: [1],
  prepare: (n, fresh) => {
    if (!n.outputs[1]) n.outputs[1] = fresh('maxpool_indices');
  },
  rule: (c: GradContext) => {
    if (c.node.int('storage_order', 0) !== 0) c.refuse('only storage_order 0 is supported');
    const x = c.x(0);
    const numel = c.op('Reshape', [c.op('Size', [x]), c.ints([1])]);
    const zeros = c.op('ConstantOfShape', [numel], { value: ZERO });
    const idx = c.op('Reshape', [c.y(1), c.ints([-1])]);
    const upd = c.op('Reshape', [c.dy(0)!, c.ints([-1])]);
    const flat = c.op('ScatterElements', [zeros, idx, upd], { axis: 0, reduction: 'add' });
    return [c.op('Reshape', [flat, c.shapeOf(x)])];
  },
});

function poolTranspose(c: GradContext, dy: string, channels: number, kernel: number[], scale: number): string {
  const x = c.x(0);
  const xs = c.staticShape(x, 'input');
  const spatial = xs.slice(2);
  const r = spatial.length;
  const n = c.node;
  const strides = n.ints('strides') ?? Array(r).fill(1);
  const autoPad = n.str('auto_pad', 'NOTSET');
  if (autoPad !== 'NOTSET' && autoPad !== 'VALID') c.refuse(`auto_pad ${autoPad} is not supported`);
  const pads = autoPad === 'VALID' ? Array(2 * r).fill(0) : n.ints('pads') ?? Array(2 * r).fill(0);
  const out = spatial.map((h, i) => Math.floor((h + pads[i] + pads[i + r] - kernel[i]) / strides[i]) + 1);
  const outputPadding = spatial.map((h, i) => h + pads[i] + pads[i + r] - ((out[i] - 1) * strides[i] + kernel[i]));
  const w = c.float(scale, [channels, 1, ...kernel]);
  return c.op('ConvTranspose', [dy, w], { strides, pads, group: channels, kernel_shape: kernel, output_padding: outputPadding });
}

registerGradient('AveragePool', (c: GradContext) => {
  const n = c.node;
  if (n.int('ceil_mode', 0) !== 0) c.refuse('ceil_mode 1 is not supported');
  if ((n.ints('dilations') ?? []).some((d) => d !== 1)) c.refuse('dilations are not supported');
  const kernel = n.ints('kernel_shape');
  if (!kernel) c.refuse('kernel_shape is missing');
  const xs = c.staticShape(c.x(0), 'input');
  const K = kernel.reduce((a, b) => a * b, 1);
  const pads = n.ints('pads') ?? [];
  let dy = c.dy(0)!;
  let scale = 1 / K;
  if (n.int('count_include_pad', 0) === 0 && pads.some((p) => p !== 0)) {
    // Divisor per output = number of valid input elements in its window.
    const ones = c.op('ConstantOfShape', [c.shapeOf(c.x(0))], { value: ONE });
    const attrs: Record<string, number[] | number> = { kernel_shape: kernel, pads, strides: n.ints('strides') ?? kernel.map(() => 1), count_include_pad: 1 };
    const count = c.op('Mul', [c.op('AveragePool', [ones], attrs), c.float(K)]);
    dy = c.op('Div', [dy, count]);
    scale = 1;
  }
  return [poolTranspose(c, dy, xs[1], kernel, scale)];
});

registerGradient('GlobalAveragePool', (c: GradContext) => {
  const x = c.x(0);
  const xs = c.shape(x);
  const spatial = xs?.slice(2) ?? [];
  let d = c.op('Expand', [c.dy(0)!, c.shapeOf(x)]);
  if (xs && spatial.every((v) => typeof v === 'number')) d = c.op('Mul', [d, c.float(1 / (spatial as number[]).reduce((a, b) => a * b, 1))]);
  else {
    const ratio = c.op('Div', [c.op('Cast', [c.op('Size', [c.y(0)])], { to: DataType.FLOAT }), c.op('Cast', [c.op('Size', [x])], { to: DataType.FLOAT })]);
    d = c.op('Mul', [d, ratio]);
  }
  return [d];
});
