import { DataType } from '../../ir/dtype';
import { Tensor } from '../../ir/tensor';
import { axis, registerGradient, type GradContext } from './registry';

/**
 * Layout ops: the gradient is dY moved back (reshape, inverse transpose, split/concat,
 * pad/slice inverses), or scattered with accumulation (Gather, as for embeddings).
 */

const ZERO = Tensor.fromArray('value', DataType.FLOAT, [1], new Float32Array([0]));

const reshapeBack = (c: GradContext) => [c.op('Reshape', [c.dy(0)!, c.shapeOf(c.x(0))])];

registerGradient('Reshape', { nonDifferentiableInputs: [1], rule: reshapeBack });
registerGradient('Flatten', reshapeBack);
registerGradient('Squeeze', { nonDifferentiableInputs: [1], rule: reshapeBack });
registerGradient('Unsqueeze', { nonDifferentiableInputs: [1], rule: reshapeBack });
registerGradient('Identity', (c: GradContext) => [c.dy(0)]);
// Inference-mode Dropout (training_mode absent or false) is the identity.
registerGradient('Dropout', {
  nonDifferentiableInputs: [1, 2],
  nonDifferentiableOutputs: [1],
  rule: (c: GradContext) => {
    const tm = c.x(2) ? c.constant(c.x(2)) : undefined;
    if (c.x(2) && (!tm || tm.toNumbers()[0] !== 0)) c.refuse('training_mode must be a constant false');
    return [c.dy(0)];
  },
});

registerGradient('Transpose', (c: GradContext) => {
  const rank = c.shape(c.x(0))?.length;
  const perm = c.node.ints('perm') ?? (rank !== undefined ? Array.from({ length: rank }, (_, i) => rank - 1 - i) : undefined);
  if (!perm) c.refuse('the rank of its input is unknown');
  const inv: number[] = [];
  perm.forEach((p, i) => (inv[p] = i));
  return [c.op('Transpose', [c.dy(0)!], { perm: inv })];
});

registerGradient('Concat', (c: GradContext) => {
  const n = c.node;
  const rank = c.shape(c.x(0))?.length;
  if (rank === undefined) c.refuse('the rank of its inputs is unknown');
  const a = axis(n.int('axis', 0), rank);
  const sizes = n.inputs.map((x) => {
    const d = c.shape(x)?.[a];
    if (typeof d !== 'number') c.refuse(`the size of '${x}' along axis ${a} is unknown`);
    return d;
  });
  const parts = c.emit('Split', [c.dy(0)!, c.ints(sizes)], { axis: a }, sizes.length);
  return parts.map((p, i) => (c.needs(i) ? p : undefined));
});

registerGradient('Split', {
  nonDifferentiableInputs: [1],
  rule: (c: GradContext) => {
    const rank = c.shape(c.x(0))?.length;
    if (rank === undefined) c.refuse('the rank of its input is unknown');
    const a = axis(c.node.int('axis', 0), rank);
    return [c.op('Concat', c.node.outputs.map((_, i) => c.dyOrZeros(i)), { axis: a })];
  },
});

function constInts(c: GradContext, name: string, what: string): number[] {
  const t = c.constant(name);
  if (!t) c.refuse(`its ${what} input is not a constant`);
  return t.toNumbers();
}

registerGradient('Slice', {
  nonDifferentiableInputs: [1, 2, 3, 4],
  rule: (c: GradContext) => {
    const x = c.x(0);
    const xs = c.shape(x);
    if (!xs) c.refuse('the shape of its input is unknown');
    const rank = xs.length;
    const starts = constInts(c, c.x(1), 'starts');
    const ends = constInts(c, c.x(2), 'ends');
    const axes = c.x(3) ? constInts(c, c.x(3), 'axes').map((a) => axis(a, rank)) : starts.map((_, i) => i);
    const steps = c.x(4) ? constInts(c, c.x(4), 'steps') : starts.map(() => 1);
    if (steps.some((s) => s !== 1)) c.refuse('only steps of 1 are supported');
    const pads = Array(2 * rank).fill(0);
    axes.forEach((a, i) => {
      const dim = xs[a];
      if (typeof dim !== 'number') c.refuse(`the size of '${x}' along sliced axis ${a} is unknown`);
      const clamp = (v: number) => Math.min(dim, Math.max(0, v < 0 ? v + dim : v));
      const s = clamp(starts[i]);
      const e = Math.max(s, clamp(ends[i]));
      pads[a] = s;
      pads[a + rank] = dim - e;
    });
    return [c.op('Pad', [c.dy(0)!, c.ints(pads)])];
  },
});

