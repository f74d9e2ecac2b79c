import { DataType } from '../../ir/dtype';
import { axis, registerGradient, type GradContext } from './registry';

/**
 * Activations (ONNX definitions; at kinks the subgradient PyTorch uses: Relu′(0) = 0,
 * Clip′ = 0 at the bounds) and Softmax/LogSoftmax along one axis (opset ≥ 13 semantics).
 */

function where(c: GradContext, cond: string, a: string, b: string): string {
  return c.op('Where', [cond, a, b]);
}

/** dY·[cond] as Mul(dY, Cast(cond)): measured faster in ORT than Where(cond, dY, 0) or Sign. */
function masked(c: GradContext, cond: string): string {
  return c.op('Mul', [c.dy(0)!, c.op('Cast', [cond], { to: DataType.FLOAT })]);
}

// Reads only y (so ORT can fuse the producing Conv with the Relu): x > 0 ⇔ y > 0.
registerGradient('Relu', (c: GradContext) => [masked(c, c.op('Greater', [c.y(0), c.float(0)]))]);

registerGradient('LeakyRelu', (c: GradContext) => {
  const alpha = c.node.float('alpha', 0.01);
  const dy = c.dy(0)!;
  return [where(c, c.op('Greater', [c.x(0), c.float(0)]), dy, c.op('Mul', [dy, c.float(alpha)]))];
});

registerGradient('Clip', {
  nonDifferentiableInputs: [1, 2],
  // PyTorch's hardtanh (ReLU6) backward: dY where min < x < max, else 0. It reads only y
  // (min < x < max ⇔ min < y < max), so the producing Conv keeps one consumer and ORT fuses
  // Conv+Clip in the forward, and x need not be kept for the backward.
  rule: (c: GradContext) => {
    const y = c.y(0);
    const above = c.x(1) ? c.op('Greater', [y, c.x(1)]) : undefined;
    const below = c.x(2) ? c.op('Less', [y, c.x(2)]) : undefined;
    if (above && below) return [masked(c, c.op('And', [above, below]))];
    const one = above ?? below;
    return [one ? masked(c, one) : c.dy(0)];
  },
});

registerGradient('Sigmoid', (c: GradContext) => {
  const y = c.y(0);
  return [c.op('Mul', [c.dy(0)!, c.op('Mul', [y, c.op('Sub', [c.float(1), y])])])];
});

registerGradient('Tanh', (c: GradContext) => {
  const y = c.y(0);
  return [c.op('Mul', [c.dy(0)!, c.op('Sub', [c.float(1), c.op('Mul', [y, y])])])];
});

registerGradient('HardSigmoid', (c: GradContext) => {
  const alpha = c.node.float('alpha', 0.2);
  const beta = c.node.float('beta', 0.5);
  const t = c.op('Add', [c.op('Mul', [c.x(0), c.float(alpha)]), c.float(beta)]);
  const inside = c.op('And', [c.op('Greater', [t, c.float(0)]), c.op('Less', [t, c.float(1)])]);
  return [where(c, inside, c.op('Mul', [c.dy(0)!, c.float(alpha)]), c.float(0))];
});

// HardSwish: y = x·max(0, min(1, x/6 + 1/2)); y′ = 0 (x < −3), (2x + 3)/6 (−3 ≤ x ≤ 3), 1 (x > 3).
registerGradient('HardSwish', (c: GradContext) => {
  const x = c.x(0);
  const mid = c.op('Add', [c.op('Mul', [x, c.float(1 / 3)]), c.float(0.5)]);
  const d = where(c, c.op('Less', [x, c.float(-3)]), c.float(0), where(c, c.op('Greater', [x, c.float(3)]), c.float(1), mid));
  return [c.op('Mul', [c.dy(0)!, d])];
});

registerGradient('Erf', (c: GradContext) => {
  const x = c.x(0);
  const d = c.op('Mul', [c.op('Exp', [c.op('Neg', [c.op('Mul', [x, x])])]), c.float(2 / Math.sqrt(Math.PI))]);
  return [c.op('Mul', [c.dy(0)!, d])];
});

function softmaxAxis(c: GradContext): number {
  const s = c.shape(c.x(0));
  const rank = s?.length;
  const a = c.node.int('axis', -1);
  if (c.opset < 13 && (rank === undefined || axis(a, rank) !== rank - 1)) c.refuse('before opset 13 only the last axis is supported');
  return a;
}

// dX = y ⊙ (dY − Σ_axis dY ⊙ y).
registerGradient('Softmax', (c: GradContext) => {
  const a = softmaxAxis(c);
  const y = c.y(0);
  const dy = c.dy(0)!;
  const s = c.op('ReduceSum', [c.op('Mul', [dy, y]), c.ints([a])], { keepdims: 1 });
  return [c.op('Mul', [y, c.op('Sub', [dy, s])])];
});

// dX = dY − exp(y) ⊙ Σ_axis dY.
registerGradient('LogSoftmax', (c: GradContext) => {
  const a = softmaxAxis(c);
  const dy = c.dy(0)!;
  const s = c.op('ReduceSum', [dy, c.ints([a])], { keepdims: 1 });
  return [c.op('Sub', [dy, c.op('Mul', [c.op('Exp', [c.y(0)]), s])])];
});
