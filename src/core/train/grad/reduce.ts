import { DataType } from '../../ir/dtype';
import { axis, registerGradient, type GradContext } from './registry';

/**
 * ReduceSum and ReduceMean: dY is broadcast back over the reduced axes (re-inserted when
 * keepdims is 0) and, for the mean, divided by the number of reduced elements.
 */

function reducedAxes(c: GradContext, fromInput: boolean): number[] | 'all' | 'none' {
  const n = c.node;
  let axes: number[] | undefined;
  if (fromInput) {
    if (c.x(1)) {
      const t = c.constant(c.x(1));
      if (!t) c.refuse('its axes input is not a constant');
      axes = t.toNumbers();
    }
  } else axes = n.ints('axes');
  if (!axes || axes.length === 0) return n.int('noop_with_empty_axes', 0) ? 'none' : 'all';
  const rank = c.shape(c.x(0))?.length;
  if (rank === undefined) c.refuse('the rank of its input is unknown');
  return axes.map((a) => axis(a, rank)).sort((a, b) => a - b);
}

function reduceGrad(c: GradContext, mean: boolean, fromInput: boolean): string {
  const x = c.x(0);
  const axes = reducedAxes(c, fromInput);
  let dy = c.dy(0)!;
  if (axes === 'none') return dy;
  if (!c.node.int('keepdims', 1)) {
    const rank = c.shape(x)?.length;
    if (rank === undefined) c.refuse('the rank of its input is unknown');
    const all = axes === 'all' ? Array.from({ length: rank }, (_, i) => i) : axes;
    if (all.length) dy = c.op('Unsqueeze', [dy, c.ints(all)]);
  }
  let d = c.op('Expand', [dy, c.shapeOf(x)]);
  if (mean) {
    const ratio = c.op('Div', [c.op('Cast', [c.op('Size', [c.y(0)])], { to: DataType.FLOAT }), c.op('Cast', [c.op('Size', [x])], { to: DataType.FLOAT })]);
    d = c.op('Mul', [d, ratio]);
  }
  return d;
}

registerGradient('ReduceSum', { nonDifferentiableInputs: [1], rule: (c: GradContext) => [reduceGrad(c, false, true)] });
registerGradient('ReduceMean', { nonDifferentiableInputs: [1], rule: (c: GradContext) => [reduceGrad(c, true, c.node.inputs.length > 1)] });
