import { registerGradient, type GradContext } from './registry';

/**
 * Elementwise arithmetic with numpy broadcasting (ONNX Add, Sub, Mul, Div, Pow, Sqrt, Neg,
 * Exp, Log, Abs, Sum). Each operand's gradient is reduced back to its own shape.
 */

registerGradient('Add', (c: GradContext) => [c.needs(0) ? c.reduceTo(c.dy(0)!, c.x(0), c.y(0)) : undefined, c.needs(1) ? c.reduceTo(c.dy(0)!, c.x(1), c.y(0)) : undefined]);

registerGradient('Sub', (c: GradContext) => [
  c.needs(0) ? c.reduceTo(c.dy(0)!, c.x(0), c.y(0)) : undefined,
  c.needs(1) ? c.reduceTo(c.op('Neg', [c.dy(0)!]), c.x(1), c.y(0)) : undefined,
]);

registerGradient('Mul', (c: GradContext) => [
  c.needs(0) ? c.reduceTo(c.op('Mul', [c.dy(0)!, c.x(1)]), c.x(0), c.y(0)) : undefined,
  c.needs(1) ? c.reduceTo(c.op('Mul', [c.dy(0)!, c.x(0)]), c.x(1), c.y(0)) : undefined,
]);

registerGradient('Div', (c: GradContext) => {
  const dy = c.dy(0)!;
  const grads: Array<string | undefined> = [];
  if (c.needs(0)) grads[0] = c.reduceTo(c.op('Div', [dy, c.x(1)]), c.x(0), c.y(0));
  // ∂(a/b)/∂b = −(a/b)/b.
  if (c.needs(1)) grads[1] = c.reduceTo(c.op('Neg', [c.op('Div', [c.op('Mul', [dy, c.y(0)]), c.x(1)])]), c.x(1), c.y(0));
  return grads;
});

registerGradient('Pow', (c: GradContext) => {
  const dy = c.dy(0)!;
  const [a, b] = [c.x(0), c.x(1)];
  const grads: Array<string | undefined> = [];
  if (c.needs(0)) {
    // b·a^(b−1), written as b·y/a would divide by zero at a = 0.
    const bm1 = c.op('Sub', [b, c.op('CastLike', [c.float(1), b])]);
    const d = c.op('Mul', [c.op('CastLike', [b, a]), c.op('Pow', [a, bm1])]);
    grads[0] = c.reduceTo(c.op('Mul', [dy, d]), a, c.y(0));
  }
  if (c.needs(1)) grads[1] = c.reduceTo(c.op('Mul', [dy, c.op('Mul', [c.y(0), c.op('Log', [a])])]), b, c.y(0));
  return grads;
});

registerGradient('Sqrt', (c: GradContext) => [c.op('Div', [c.op('Mul', [c.dy(0)!, c.float(0.5)]), c.y(0)])]);
registerGradient('Neg', (c: GradContext) => [c.op('Neg', [c.dy(0)!])]);
registerGradient('Exp', (c: GradContext) => [c.op('Mul', [c.dy(0)!, c.y(0)])]);
registerGradient('Log', (c: GradContext) => [c.op('Div', [c.dy(0)!, c.x(0)])]);
registerGradient('Abs', (c: GradContext) => [c.op('Mul', [c.dy(0)!, c.op('Sign', [c.x(0)])])]);
registerGradient('Sum', (c: GradContext) => c.node.inputs.map((x, i) => (c.needs(i) ? c.reduceTo(c.dy(0)!, x, c.y(0)) : undefined)));
