import { DataType } from '../../ir/dtype';
import { axis, registerGradient, type GradContext } from './registry';

/**
 * Fake quantization for quantization-aware training: a QuantizeLinear → DequantizeLinear
 * pair passes gradients with the straight-through estimator, clipped to the range
 * (Bengio et al. 2013; Jacob et al. 2018): ∂x̂/∂x = 1 where qmin ≤ round(x/s) + z ≤ qmax,
 * else 0. DequantizeLinear contributes ·s and QuantizeLinear ·mask/s, so the pair gives the
 * mask. Scales and zero points are constants (not trained).
 */

const RANGES: Record<number, [number, number]> = {
  [DataType.INT8]: [-128, 127],
  [DataType.UINT8]: [0, 255],
  [DataType.INT16]: [-32768, 32767],
  [DataType.UINT16]: [0, 65535],
};

/** A per-axis scale/zero point reshaped to broadcast against `x` along `axis`. */
function perAxis(c: GradContext, t: string, x: string): string {
  const ts = c.shape(t);
  if (!ts || ts.length === 0) return t;
  const rank = c.shape(x)?.length;
  if (rank === undefined) c.refuse('the rank of its input is unknown');
  const a = axis(c.node.int('axis', 1), rank);
  return c.op('Reshape', [t, c.ints(Array.from({ length: rank }, (_, i) => (i === a ? -1 : 1)))]);
}

registerGradient('DequantizeLinear', {
  nonDifferentiableInputs: [1, 2],
  rule: (c: GradContext) => [c.op('Mul', [c.dy(0)!, perAxis(c, c.x(1), c.x(0))])],
});

registerGradient('QuantizeLinear', {
  nonDifferentiableInputs: [1, 2],
  rule: (c: GradContext) => {
    const x = c.x(0);
    const scale = perAxis(c, c.x(1), x);
    const zpName = c.x(2);
    const zp = c.constant(zpName);
    const dtype = zp?.dtype ?? DataType.UINT8;
    const range = RANGES[dtype];
    if (!range) c.refuse(`quantization to ${DataType[dtype]} is not supported`);
    let q = c.op('Round', [c.op('Div', [x, scale])]);
    if (zpName) q = c.op('Add', [q, c.op('Cast', [perAxis(c, zpName, x)], { to: DataType.FLOAT })]);
    const inside = c.op('And', [c.op('GreaterOrEqual', [q, c.float(range[0])]), c.op('LessOrEqual', [q, c.float(range[1])])]);
    const mask = c.op('Cast', [inside], { to: DataType.FLOAT });
    return [c.op('Mul', [c.op('Div', [c.dy(0)!, scale]), mask])];
  },
});