registerGradient('Pad', {
  nonDifferentiableInputs: [1, 2, 3],
  rule: (c: GradContext) => {
    if (c.node.str('mode', 'constant') !== 'constant') c.refuse('only constant padding is supported');
    if (c.x(3)) c.refuse('the axes input is not supported');
    const pads = constInts(c, c.x(1), 'pads');
    if (pads.some((p) => p < 0)) c.refuse('negative pads are not supported');
    const r = pads.length / 2;
    const starts = pads.slice(0, r);
    const ends = pads.slice(r).map((p) => (p > 0 ? -p : Number.MAX_SAFE_INTEGER));
    return [c.op('Slice', [c.dy(0)!, c.ints(starts), c.ints(ends), c.ints(Array.from({ length: r }, (_, i) => i))])];
  },
});

registerGradient('Gather', {
  nonDifferentiableInputs: [1],
  rule: (c: GradContext) => {
    if (axis(c.node.int('axis', 0), c.shape(c.x(0))?.length ?? 1) !== 0) c.refuse('only axis 0 (embedding lookup) is supported');
    const data = c.x(0);
    let idx = c.op('Cast', [c.x(1)], { to: DataType.INT64 });
    const v = c.op('Gather', [c.shapeOf(data), c.ints([0])], { axis: 0 });
    idx = c.op('Where', [c.op('Less', [idx, c.ints([0])]), c.op('Add', [idx, v]), idx]);
    const zeros = c.op('ConstantOfShape', [c.shapeOf(data)], { value: ZERO });
    return [c.op('ScatterND', [zeros, c.op('Unsqueeze', [idx, c.ints([-1])]), c.dy(0)!], { reduction: 'add' })];
  },
});

registerGradient('Resize', {
  nonDifferentiableInputs: [1, 2, 3],
  rule: (c: GradContext) => {
    const n = c.node;
    if (n.str('mode', 'nearest') !== 'nearest') c.refuse('only mode nearest is supported');
    const ct = n.str('coordinate_transformation_mode', 'half_pixel');
    const nm = n.str('nearest_mode', 'round_prefer_floor');
    const ok = ct === 'asymmetric' ? nm === 'floor' : ct === 'half_pixel' || ct === 'pytorch_half_pixel';
    if (!ok) c.refuse(`coordinate_transformation_mode ${ct} with nearest_mode ${nm} is not supported`);
    const xs = c.staticShape(c.x(0), 'input');
    const ys = c.staticShape(c.y(0), 'output');
    const factors = xs.map((d, i) => ys[i] / d);
    if (factors.some((f) => !Number.isInteger(f) || f < 1)) c.refuse('only integer upsampling factors are supported');
    // dy[..., h·s + r, ...] summed over r: reshape to [..., h, s, ...] and reduce the s axes.
    const split: number[] = [];
    const sumAxes: number[] = [];
    xs.forEach((d, i) => {
      split.push(d);
      if (factors[i] !== 1) {
        split.push(factors[i]);
        sumAxes.push(split.length - 1);
      }
    });
    if (!sumAxes.length) return [c.dy(0)];
    const r = c.op('Reshape', [c.dy(0)!, c.ints(split)]);
    return [c.op('ReduceSum', [r, c.ints(sumAxes)], { keepdims: 0 })];
  },
});
